// The app's routes: the page (GET /), the classes it offers as labels, and, with an
// AppBackend, contributions, consent and erasure requests. The person is named by the
// X-Subject-Id header (the app's user id), which AppBackend pseudonymises at once; the
// request log never holds headers or query strings.
#include "fruitpipe/serve/app_page.h"
#include "fruitpipe/serve/server.h"
#include "fruitpipe/serve/server_internal.h"

namespace fruitpipe::serve {

using namespace http_detail;

namespace {

constexpr char kSubjectHeader[] = "X-Subject-Id";
constexpr char kUnauthorized[] = "missing or invalid bearer token";

std::optional<std::string> UserIdOf(const httplib::Request& req) {
  if (!req.has_header(kSubjectHeader)) return std::nullopt;
  return req.get_header_value(kSubjectHeader);
}

}  // namespace

void Server::AppRoutes() {
  httplib::Server& http = impl_->http;

  // An AppBackend answer; refusals count like the others in /metrics.
  auto answer = [this](httplib::Response& res, const AppAnswer& a, bool unread_body) {
    if (a.status >= 400) metrics_.RecordRejection(a.outcome);
    CurrentRequest().outcome = a.outcome;
    SendJson(res, a.status, a.body);
    if (unread_body) res.set_header("Connection", "close");
  };

  http.Get(kPageRoute, [](const httplib::Request&, httplib::Response& res) {
    const AppPage& page = TheAppPage();
    res.status = 200;
    res.set_content(page.html, "text/html; charset=utf-8");
    res.set_header("Content-Security-Policy", page.content_security_policy);
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_header("Referrer-Policy", "no-referrer");
    res.set_header("Cache-Control", "no-cache");
    CurrentRequest().outcome = "page";
  });

  http.Get(kClassesRoute, [this](const httplib::Request& req, httplib::Response& res) {
    if (!Authorized(req)) return Reject(res, kRejectUnauthorized, kUnauthorized, false);
    const auto& classifier = identifier_.model().classifier;
    json classes = json::array();
    for (std::size_t i = 0; i < classifier.classes().size(); ++i) {
      classes.push_back({{"label", classifier.classes()[i]}, {"species", classifier.species()[i]}});
    }
    SendJson(res, 200, {{"classes", classes}, {"model", identifier_.model().id}, {"contributions", app_ != nullptr}});
  });

  if (!app_) return;  // the pre-routing check answers 404 for the routes below

  http.Post(kContributionsRoute, [this, answer](const httplib::Request& req, httplib::Response& res,
                                                const httplib::ContentReader& content_reader) {
    const Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(options_.timeout_ms);
    UploadBody upload(req, content_reader, options_.max_body_bytes, deadline);
    if (!Authorized(req)) return Reject(res, kRejectUnauthorized, kUnauthorized, !upload.Drain());
    int retry_after = 0;
    if (!app_->AdmitContribution(req.remote_addr, &retry_after)) {
      return Reject(res, kAppRateLimited,
                    "too many contributions from this address; retry in " + std::to_string(retry_after) + " s",
                    !upload.Drain(), retry_after);
    }
    const auto user = UserIdOf(req);
    const std::string label = req.get_param_value("label");
    const std::string purpose = req.get_param_value("purpose");
    // Consent and label are checked before the photo is read: a refused photo is never held.
    if (auto refusal = app_->CheckContribution(user, label, purpose)) return answer(res, *refusal, !upload.Drain());
    std::string reason;
    if (const char* category = upload.CheckHead(&reason)) {
      return answer(res, app_->RefuseUpload(user, label, purpose, StatusFor(category), category, reason),
                    !upload.Drain());
    }
    std::string photo;
    bool unread = false;
    if (const char* category = upload.Read(&photo, &reason, &unread)) {
      return answer(res, app_->RefuseUpload(user, label, purpose, StatusFor(category), category, reason), unread);
    }
    answer(res, app_->Contribute(user, label, purpose, std::move(photo)), false);
  });

  http.Get(kConsentRoute, [this, answer](const httplib::Request& req, httplib::Response& res) {
    if (!Authorized(req)) return Reject(res, kRejectUnauthorized, kUnauthorized, false);
    answer(res, app_->Consent(UserIdOf(req), req.get_param_value("purpose")), false);
  });

  // The JSON routes' bodies are at most kJsonBodyMaxBytes, with a declared length (pre-routing).
  http.Post(kConsentRoute, [this, answer](const httplib::Request& req, httplib::Response& res) {
    if (!Authorized(req)) return Reject(res, kRejectUnauthorized, kUnauthorized, false);
    answer(res, app_->ChangeConsent(UserIdOf(req), req.body), false);
  });

  http.Post(kErasureRequestsRoute, [this, answer](const httplib::Request& req, httplib::Response& res) {
    if (!Authorized(req)) return Reject(res, kRejectUnauthorized, kUnauthorized, false);
    answer(res, app_->RequestErasure(UserIdOf(req)), false);
  });
}

}  // namespace fruitpipe::serve
