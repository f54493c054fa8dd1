#include "fruitpipe/serve/server.h"
#include "fruitpipe/serve/server_internal.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <deque>
#include <thread>
#include <unordered_map>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "fruitpipe/common/env_vars.h"
#include "fruitpipe/common/error.h"
#include "fruitpipe/common/time.h"
#include "fruitpipe/common/hash.h"

namespace fruitpipe::serve {
namespace http_detail {
namespace {

// What each route takes. `app`: answered only when the app routes are enabled (serve
// --ledger --store --subject-key-file), 404 otherwise.
struct RouteSpec {
  const char* path;
  bool get;
  bool post;
  bool app;
  bool json_body;  // kJsonBodyMaxBytes, with a declared length
};
constexpr RouteSpec kRoutes[] = {
    {kIdentifyRoute, false, true, false, false},      {kHealthRoute, true, false, false, false},
    {kMetricsRoute, true, false, false, false},       {kPageRoute, true, false, false, false},
    {kClassesRoute, true, false, false, false},       {kContributionsRoute, false, true, true, false},
    {kConsentRoute, true, true, true, true},          {kErasureRequestsRoute, false, true, true, true},
};
constexpr char kNoSuchRoute[] =
    "no such route: POST /v1/identify, GET /v1/classes, GET /, GET /healthz, GET /metrics "
    "(and, with contributions enabled, POST /v1/contributions, GET|POST /v1/consent, POST /v1/erasure-requests)";

const RouteSpec* SpecOf(const char* route) {
  for (const RouteSpec& r : kRoutes) {
    if (r.path == route) return &r;
  }
  return nullptr;
}

}  // namespace

const char* RouteOf(const std::string& path) {
  for (const RouteSpec& r : kRoutes) {
    if (path == r.path) return r.path;
  }
  return kOtherRoute;
}

void SendJson(httplib::Response& res, int status, const json& body) {
  res.status = status;
  // Reasons may quote request bytes (a content type, say) that are not UTF-8.
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

int StatusFor(const std::string& category) {
  if (category == kRejectEmpty || category == kRejectIncomplete) return 400;
  if (category == kRejectUnauthorized) return 401;
  if (category == kRejectMethod) return 405;
  if (category == kRejectTimeout || category == kRejectHeadTimeout) return 408;
  if (category == kRejectLengthRequired) return 411;
  if (category == kRejectTooLarge) return 413;
  if (category == kRejectMediaType) return 415;
  if (category == kAppRateLimited) return 429;
  if (category == kRejectHeadTooLarge) return 431;
  if (category == kRejectBusy || category == kRejectConnections) return 503;
  return 422;  // well-formed request, unusable image: not an image, corrupt, too many pixels
}

UploadBody::UploadBody(const httplib::Request& req, const httplib::ContentReader& reader, std::size_t max_body,
                       Clock::time_point deadline)
    : req_(req),
      reader_(reader),
      max_body_(max_body),
      drain_limit_(max_body > SIZE_MAX / kDrainFactor ? SIZE_MAX : max_body * kDrainFactor),
      deadline_(deadline) {
  // cpp-httplib would inflate a gzip body before we see it, and without a bound: such a body
  // is never read.
  const std::string encoding = MediaType(req.get_header_value("Content-Encoding"));
  encoded_ = !encoding.empty() && encoding != "identity";
  if (req.has_header("Content-Length")) {
    const std::string len = req.get_header_value("Content-Length");
    length_valid_ = !len.empty() && len.size() <= 19 && len.find_first_not_of("0123456789") == std::string::npos;
    if (length_valid_) declared_ = std::stoull(len);
  }
}

const char* UploadBody::CheckHead(std::string* reason) const {
  if (encoded_) {
    *reason = "Content-Encoding is not accepted; send the image bytes as they are";
    return kRejectMediaType;
  }
  const std::string type = MediaType(req_.get_header_value("Content-Type"));
  if (type != "image/jpeg" && type != "image/png" && type != "application/octet-stream") {
    *reason = "Content-Type '" + type.substr(0, 64) + "' is not image/jpeg, image/png or application/octet-stream";
    return kRejectMediaType;
  }
  if (!length_valid_ || declared_ > max_body_) {
    *reason = "body exceeds the limit of " + std::to_string(max_body_) + " bytes";
    return kRejectTooLarge;
  }
  return nullptr;
}

// Reads the body whatever the framing (length, chunked, or until close) into *body (null:
// drops it). Past max_body it goes on reading and dropping up to the drain limit; it gives up
// at the deadline.
UploadBody::Outcome UploadBody::Consume(std::string* body) {
  Outcome r;
  std::size_t seen = 0;
  r.complete = reader_([&](const char* data, std::size_t n) {
    seen += n;
    if (seen > max_body_) r.too_large = true;
    if (seen > drain_limit_) return false;
    if (Clock::now() > deadline_) {
      r.timed_out = true;
      return false;
    }
    if (body && !r.too_large) body->append(data, n);
    return true;
  });
  // A stalled body fails the read once the read timeout (the request timeout) has passed.
  if (!r.complete && Clock::now() >= deadline_) r.timed_out = true;
  CurrentRequest().body_bytes = seen;
  return r;
}

bool UploadBody::Drain() {
  const bool drainable = !encoded_ && length_valid_ && declared_ <= drain_limit_;
  return drainable && Consume(nullptr).complete;
}

const char* UploadBody::Read(std::string* body, std::string* reason, bool* unread) {
  const Outcome read = Consume(body);
  *unread = !read.complete;
  if (read.too_large) {
    *reason = "body exceeds the limit of " + std::to_string(max_body_) + " bytes";
    return kRejectTooLarge;
  }
  if (read.timed_out) {
    *reason = "the body was not received within the request timeout";
    *unread = true;
    return kRejectTimeout;
  }
  if (!read.complete) {
    *reason = "the body ended before its declared length";
    return kRejectIncomplete;
  }
  if (body->empty()) {
    *reason = "empty body: send the image bytes";
    return kRejectEmpty;
  }
  return nullptr;
}

}  // namespace http_detail

using namespace http_detail;

std::string MediaType(std::string_view content_type) {
  const auto semi = content_type.find(';');
  std::string_view t = content_type.substr(0, semi);
  while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
  while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
  std::string out(t);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool TokenMatches(std::string_view presented, std::string_view expected) {
  // Hashing first makes the comparison's duration independent of the lengths; CRYPTO_memcmp
  // makes it independent of where the digests differ.
  const Sha256Digest a = Sha256(presented);
  const Sha256Digest b = Sha256(expected);
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string ReadTokenFile(const std::string& path) {
  std::string text = ReadLocalFile(path);
  const auto eol = text.find_first_of("\r\n");
  std::string token = text.substr(0, eol);
  while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.pop_back();
  while (!token.empty() && (token.front() == ' ' || token.front() == '\t')) token.erase(0, 1);
  if (token.empty()) throw InvalidArgumentError(path + ": token file is empty");
  for (unsigned char c : token) {
    if (c < 0x21 || c > 0x7e) throw InvalidArgumentError(path + ": token holds a character that is not printable ASCII");
  }
  return token;
}

Server::Server(Identifier& identifier, ServerOptions options, AppBackend* app)
    : identifier_(identifier), options_(std::move(options)), app_(app), impl_(std::make_unique<Impl>(*this)) {
  const auto& m = identifier_.model();
  metrics_.SetModelInfo({{"model", m.id},
                         {"feature_model", m.feature_model.name},
                         {"feature_backend", identifier_.feature_backend()},
                         {"classes", std::to_string(m.classes().size())},
                         {"workers", std::to_string(identifier_.workers())}});
  Routes();
}

Server::~Server() = default;

void Server::Routes() {
  httplib::Server& http = impl_->http;
  // The listener only accepts: each socket goes to the poller (HttpServer::process_and_close_socket).
  http.new_task_queue = [] { return new InlineTaskQueue; };
  const time_t sec = options_.timeout_ms / 1000;
  const time_t usec = (options_.timeout_ms % 1000) * 1000;
  http.set_read_timeout(sec, usec);
  http.set_write_timeout(sec, usec);
  // httplib writes the headers and the body of a response separately: without TCP_NODELAY,
  // Nagle's algorithm holds the body until the client's delayed ACK (~40 ms per response).
  // (Set on the listening socket; Accept sets it on each connection too.)
  http.set_tcp_nodelay(true);
  // Only the Keep-Alive header of the answers: the connection loop is ServeRequests'.
  http.set_keep_alive_max_count(kKeepAliveMaxCount);
  http.set_keep_alive_timeout(kKeepAliveSeconds);
  // The most httplib reads of any body; /v1/identify applies max_body_bytes itself.
  http.set_payload_max_length(options_.max_body_bytes > SIZE_MAX / kDrainFactor ? SIZE_MAX
                                                                                 : options_.max_body_bytes * kDrainFactor);

  auto start_request = [this](const httplib::Request& req) {
    if (CurrentConnection()) CurrentConnection()->head_done = true;
    if (CurrentRequest().active) return;  // the Expect: 100-continue handler started it
    CurrentRequest() = RequestContext{};
    CurrentRequest().active = true;
    CurrentRequest().start = Clock::now();
    CurrentRequest().route = RouteOf(req.path);
    metrics_.RequestStarted();
  };

  // The limits every route shares, checked on the head before any byte of the body is read:
  // unknown routes (404, the app routes too when they are not enabled), methods the route
  // does not take (405), a declared body over the limit (413), a JSON body without a length
  // (411). A refused request that announced a body is answered with Connection: close (the
  // lingering close drops what the client still sends). False: `res` holds the refusal.
  auto admit = [this](const httplib::Request& req, httplib::Response& res) {
    const bool has_body = req.has_header("Transfer-Encoding") ||
                          (req.has_header("Content-Length") && req.get_header_value("Content-Length") != "0");
    auto refuse = [&](int status, const char* error, const std::string& reason) {
      if (status != 404) metrics_.RecordRejection(error);
      CurrentRequest().outcome = error;
      SendJson(res, status, {{"error", error}, {"reason", reason}});
      if (has_body) res.set_header("Connection", "close");
      return false;
    };
    const RouteSpec* spec = SpecOf(RouteOf(req.path));
    if (!spec) return refuse(404, "not_found", kNoSuchRoute);
    if (spec->app && !app_) {
      return refuse(404, "not_found",
                    std::string(spec->path) +
                        ": contributions are not enabled on this server (fruitpipe serve --ledger --store --subject-key-file)");
    }
    const bool get = req.method == "GET" || req.method == "HEAD";
    if (get ? !spec->get : req.method != "POST" || !spec->post) {
      const char* allow = spec->get && spec->post ? "GET, HEAD, POST" : spec->post ? "POST" : "GET, HEAD";
      res.set_header("Allow", allow);
      return refuse(405, kRejectMethod, std::string(spec->path) + " takes " + allow);
    }
    const std::size_t max_body = spec->json_body ? kJsonBodyMaxBytes : options_.max_body_bytes;
    if (spec->json_body && req.method == "POST" && !req.has_header("Content-Length")) {
      return refuse(411, kRejectLengthRequired, std::string(spec->path) + " takes a JSON body with a Content-Length");
    }
    if (req.has_header("Content-Length")) {
      std::string len = req.get_header_value("Content-Length");
      if (!len.empty() && len.find_first_not_of("0123456789") == std::string::npos) {
        len.erase(0, std::min(len.find_first_not_of('0'), len.size() - 1));
        if (len.size() > 19 || std::stoull(len) > max_body) {
          return refuse(413, kRejectTooLarge, "body exceeds the limit of " + std::to_string(max_body) + " bytes");
        }
      }
    }
    return true;
  };

  http.set_pre_routing_handler([start_request, admit](const httplib::Request& req, httplib::Response& res) {
    start_request(req);
    return admit(req, res) ? httplib::Server::HandlerResponse::Unhandled : httplib::Server::HandlerResponse::Handled;
  });

  // httplib answers "100 Continue" before routing: the same limits decide first, so a refused
  // client never starts sending its body.
  http.set_expect_100_continue_handler([start_request, admit](const httplib::Request& req, httplib::Response& res) {
    start_request(req);
    return admit(req, res) ? 100 : res.status;
  });

  http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    RequestContext ctx = CurrentRequest();
    CurrentRequest() = RequestContext{};
    double seconds = 0;
    if (ctx.active) {
      seconds = std::chrono::duration<double>(Clock::now() - ctx.start).count();
      metrics_.RequestFinished();
    }
    metrics_.RecordRequest(ctx.route, res.status, seconds);
    if (CurrentConnection()) {
      // A body left unread, or a head httplib refused itself (400, 414): the connection ends.
      bool close = !ctx.active;
      const auto range = res.headers.equal_range("Connection");
      for (auto it = range.first; it != range.second; ++it) close = close || it->second == "close";
      CurrentConnection()->close_after = close;
    }
    if (!options_.log_requests) return;
    LogRequest(req.method.empty() ? "-" : req.method.c_str(), ctx.route, res.status, seconds, ctx.body_bytes,
               ctx.outcome);
  });

  http.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    const char* error = res.status == 404 ? "not_found" : res.status == 413 ? kRejectTooLarge : "bad_request";
    const std::string reason = res.status == 404   ? std::string(kNoSuchRoute)
                               : res.status == 414 ? "request URI too long"
                                                   : "malformed or refused request (HTTP " + std::to_string(res.status) + ")";
    SendJson(res, res.status, {{"error", error}, {"reason", reason}});
    return httplib::Server::HandlerResponse::Handled;
  }));

  // A bug, not a bad request: the client gets no detail, the operator's log gets the message.
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr error) {
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s internal error: %s\n", IsoUtc(WallSeconds(), /*millis=*/true).c_str(), e.what());
    } catch (...) {
      std::fprintf(stderr, "%s internal error: unknown exception\n", IsoUtc(WallSeconds(), /*millis=*/true).c_str());
    }
    SendJson(res, 500, {{"error", "internal"}, {"reason", "internal error"}});
  });

  http.Post(kIdentifyRoute, [this](const httplib::Request& req, httplib::Response& res,
                                   const httplib::ContentReader& content_reader) {
    const Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(options_.timeout_ms);
    UploadBody upload(req, content_reader, options_.max_body_bytes, deadline);
    if (!Authorized(req)) return Reject(res, kRejectUnauthorized, "missing or invalid bearer token", !upload.Drain());
    std::string reason;
    if (const char* category = upload.CheckHead(&reason)) return Reject(res, category, reason, !upload.Drain());
    // The photo lives in this string until the handler returns, and nowhere else.
    std::string body;
    bool unread = false;
    if (const char* category = upload.Read(&body, &reason, &unread)) return Reject(res, category, reason, unread);

    const IdentifyOutcome outcome = identifier_.Identify(body, deadline);
    if (!outcome.ok) return Reject(res, outcome.category, outcome.reason, false);
    metrics_.RecordIdentified(outcome.result.unknown);
    CurrentRequest().outcome = outcome.result.unknown ? "unknown" : outcome.result.label;
    json answer = IdentificationJson(outcome.result);
    answer["model"] = identifier_.model().id;
    SendJson(res, 200, answer);
  });

  http.Get(kHealthRoute, [this](const httplib::Request&, httplib::Response& res) {
    SendJson(res, 200, {{"status", "ok"}, {"model", identifier_.model().id}, {"workers", identifier_.workers()}});
  });

  http.Get(kMetricsRoute, [this](const httplib::Request& req, httplib::Response& res) {
    if (!Authorized(req)) return Reject(res, kRejectUnauthorized, "missing or invalid bearer token", false);
    res.status = 200;
    res.set_content(metrics_.RenderPrometheus(), "text/plain; version=0.0.4; charset=utf-8");
  });

  AppRoutes();
}

bool Server::Authorized(const httplib::Request& req) const {
  if (options_.token.empty()) return true;
  const std::string auth = req.get_header_value("Authorization");
  constexpr std::string_view kBearer = "bearer ";  // the scheme is case-insensitive (RFC 7235)
  if (auth.size() <= kBearer.size() || MediaType(auth.substr(0, kBearer.size() - 1)) + " " != kBearer) return false;
  return TokenMatches(std::string_view(auth).substr(kBearer.size()), options_.token);
}

void Server::Reject(httplib::Response& res, const std::string& category, const std::string& reason, bool unread_body,
                    int retry_after_s) {
  metrics_.RecordRejection(category);
  CurrentRequest().outcome = category;
  SendJson(res, StatusFor(category), {{"error", category}, {"reason", reason}});
  if (category == kRejectUnauthorized) res.set_header("WWW-Authenticate", "Bearer realm=\"fruitpipe\"");
  if (category == kRejectBusy) retry_after_s = std::max(retry_after_s, 1);
  if (retry_after_s > 0) res.set_header("Retry-After", std::to_string(retry_after_s));
  if (unread_body) res.set_header("Connection", "close");
}

void Server::Bind() {
  HttpServer& http = impl_->http;
  if (options_.port == 0) {
    port_ = http.bind_to_any_port(options_.host);
    if (port_ <= 0) throw IOError(options_.host + ": cannot listen on any port");
  } else {
    if (!http.bind_to_port(options_.host, options_.port)) {
      throw IOError(options_.host + ":" + std::to_string(options_.port) + ": cannot listen (address in use or not local?)");
    }
    port_ = options_.port;
  }
  if (!impl_->http.RaiseBacklog()) throw IOError(options_.host + ":" + std::to_string(port_) + ": listen failed");
}

void Server::Run() {
  httplib::Server& http = impl_->http;
  impl_->Start();
  std::thread listener([this, &http] {
    http.listen_after_bind();
    std::lock_guard<std::mutex> lock(mu_);
    listener_done_ = true;
    cv_.notify_all();
  });
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return stop_requested_ || listener_done_; });
  // httplib's stop() does nothing until the listener has started; it closes the listening
  // socket and the listener returns.
  while (!listener_done_ && !http.is_running()) {
    lock.unlock();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    lock.lock();
  }
  const bool stop = !listener_done_;
  lock.unlock();
  if (stop) http.stop();
  listener.join();
  // Then the connections: idle and head-waiting ones close, requests in progress finish.
  impl_->Shutdown();
}

void Server::Stop() {
  std::lock_guard<std::mutex> lock(mu_);
  stop_requested_ = true;
  cv_.notify_all();
}

}  // namespace fruitpipe::serve
