// Contributions: a person's photos stored for a purpose they consented to, with the same rules
// for `fruitpipe ingest` and the service's POST /v1/contributions. In order: active consent in
// the ledger, every photo decodes within the limits, metadata stripped (metadata_strip.h), the
// stripped photo decodes to exactly the same pixels, then stored as
// <Label>/contrib-<subject id>-<sha256 of the stored bytes, 16 hex>.<jpg|png>, recorded in the
// ledger (ingest time, for retention) and in the audit log. All photos are checked before the
// first is stored: a request is stored whole or not at all.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fruitpipe/common/error.h"
#include "fruitpipe/image/decode.h"
#include "fruitpipe/privacy/audit_log.h"
#include "fruitpipe/privacy/consent_ledger.h"
#include "fruitpipe/storage/storage.h"

namespace fruitpipe::privacy {

// The subject has no active consent for the purpose (a service answers 403).
class NoConsentError : public Error {
 public:
  using Error::Error;
};

struct PhotoIn {
  std::string name;   // for messages: a file name, "upload 2"
  std::string bytes;
};

struct IngestRequest {
  std::string subject_id;  // pseudonymous (pseudonym.h)
  std::string purpose;
  std::string label;       // the folder: no '/', control characters, or leading '.' or '_'
  std::vector<PhotoIn> photos;
  image::DecodeLimits limits;
};

struct StoredPhoto {
  std::string key;
  std::string uri;
  std::vector<std::string> removed;  // metadata dropped, as StripMetadata names it
  std::size_t bytes_in = 0;
  std::size_t bytes_stored = 0;
};

// Throws NoConsentError, InvalidArgumentError naming the photo (not an image, unsupported
// format, bad label) or Error; nothing is stored then. `audit` may be null (tests).
std::vector<StoredPhoto> IngestPhotos(const IngestRequest& request, ConsentLedger& ledger,
                                      storage::Storage& store, AuditLog* audit, std::int64_t now);

void CheckLabel(const std::string& label);

// A consent change with its audit line when it changed something (`fruitpipe consent` and
// POST /v1/consent). Returns whether the ledger changed.
bool ChangeConsent(ConsentLedger& ledger, AuditLog* audit, const std::string& subject_id, const std::string& purpose,
                   bool grant, std::int64_t now);

// The app's "delete my data" (`fruitpipe forget --request` and POST /v1/erasure-requests):
// recorded as pending in the ledger, with its audit line, for `fruitpipe forget --pending` to
// carry out. Returns false when a request was already pending (nothing recorded).
bool RequestErasure(ConsentLedger& ledger, AuditLog* audit, const std::string& subject_id, std::int64_t now);

}  // namespace fruitpipe::privacy
