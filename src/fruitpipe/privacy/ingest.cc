#include "fruitpipe/privacy/ingest.h"

#include <opencv2/core.hpp>

#include "fruitpipe/common/hash.h"
#include "fruitpipe/privacy/metadata_strip.h"
#include "fruitpipe/privacy/pseudonym.h"

namespace fruitpipe::privacy {
namespace {

struct Prepared {
  std::string key;
  StrippedImage stripped;
  std::size_t bytes_in = 0;
};

// Validates, strips and checks that the bytes to store decode to exactly the same pixels.
Prepared Prepare(const PhotoIn& photo, const IngestRequest& r) {
  const image::DecodeOutcome original = image::DecodeImage(photo.bytes, r.limits);
  if (!original.ok) throw InvalidArgumentError(photo.name + ": " + original.reason);
  Prepared p;
  p.bytes_in = photo.bytes.size();
  try {
    p.stripped = StripMetadata(photo.bytes);
  } catch (const InvalidArgumentError& e) {
    throw InvalidArgumentError(photo.name + ": " + e.what());
  }
  const image::DecodeOutcome again = image::DecodeImage(p.stripped.bytes, r.limits);
  if (!again.ok || again.image.rgb.size() != original.image.rgb.size() ||
      cv::norm(again.image.rgb, original.image.rgb, cv::NORM_INF) != 0.0) {
    throw Error(photo.name + ": the photo without its metadata does not decode to the same pixels; not stored");
  }
  p.key = r.label + "/contrib-" + r.subject_id + "-" + Sha256Hex(p.stripped.bytes).substr(0, 16) + "." +
          p.stripped.extension;
  return p;
}

}  // namespace

void CheckLabel(const std::string& label) {
  bool ok = !label.empty() && label.size() <= 128 && label.front() != '.' && label.front() != '_';
  for (unsigned char c : label) ok = ok && c >= 0x20 && c != 0x7f && c != '/' && c != '\\';
  if (!ok) {
    throw InvalidArgumentError("label '" + label + "': a folder name without '/', control characters or a leading '.' or '_'");
  }
}

std::vector<StoredPhoto> IngestPhotos(const IngestRequest& r, ConsentLedger& ledger, storage::Storage& store,
                                      AuditLog* audit, std::int64_t now) {
  CheckSubjectId(r.subject_id);
  CheckPurpose(r.purpose);
  CheckLabel(r.label);
  if (r.photos.empty()) throw InvalidArgumentError("ingest: no photos");
  if (!ledger.HasConsent(r.subject_id, r.purpose)) {
    throw NoConsentError("ingest: subject " + ShortSubject(r.subject_id) + " has no active consent for " + r.purpose +
                         " in " + ledger.path() + " (record it with fruitpipe consent grant); nothing stored");
  }
  std::vector<Prepared> prepared;
  for (const PhotoIn& photo : r.photos) prepared.push_back(Prepare(photo, r));

  std::vector<StoredPhoto> stored;
  std::size_t bytes_in = 0, bytes_stored = 0;
  for (const Prepared& p : prepared) {
    // Ledger first: a photo the ledger does not know would escape retention; a ledger row
    // whose photo never arrived costs nothing (purge deletes a missing key without error).
    ledger.RecordContribution({r.subject_id, store.Uri(""), p.key, r.purpose, now, std::nullopt});
    store.Put(p.key, p.stripped.bytes);
    stored.push_back({p.key, store.Uri(p.key), p.stripped.removed, p.bytes_in, p.stripped.bytes.size()});
    bytes_in += p.bytes_in;
    bytes_stored += p.stripped.bytes.size();
  }
  if (audit) {
    audit->Append("ingest", r.subject_id,
                  {{"purpose", r.purpose}, {"photos", stored.size()}, {"label", r.label}, {"store", store.Uri("")},
                   {"bytes_in", bytes_in}, {"bytes_stored", bytes_stored}});
  }
  return stored;
}

bool ChangeConsent(ConsentLedger& ledger, AuditLog* audit, const std::string& subject_id, const std::string& purpose,
                   bool grant, std::int64_t now) {
  CheckSubjectId(subject_id);
  CheckPurpose(purpose);
  const bool changed = grant ? ledger.Grant(subject_id, purpose, now) : ledger.Withdraw(subject_id, purpose, now);
  if (changed && audit) audit->Append(grant ? "consent.grant" : "consent.withdraw", subject_id, {{"purpose", purpose}});
  return changed;
}

bool RequestErasure(ConsentLedger& ledger, AuditLog* audit, const std::string& subject_id, std::int64_t now) {
  CheckSubjectId(subject_id);
  const bool recorded = ledger.RequestErasure(subject_id, now);
  if (recorded && audit) audit->Append("erasure.request", subject_id, nlohmann::json::object());
  return recorded;
}

}  // namespace fruitpipe::privacy
