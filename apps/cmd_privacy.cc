// consent, ingest, forget, purge, audit: GDPR by design (docs/gdpr.md). People are known here
// only by their pseudonymous subject id; a raw user id given on the command line is turned
// into it at once and never written, logged or printed.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "options.h"
#include "fruitpipe/common/env_vars.h"
#include "fruitpipe/common/error.h"
#include "fruitpipe/dataset/dataset.h"
#include "fruitpipe/image/decode.h"
#include "fruitpipe/privacy/audit_log.h"
#include "fruitpipe/privacy/consent_ledger.h"
#include "fruitpipe/privacy/erasure.h"
#include "fruitpipe/privacy/ingest.h"
#include "fruitpipe/privacy/pseudonym.h"
#include "fruitpipe/privacy/retention.h"
#include "fruitpipe/serve/model_dir.h"
#include "fruitpipe/common/time.h"
#include "fruitpipe/storage/storage.h"

namespace fruitpipe::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using privacy::ShortSubject;

// Who the command is about: a raw user id (--subject, pseudonymised with the key) or, for
// operators who only have what the data shows, the subject id itself (--subject-id).
struct SubjectArgs {
  std::string user_id;
  std::string user_id_file;
  std::string subject_id;
  std::string key_file;
};

void AddSubjectOptions(CLI::App* cmd, SubjectArgs* a, bool allow_subject_id) {
  auto* user = cmd->add_option("--subject", a->user_id,
                               "the person's user id, pseudonymised with the key and never stored; '-' reads it from "
                               "standard input (safe: a literal id shows in ps and shell history)");
  auto* file = cmd->add_option("--subject-file", a->user_id_file,
                               "file whose first line is the person's user id (safe form, like --subject -)");
  user->excludes(file);
  cmd->add_option("--subject-key-file", a->key_file,
                  "file holding the pseudonymisation key (mode 0600; default: $FRUITPIPE_SUBJECT_KEY)");
  if (allow_subject_id) {
    auto* id = cmd->add_option("--subject-id", a->subject_id, "the pseudonymous subject id (64 hex digits) instead of --subject");
    user->excludes(id);
    file->excludes(id);
  }
}

// The first line of `in`, without its line ending and surrounding blanks.
std::string ReadUserId(std::istream& in, const std::string& where) {
  std::string line;
  std::getline(in, line);
  const auto begin = line.find_first_not_of(" \t\r");
  const auto end = line.find_last_not_of(" \t\r");
  if (begin == std::string::npos) throw InvalidArgumentError(where + ": no user id (expected it on the first line)");
  return line.substr(begin, end - begin + 1);
}

// The raw user id from --subject ID, --subject - (standard input) or --subject-file F.
std::string UserId(const SubjectArgs& a) {
  if (!a.user_id_file.empty()) {
    std::ifstream in(a.user_id_file);
    if (!in) throw InvalidArgumentError(a.user_id_file + ": cannot read the user id file");
    return ReadUserId(in, a.user_id_file);
  }
  if (a.user_id == "-") return ReadUserId(std::cin, "standard input");
  return a.user_id;
}

std::string ResolveSubject(const SubjectArgs& a, const std::vector<std::string>& data_roots) {
  if (!a.subject_id.empty()) {
    privacy::CheckSubjectId(a.subject_id, "--subject-id");
    return a.subject_id;
  }
  if (a.user_id.empty() && a.user_id_file.empty()) {
    throw InvalidArgumentError("pass --subject - (the user id on standard input), --subject-file FILE or --subject-id HEX");
  }
  CheckKeyApart(a.key_file, data_roots);
  const privacy::SubjectKey key = privacy::SubjectKey::Load(a.key_file);
  return key.SubjectOf(UserId(a));
}

// --- consent -------------------------------------------------------------------------------

struct ConsentArgs {
  SubjectArgs subject;
  std::string purpose;
  std::string ledger;
  std::string audit_log;
};

void AddConsentCommon(CLI::App* cmd, ConsentArgs* a, bool purpose_required) {
  AddSubjectOptions(cmd, &a->subject, /*allow_subject_id=*/false);
  auto* p = cmd->add_option("--purpose", a->purpose, "what the consent is for, e.g. training");
  if (purpose_required) p->required();
  cmd->add_option("--ledger", a->ledger, "consent ledger (SQLite file)")->required();
  cmd->add_option("--audit-log", a->audit_log, "audit log (default: $FRUITPIPE_AUDIT_LOG, else audit.jsonl beside the ledger)");
}

void ConsentChange(const ConsentArgs& a, bool grant) {
  privacy::CheckPurpose(a.purpose);
  const std::string subject = ResolveSubject(a.subject, {});
  auto ledger = privacy::ConsentLedger::Open(a.ledger, privacy::ConsentLedger::Mode::kCreate);
  const std::int64_t now = WallEpochSeconds();
  privacy::AuditLog audit(privacy::ResolveAuditLogPath(a.audit_log, a.ledger));
  const bool changed = privacy::ChangeConsent(*ledger, &audit, subject, a.purpose, grant, now);
  if (grant) {
    std::printf("%s: subject %s, purpose %s\n", changed ? "granted" : "already granted", ShortSubject(subject).c_str(),
                a.purpose.c_str());
  } else if (changed) {
    std::printf("withdrawn: subject %s, purpose %s\n", ShortSubject(subject).c_str(), a.purpose.c_str());
    std::printf("  runs with --consent-ledger leave their photos out from now on; to erase what existing datasets\n"
                "  already hold, run: fruitpipe forget --subject ... --dataset OUT --store RAW\n");
  } else {
    std::printf("no active consent: subject %s, purpose %s (nothing to withdraw)\n", ShortSubject(subject).c_str(),
                a.purpose.c_str());
  }
}

void ConsentShow(const ConsentArgs& a) {
  const std::string subject = ResolveSubject(a.subject, {});
  auto ledger = privacy::ConsentLedger::Open(a.ledger, privacy::ConsentLedger::Mode::kExisting);
  std::printf("subject %s\n", subject.c_str());
  int shown = 0;
  for (const auto& r : ledger->History(subject)) {
    if (!a.purpose.empty() && r.purpose != a.purpose) continue;
    ++shown;
    std::printf("  %-12s %-9s granted %s%s\n", r.purpose.c_str(), r.status.c_str(), r.granted_at.c_str(),
                r.withdrawn_at ? (", withdrawn " + *r.withdrawn_at).c_str() : "");
  }
  if (shown == 0) std::printf("  no consent recorded%s\n", a.purpose.empty() ? "" : (" for " + a.purpose).c_str());
  std::int64_t stored = 0, erased = 0;
  for (const auto& c : ledger->Contributions(subject)) (c.erased_at ? erased : stored) += 1;
  std::printf("  photos: %lld stored, %lld erased\n", static_cast<long long>(stored), static_cast<long long>(erased));
}

// --- ingest --------------------------------------------------------------------------------

struct IngestArgs {
  SubjectArgs subject;
  std::string purpose;
  std::string label;
  std::vector<std::string> images;
  std::string store;
  std::string ledger;
  std::string audit_log;
  image::DecodeLimits limits;
  storage::StorageOptions storage;
};

void Ingest(const IngestArgs& a) {
  privacy::IngestRequest request;
  request.purpose = a.purpose;
  request.label = a.label;
  request.limits = a.limits;
  privacy::CheckPurpose(a.purpose);
  privacy::CheckLabel(a.label);
  request.subject_id = ResolveSubject(a.subject, {a.store});
  for (const auto& path : a.images) request.photos.push_back({path, ReadLocalFile(path)});
  auto ledger = privacy::ConsentLedger::Open(a.ledger, privacy::ConsentLedger::Mode::kExisting);
  auto store = storage::OpenStorage(NormalRoot(a.store), a.storage);
  privacy::AuditLog audit(privacy::ResolveAuditLogPath(a.audit_log, a.ledger));
  for (const auto& p : privacy::IngestPhotos(request, *ledger, *store, &audit, WallEpochSeconds())) {
    std::string removed;
    for (const auto& r : p.removed) removed += (removed.empty() ? "" : ", ") + r;
    std::printf("stored %s (removed: %s)\n", p.uri.c_str(), removed.empty() ? "nothing" : removed.c_str());
  }
}

// --- forget and purge ----------------------------------------------------------------------

struct EraseArgs {
  SubjectArgs subject;
  std::vector<std::string> datasets;
  std::vector<std::string> stores;
  std::vector<std::string> model_dirs;
  bool pending = false;  // forget: every pending erasure request in the ledger
  bool request = false;  // forget: record a request instead of erasing now
  std::string ledger;
  std::string audit_log;
  double older_than_days = -1;
  bool json_output = false;
  storage::StorageOptions storage;
};

void PrintReport(const char* what, const privacy::ErasureReport& r, double seconds, bool as_json, json extra) {
  json j = r.ToJson();
  j["seconds"] = seconds;
  for (auto& [k, v] : extra.items()) j[k] = v;
  if (as_json) {
    std::cout << j.dump(2) << std::endl;
    return;
  }
  std::printf("%s: %lld photos deleted, %lld Results rows and %lld Results_PCA rows removed, %lld shards rewritten, "
              "PCA %s, %.2f s\n",
              what, static_cast<long long>(r.photos_deleted), static_cast<long long>(r.rows_removed),
              static_cast<long long>(r.pca_rows_removed), static_cast<long long>(r.shards_rewritten), r.pca.c_str(),
              seconds);
  if (r.completed_pending) std::printf("  an interrupted erasure found in a dataset was completed too\n");
}

template <typename Fn>
void Audited(privacy::AuditLog& log, const std::string& action, const std::optional<std::string>& subject, Fn&& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    // The attempt is recorded too: an erasure that did not finish must be visible.
    log.Append(action + ".failed", subject, {{"error", e.what()}});
    throw;
  }
}

// A dataset named two ways (relative, absolute, through a link) is one dataset.
std::string SameDatasetKey(const std::string& uri) {
  if (storage::IsRemoteUri(uri)) return uri;
  std::error_code ec;
  return fs::weakly_canonical(fs::absolute(uri), ec).string();
}

void Forget(const EraseArgs& given) {
  EraseArgs a = given;
  if (a.pending && (!a.subject.user_id.empty() || !a.subject.user_id_file.empty() || !a.subject.subject_id.empty())) {
    throw InvalidArgumentError("forget --pending takes the subjects from the ledger's requests: drop --subject");
  }
  if (a.request) {
    // The app's "delete my data": recorded now, carried out by the batch job (--pending).
    if (a.ledger.empty()) throw InvalidArgumentError("forget --request: pass --ledger (the request is recorded there)");
    const std::string subject = ResolveSubject(a.subject, {});
    auto ledger = privacy::ConsentLedger::Open(a.ledger, privacy::ConsentLedger::Mode::kExisting);
    privacy::AuditLog audit(privacy::ResolveAuditLogPath(a.audit_log, a.ledger));
    const bool recorded = privacy::RequestErasure(*ledger, &audit, subject, WallEpochSeconds());
    std::printf("%s: subject %s (fruitpipe forget --pending carries it out)\n",
                recorded ? "erasure requested" : "erasure already requested", ShortSubject(subject).c_str());
    return;
  }
  // A model directory's training datasets are erased with the others, then it is retrained.
  std::vector<std::pair<std::string, serve::TrainOptions>> models;
  for (const auto& dir : a.model_dirs) {
    auto store = storage::OpenStorage(dir, a.storage);
    const auto manifest = store->GetIfExists(serve::kModelManifestKey);
    if (!manifest) throw InvalidArgumentError(dir + ": no model.json: not a model directory; nothing erased");
    const json m = json::parse(*manifest, nullptr, /*allow_exceptions=*/false);
    if (m.is_discarded()) throw InvalidArgumentError(store->Uri(serve::kModelManifestKey) + ": not valid JSON; nothing erased");
    models.emplace_back(dir, serve::RetrainOptions(m, store->Uri(serve::kModelManifestKey)));
    std::set<std::string> known;
    for (const auto& d : a.datasets) known.insert(SameDatasetKey(d));
    for (const auto* list : {&models.back().second.datasets, &models.back().second.negatives}) {
      for (const auto& uri : *list) {
        if (known.insert(SameDatasetKey(uri)).second) a.datasets.push_back(uri);
      }
    }
  }
  if (a.datasets.empty() && a.stores.empty()) throw InvalidArgumentError("forget: pass --dataset OUT and/or --store RAW");
  std::vector<std::string> roots = a.datasets;
  roots.insert(roots.end(), a.stores.begin(), a.stores.end());
  std::unique_ptr<privacy::ConsentLedger> ledger;
  if (!a.ledger.empty()) ledger = privacy::ConsentLedger::Open(a.ledger, privacy::ConsentLedger::Mode::kExisting);
  // Who: one person, or every pending request (all in one pass: each dataset is rewritten and
  // each model retrained once).
  std::vector<std::string> subjects;
  if (a.pending) {
    if (!ledger) throw InvalidArgumentError("forget --pending: pass --ledger (the requests are recorded there)");
    subjects = ledger->PendingErasures();
    if (subjects.empty()) {
      std::printf("forget --pending: no pending erasure request\n");
      return;
    }
  } else {
    subjects.push_back(ResolveSubject(a.subject, roots));
  }
  privacy::AuditLog log(privacy::ResolveAuditLogPath(a.audit_log, a.ledger));
  // Every target is checked before the first photo is deleted.
  std::vector<std::unique_ptr<storage::Storage>> datasets;
  for (const auto& uri : a.datasets) {
    datasets.push_back(storage::OpenStorage(uri, a.storage));
    if (!datasets.back()->Exists(dataset::kPlanKey)) {
      throw InvalidArgumentError(uri + ": not a fruitpipe dataset (no _plan.json); nothing erased");
    }
  }
  const double start = MonotonicSeconds();
  privacy::ErasureSelector selector;
  selector.subjects.insert(subjects.begin(), subjects.end());
  privacy::ErasureReport report;
  int consents = 0, contributions = 0;
  const std::optional<std::string> audit_subject = subjects.size() == 1 ? std::optional(subjects.front()) : std::nullopt;
  Audited(log, "forget", audit_subject, [&] {
    // Raw photos first: once they are gone no run can bring the rows back.
    for (const auto& uri : a.stores) {
      auto store = storage::OpenStorage(uri, a.storage);
      privacy::DeletePhotos(*store, selector, &report);
    }
    std::vector<storage::Storage*> targets;
    for (auto& out : datasets) targets.push_back(out.get());
    privacy::EraseFromDatasets(targets, selector, &report);
    if (ledger) {
      const std::int64_t now = WallEpochSeconds();
      for (const auto& subject : subjects) {
        consents += ledger->WithdrawAll(subject, now);
        contributions += ledger->MarkSubjectErased(subject, now);
      }
    }
    for (auto& [dir, options] : models) serve::TrainModel(options, dir, a.storage);
    if (a.pending) {
      for (const auto& subject : subjects) ledger->MarkErasureDone(subject, WallEpochSeconds());
    }
  });
  const double seconds = MonotonicSeconds() - start;
  json fields = report.ToJson();
  fields["datasets"] = a.datasets;
  fields["stores"] = a.stores;
  fields["consents_withdrawn"] = consents;
  fields["contributions_erased"] = contributions;
  fields["models_retrained"] = a.model_dirs;
  fields["seconds"] = std::round(seconds * 1000) / 1000;
  // One line per person, so that a subject's history can be found by their id.
  privacy::AuditHead head;
  for (const auto& subject : subjects) head = log.Append("forget", subject, fields);
  const std::string what = subjects.size() == 1 && !a.pending
                               ? "forget subject " + ShortSubject(subjects.front())
                               : "forget " + std::to_string(subjects.size()) + " pending request(s)";
  PrintReport(what.c_str(), report, seconds, a.json_output,
              {{"audit_seq", head.seq}, {"consents_withdrawn", consents}, {"models_retrained", a.model_dirs},
               {"subjects", subjects.size()}});
  if (!a.json_output) {
    for (const auto& dir : a.model_dirs) std::printf("  model %s retrained on the erased datasets\n", dir.c_str());
  }
}

void Purge(const EraseArgs& a) {
  if (a.older_than_days < 0) throw InvalidArgumentError("purge: --older-than DAYS must be >= 0");
  if (a.stores.size() != 1) throw InvalidArgumentError("purge: pass exactly one --store RAW (the ledger records ingests per store)");
  privacy::AuditLog log(privacy::ResolveAuditLogPath(a.audit_log, a.ledger));
  auto ledger = privacy::ConsentLedger::Open(a.ledger, privacy::ConsentLedger::Mode::kExisting);
  auto store = storage::OpenStorage(NormalRoot(a.stores.front()), a.storage);
  std::vector<std::unique_ptr<storage::Storage>> owned;
  std::vector<storage::Storage*> datasets;
  for (const auto& uri : a.datasets) {
    owned.push_back(storage::OpenStorage(uri, a.storage));
    if (!owned.back()->Exists(dataset::kPlanKey)) {
      throw InvalidArgumentError(uri + ": not a fruitpipe dataset (no _plan.json); nothing purged");
    }
    datasets.push_back(owned.back().get());
  }
  const std::int64_t now = WallEpochSeconds();
  const auto cutoff = now - static_cast<std::int64_t>(a.older_than_days * 86400.0);
  const double start = MonotonicSeconds();
  privacy::PurgeOutcome outcome;
  Audited(log, "purge", std::nullopt,
          [&] { outcome = privacy::PurgeExpired(*ledger, *store, datasets, cutoff, now); });
  const double seconds = MonotonicSeconds() - start;
  // One line per person, so that a subject's history can be found by their id.
  for (const auto& [subject, photos] : outcome.report.photos_by_subject) {
    const auto rows = outcome.report.rows_by_subject.find(subject);
    log.Append("purge", subject,
               {{"photos_deleted", photos},
                {"rows_removed", rows == outcome.report.rows_by_subject.end() ? 0 : rows->second},
                {"older_than_days", a.older_than_days}});
  }
  json fields = outcome.report.ToJson();
  fields["older_than_days"] = a.older_than_days;
  fields["ingested_before"] = IsoUtc(cutoff);
  fields["subjects"] = outcome.report.photos_by_subject.size();
  fields["store"] = store->Uri("");
  fields["datasets"] = a.datasets;
  const privacy::AuditHead head = log.Append("purge.summary", std::nullopt, fields);
  PrintReport(("purge (ingested before " + IsoUtc(cutoff) + ")").c_str(), outcome.report, seconds,
              a.json_output, {{"audit_seq", head.seq}, {"subjects", outcome.report.photos_by_subject.size()}});
}

// --- audit ---------------------------------------------------------------------------------

struct AuditArgs {
  std::string path;
  std::string head;  // "SEQ:HASH"
};

void AuditVerify(const AuditArgs& a) {
  std::optional<privacy::AuditHead> expected;
  if (!a.head.empty()) {
    const auto colon = a.head.find(':');
    try {
      if (colon == std::string::npos) throw std::invalid_argument("no colon");
      expected = privacy::AuditHead{std::stoll(a.head.substr(0, colon)), a.head.substr(colon + 1)};
    } catch (const std::exception&) {
      throw InvalidArgumentError("--head " + a.head + ": expected SEQ:HASH as printed by audit verify");
    }
  }
  const privacy::AuditVerdict v = privacy::AuditLog(a.path).Verify(expected);
  if (!v.ok) {
    std::fprintf(stderr, "fruitpipe: audit log %s: line %lld: %s\n", a.path.c_str(), static_cast<long long>(v.bad_line),
                 v.reason.c_str());
    ExitCode() = kExitError;
    return;
  }
  std::printf("ok: %lld lines, chain intact; head %lld:%s\n", static_cast<long long>(v.lines),
              static_cast<long long>(v.head.seq), v.head.hash.c_str());
}

}  // namespace

void AddPrivacyCommands(CLI::App& app) {
  static ConsentArgs grant_args, withdraw_args, show_args;
  auto* consent = app.add_subcommand("consent", "record, withdraw or show a person's consent (SQLite ledger)");
  consent->require_subcommand(1);
  auto* grant = consent->add_subcommand("grant", "record consent of a subject for a purpose");
  AddConsentCommon(grant, &grant_args, true);
  grant->callback([] { ConsentChange(grant_args, true); });
  auto* withdraw = consent->add_subcommand("withdraw", "record the withdrawal of a consent (history is kept)");
  AddConsentCommon(withdraw, &withdraw_args, true);
  withdraw->callback([] { ConsentChange(withdraw_args, false); });
  auto* show = consent->add_subcommand("show", "a subject's consent history and photo counts");
  AddConsentCommon(show, &show_args, false);
  show->callback([] { ConsentShow(show_args); });

  static IngestArgs ingest_args;
  auto* ingest = app.add_subcommand("ingest", "store a person's photos for a purpose they consented to, metadata stripped");
  AddSubjectOptions(ingest, &ingest_args.subject, false);
  ingest->add_option("--consent", ingest_args.purpose, "the purpose the photos are given for (consent must be recorded)")->required();
  ingest->add_option("--label", ingest_args.label, "the fruit: the folder the photos are stored under")->required();
  ingest->add_option("IMAGE", ingest_args.images, "JPEG or PNG files")->required()->check(CLI::ExistingFile);
  ingest->add_option("--store", ingest_args.store, "raw-photo store (folder or s3://bucket/prefix)")->required();
  ingest->add_option("--ledger", ingest_args.ledger, "consent ledger (SQLite file)")->required();
  ingest->add_option("--audit-log", ingest_args.audit_log, "audit log (default: $FRUITPIPE_AUDIT_LOG, else beside the ledger)");
  ingest->add_option("--max-pixels", ingest_args.limits.max_pixels, "refuse images declaring more pixels")->default_val(40'000'000);
  ingest->add_option("--max-bytes", ingest_args.limits.max_bytes, "refuse larger files")->default_val(64u << 20);
  AddStorageOptions(ingest, &ingest_args.storage);
  ingest->callback([] { Ingest(ingest_args); });

  static EraseArgs forget_args;
  auto* forget = app.add_subcommand("forget", "right to erasure: remove a person's photos and every row derived from them");
  AddSubjectOptions(forget, &forget_args.subject, true);
  forget->add_option("--dataset", forget_args.datasets, "dataset to erase from (repeatable)");
  forget->add_option("--store", forget_args.stores, "raw-photo store to delete their photos from (repeatable)");
  forget->add_option("--model-dir", forget_args.model_dirs,
                     "identifier trained on the data (repeatable): its datasets are erased too, then it is retrained "
                     "from them, byte-identical to fruitpipe train on the erased datasets");
  forget->add_option("--ledger", forget_args.ledger, "consent ledger: withdraw every consent, mark photos erased");
  forget->add_option("--audit-log", forget_args.audit_log, "audit log (default: $FRUITPIPE_AUDIT_LOG, else beside the ledger)");
  forget->add_flag("--json", forget_args.json_output, "print the report as JSON");
  auto* pending = forget->add_flag("--pending", forget_args.pending,
                                   "carry out every pending erasure request of --ledger (the batch job behind the "
                                   "app's delete-my-data button) and mark them done");
  auto* request = forget->add_flag("--request", forget_args.request,
                                   "record an erasure request for the person in --ledger instead of erasing now");
  pending->excludes(request);
  AddStorageOptions(forget, &forget_args.storage);
  forget->callback([] { Forget(forget_args); });

  static EraseArgs purge_args;
  auto* purge = app.add_subcommand("purge", "retention: erase contributed photos ingested more than DAYS ago, and their rows");
  purge->add_option("--older-than", purge_args.older_than_days, "age in days (by the ingest time in the ledger)")->required();
  purge->add_option("--store", purge_args.stores, "raw-photo store")->required();
  purge->add_option("--dataset", purge_args.datasets, "dataset to erase their rows from (repeatable)");
  purge->add_option("--ledger", purge_args.ledger, "consent ledger (records when each photo was ingested)")->required();
  purge->add_option("--audit-log", purge_args.audit_log, "audit log (default: $FRUITPIPE_AUDIT_LOG, else beside the ledger)");
  purge->add_flag("--json", purge_args.json_output, "print the report as JSON");
  AddStorageOptions(purge, &purge_args.storage);
  purge->callback([] { Purge(purge_args); });

  static AuditArgs verify_args;
  auto* audit = app.add_subcommand("audit", "the privacy audit log");
  audit->require_subcommand(1);
  auto* verify = audit->add_subcommand("verify", "check the hash chain; report the first broken line (exit 1)");
  verify->add_option("PATH", verify_args.path, "audit log (JSON lines)")->required();
  verify->add_option("--head", verify_args.head, "SEQ:HASH recorded earlier: also detects lines cut from the end");
  verify->callback([] { AuditVerify(verify_args); });
}

}  // namespace fruitpipe::cli
