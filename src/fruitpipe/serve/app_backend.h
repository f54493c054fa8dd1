// The app's side of the service, without HTTP: contributions (privacy::IngestPhotos, as
// `fruitpipe ingest`), consent and erasure requests for a person known by the app's user id.
// The user id is pseudonymised on arrival (pseudonym.h) and never logged or stored; answers
// and log lines carry the shortened subject id only. Every contribution that reaches
// Contribute, stored or refused, leaves one audit line. Thread-safe: the ledger, the store
// and the audit log are used by one request at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "fruitpipe/image/decode.h"
#include "fruitpipe/privacy/audit_log.h"
#include "fruitpipe/privacy/consent_ledger.h"
#include "fruitpipe/privacy/pseudonym.h"
#include "fruitpipe/serve/rate_limit.h"
#include "fruitpipe/storage/storage.h"

namespace fruitpipe::serve {

struct AppOptions {
  std::string ledger;            // consent ledger (created, mode 0600, when missing)
  std::string store;             // where contributed photos go: a local folder or s3://
  std::string subject_key_file;  // "": $FRUITPIPE_SUBJECT_KEY
  std::string audit_log;         // "": $FRUITPIPE_AUDIT_LOG, else audit.jsonl beside the ledger
  storage::StorageOptions storage;
  // Contributions per client address: `burst` at once, then `per_minute` (0: no limit).
  int contributions_per_minute = 6;
  int contributions_burst = 3;
};

// What an app route answers: the HTTP status and JSON body; `outcome` names it for the
// request log ("stored", or the error category).
struct AppAnswer {
  int status = 200;
  nlohmann::json body;
  std::string outcome;
};

// Error categories of the app routes (JSON "error", metrics).
inline constexpr char kAppMissingSubject[] = "missing_subject";   // 400: no X-Subject-Id
inline constexpr char kAppBadSubject[] = "bad_subject";           // 400
inline constexpr char kAppBadPurpose[] = "bad_purpose";           // 400
inline constexpr char kAppBadLabel[] = "bad_label";               // 422: not a class of the model
inline constexpr char kAppBadRequest[] = "bad_request";           // 400: a malformed JSON body
inline constexpr char kAppNoConsent[] = "no_consent";             // 403
inline constexpr char kAppUnusableImage[] = "unusable_image";     // 422: not stored
inline constexpr char kAppRateLimited[] = "rate_limited";         // 429

class AppBackend {
 public:
  // `labels`: the classes a contribution may be labelled with (the model's). Opens the
  // ledger, the store and the key; throws InvalidArgumentError (no key, a key stored with
  // the photos), IOError or CorruptionError naming what failed.
  AppBackend(AppOptions options, std::vector<std::string> labels, image::DecodeLimits limits);

  // Before the body is read: the rate limit (false, *retry_after_s set) for `client` (its
  // address).
  bool AdmitContribution(const std::string& client, int* retry_after_s);
  // Before the body is read: nullopt when a contribution from `user_id` (nullopt: no header)
  // for `label` and `purpose` may go on; else the refusal, audited.
  std::optional<AppAnswer> CheckContribution(const std::optional<std::string>& user_id, const std::string& label,
                                             const std::string& purpose);
  // A contribution refused for its body (media type, size, framing): the answer, audited.
  AppAnswer RefuseUpload(const std::optional<std::string>& user_id, const std::string& label,
                         const std::string& purpose, int status, const std::string& category,
                         const std::string& reason);
  // Checks again (consent may have changed), then stores the photo: 201 {"key", "subject"}.
  AppAnswer Contribute(const std::optional<std::string>& user_id, const std::string& label,
                       const std::string& purpose, std::string photo);

  AppAnswer Consent(const std::optional<std::string>& user_id, const std::string& purpose);
  // `body`: {"purpose": "...", "action": "grant"|"withdraw"}.
  AppAnswer ChangeConsent(const std::optional<std::string>& user_id, std::string_view body);
  AppAnswer RequestErasure(const std::optional<std::string>& user_id);

  const std::string& store_uri() const { return store_uri_; }
  const std::string& ledger_path() const { return options_.ledger; }

 private:
  // The subject id of the header, or the refusal.
  std::optional<AppAnswer> Subject(const std::optional<std::string>& user_id, std::string* subject) const;
  std::optional<AppAnswer> Precheck(const std::optional<std::string>& user_id, const std::string& label,
                                    const std::string& purpose, std::string* subject);
  AppAnswer RefuseContribution(AppAnswer answer, const std::string& subject, const std::string& label,
                               const std::string& purpose);

  AppOptions options_;
  std::set<std::string> labels_;
  image::DecodeLimits limits_;
  privacy::SubjectKey key_;
  RateLimiter limiter_;
  std::mutex mu_;  // guards what follows
  std::unique_ptr<privacy::ConsentLedger> ledger_;
  std::unique_ptr<storage::Storage> store_;
  std::string store_uri_;
  privacy::AuditLog audit_;
};

}  // namespace fruitpipe::serve
