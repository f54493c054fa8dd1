#include "fruitpipe/serve/app_backend.h"

#include "fruitpipe/common/error.h"
#include "fruitpipe/common/time.h"
#include "fruitpipe/privacy/ingest.h"

namespace fruitpipe::serve {
namespace {

using nlohmann::json;

AppAnswer Refusal(int status, const std::string& error, const std::string& reason) {
  return {status, {{"error", error}, {"reason", reason}}, error};
}

// The message of a caught error without the "ingest: " a CLI user sees first.
std::string Reason(const std::exception& e) {
  std::string what = e.what();
  constexpr std::string_view kPrefix = "ingest: ";
  if (what.rfind(kPrefix, 0) == 0) what.erase(0, kPrefix.size());
  return what;
}

}  // namespace

AppBackend::AppBackend(AppOptions options, std::vector<std::string> labels, image::DecodeLimits limits)
    : options_(std::move(options)),
      labels_(labels.begin(), labels.end()),
      limits_(limits),
      key_(privacy::SubjectKey::Load(options_.subject_key_file)),
      limiter_(options_.contributions_per_minute, options_.contributions_burst),
      ledger_(privacy::ConsentLedger::Open(options_.ledger, privacy::ConsentLedger::Mode::kCreate)),
      store_(storage::OpenStorage(options_.store, options_.storage)),
      store_uri_(store_->Uri("")),
      audit_(privacy::ResolveAuditLogPath(options_.audit_log, options_.ledger)) {}

std::optional<AppAnswer> AppBackend::Subject(const std::optional<std::string>& user_id, std::string* subject) const {
  if (!user_id || user_id->empty()) {
    return Refusal(400, kAppMissingSubject, "send the app's user id in the X-Subject-Id header");
  }
  try {
    *subject = key_.SubjectOf(*user_id);
  } catch (const InvalidArgumentError& e) {
    return Refusal(400, kAppBadSubject, e.what());
  }
  return std::nullopt;
}

bool AppBackend::AdmitContribution(const std::string& client, int* retry_after_s) {
  return limiter_.Admit(client, RateLimiter::Clock::now(), retry_after_s);
}

AppAnswer AppBackend::RefuseContribution(AppAnswer answer, const std::string& subject, const std::string& label,
                                         const std::string& purpose) {
  json fields = {{"error", answer.outcome}, {"store", store_uri_}};
  // Only names already checked: the query string may hold anything, and the log is JSON.
  if (labels_.count(label)) fields["label"] = label;
  try {
    privacy::CheckPurpose(purpose);
    fields["purpose"] = purpose;
  } catch (const InvalidArgumentError&) {
  }
  audit_.Append("contribution.refused", subject.empty() ? std::nullopt : std::optional<std::string>(subject), fields);
  return answer;
}

std::optional<AppAnswer> AppBackend::Precheck(const std::optional<std::string>& user_id, const std::string& label,
                                              const std::string& purpose, std::string* subject) {
  if (auto refusal = Subject(user_id, subject)) return RefuseContribution(*refusal, "", label, purpose);
  try {
    privacy::CheckPurpose(purpose);
  } catch (const InvalidArgumentError& e) {
    return RefuseContribution(Refusal(400, kAppBadPurpose, e.what()), *subject, label, purpose);
  }
  if (!labels_.count(label)) {
    return RefuseContribution(
        Refusal(422, kAppBadLabel, "label '" + label.substr(0, 64) + "' is not a class of this model (GET /v1/classes)"),
        *subject, label, purpose);
  }
  if (!ledger_->HasConsent(*subject, purpose)) {
    return RefuseContribution(Refusal(403, kAppNoConsent, "no active consent for " + purpose + ": nothing stored"),
                              *subject, label, purpose);
  }
  return std::nullopt;
}

std::optional<AppAnswer> AppBackend::CheckContribution(const std::optional<std::string>& user_id,
                                                       const std::string& label, const std::string& purpose) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string subject;
  return Precheck(user_id, label, purpose, &subject);
}

AppAnswer AppBackend::RefuseUpload(const std::optional<std::string>& user_id, const std::string& label,
                                   const std::string& purpose, int status, const std::string& category,
                                   const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string subject;
  Subject(user_id, &subject);
  return RefuseContribution({status, {{"error", category}, {"reason", reason}}, category}, subject, label, purpose);
}

AppAnswer AppBackend::Contribute(const std::optional<std::string>& user_id, const std::string& label,
                                 const std::string& purpose, std::string photo) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string subject;
  if (auto refusal = Precheck(user_id, label, purpose, &subject)) return *refusal;
  privacy::IngestRequest request;
  request.subject_id = subject;
  request.purpose = purpose;
  request.label = label;
  request.limits = limits_;
  request.photos.push_back({"upload", std::move(photo)});
  try {
    const auto stored = privacy::IngestPhotos(request, *ledger_, *store_, &audit_, WallEpochSeconds());
    return {201, {{"key", stored.front().key}, {"subject", privacy::ShortSubject(subject)}, {"label", label}},
            "stored"};
  } catch (const privacy::NoConsentError& e) {  // withdrawn while the body was read
    return RefuseContribution(Refusal(403, kAppNoConsent, Reason(e)), subject, label, purpose);
  } catch (const InvalidArgumentError& e) {
    return RefuseContribution(Refusal(422, kAppUnusableImage, Reason(e)), subject, label, purpose);
  }
}

AppAnswer AppBackend::Consent(const std::optional<std::string>& user_id, const std::string& purpose) {
  std::string subject;
  if (auto refusal = Subject(user_id, &subject)) return *refusal;
  try {
    privacy::CheckPurpose(purpose);
  } catch (const InvalidArgumentError& e) {
    return Refusal(400, kAppBadPurpose, e.what());
  }
  std::lock_guard<std::mutex> lock(mu_);
  const bool granted = ledger_->HasConsent(subject, purpose);
  return {200, {{"purpose", purpose}, {"consent", granted}, {"subject", privacy::ShortSubject(subject)}},
          granted ? "granted" : "none"};
}

AppAnswer AppBackend::ChangeConsent(const std::optional<std::string>& user_id, std::string_view body) {
  std::string subject;
  if (auto refusal = Subject(user_id, &subject)) return *refusal;
  const json request = json::parse(body, nullptr, /*allow_exceptions=*/false);
  const auto text = [&](const char* name) {
    return request.is_object() && request.contains(name) && request[name].is_string() ? request[name].get<std::string>()
                                                                                      : std::string();
  };
  const std::string purpose = text("purpose");
  const std::string action = text("action");
  if (action != "grant" && action != "withdraw") {
    return Refusal(400, kAppBadRequest, R"(send {"purpose": "...", "action": "grant" or "withdraw"} as JSON)");
  }
  try {
    privacy::CheckPurpose(purpose);
  } catch (const InvalidArgumentError& e) {
    return Refusal(400, kAppBadPurpose, e.what());
  }
  const bool grant = action == "grant";
  std::lock_guard<std::mutex> lock(mu_);
  const bool changed = privacy::ChangeConsent(*ledger_, &audit_, subject, purpose, grant, WallEpochSeconds());
  return {200,
          {{"purpose", purpose}, {"consent", grant}, {"changed", changed}, {"subject", privacy::ShortSubject(subject)}},
          grant ? "granted" : "withdrawn"};
}

AppAnswer AppBackend::RequestErasure(const std::optional<std::string>& user_id) {
  std::string subject;
  if (auto refusal = Subject(user_id, &subject)) return *refusal;
  std::lock_guard<std::mutex> lock(mu_);
  const bool recorded = privacy::RequestErasure(*ledger_, &audit_, subject, WallEpochSeconds());
  return {202,
          {{"status", "pending"},
           {"new", recorded},
           {"subject", privacy::ShortSubject(subject)},
           {"reason", "recorded; the erasure runs as a batch job (fruitpipe forget --pending)"}},
          recorded ? "requested" : "already_pending"};
}

}  // namespace fruitpipe::serve
