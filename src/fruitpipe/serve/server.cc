#include "fruitpipe/serve/server.h"

#include <openssl/crypto.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "fruitpipe/common/env_vars.h"
#include "fruitpipe/common/error.h"
#include "fruitpipe/common/time.h"
#include "fruitpipe/common/hash.h"

namespace fruitpipe::serve {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr char kIdentifyRoute[] = "/v1/identify";
constexpr char kHealthRoute[] = "/healthz";
constexpr char kMetricsRoute[] = "/metrics";
constexpr char kOtherRoute[] = "other";
constexpr std::size_t kDrainFactor = 4;

// Categories the HTTP layer adds to the identifier's (metrics labels, JSON "error").
constexpr char kRejectUnauthorized[] = "unauthorized";
constexpr char kRejectMediaType[] = "unsupported_media_type";
constexpr char kRejectTimeout[] = "timeout";
constexpr char kRejectIncomplete[] = "incomplete_body";

// What the logger needs about the request this thread is handling. cpp-httplib runs the
// pre-routing handler, the route handler and the logger of one request on one thread.
struct RequestContext {
  bool active = false;       // set by pre-routing; false for requests httplib refused itself
  Clock::time_point start;
  const char* route = kOtherRoute;
  std::string outcome;       // label or rejection category, for the log line
  std::size_t body_bytes = 0;
};
thread_local RequestContext tls_request;

const char* RouteOf(const std::string& path) {
  if (path == kIdentifyRoute) return kIdentifyRoute;
  if (path == kHealthRoute) return kHealthRoute;
  if (path == kMetricsRoute) return kMetricsRoute;
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
  if (category == kRejectTimeout) return 408;
  if (category == kRejectTooLarge) return 413;
  if (category == kRejectMediaType) return 415;
  if (category == kRejectBusy) return 503;
  return 422;  // well-formed request, unusable image: not an image, corrupt, too many pixels
}


}  // namespace

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

// Debian's cpp-httplib is built with a listen backlog of 5: a burst of new connections beyond
// that waits for SYN retransmits (1 s, then 3 s). listen() again on the bound socket raises it.
class HttpServer : public httplib::Server {
 public:
  bool RaiseBacklog() { return ::listen(svr_sock_, SOMAXCONN) == 0; }
};

struct Server::Impl {
  HttpServer http;
};

Server::Server(Identifier& identifier, ServerOptions options)
    : identifier_(identifier), options_(std::move(options)), impl_(std::make_unique<Impl>()) {
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
  const int threads = std::max(1, options_.connection_threads);
  http.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<std::size_t>(threads)); };
  const time_t sec = options_.timeout_ms / 1000;
  const time_t usec = (options_.timeout_ms % 1000) * 1000;
  http.set_read_timeout(sec, usec);
  http.set_write_timeout(sec, usec);
  // httplib writes the headers and the body of a response separately: without TCP_NODELAY,
  // Nagle's algorithm holds the body until the client's delayed ACK (~40 ms per response).
  http.set_tcp_nodelay(true);
  http.set_keep_alive_max_count(1000);
  http.set_keep_alive_timeout(5);
  // The most httplib reads of any body; /v1/identify applies max_body_bytes itself.
  http.set_payload_max_length(options_.max_body_bytes > SIZE_MAX / kDrainFactor ? SIZE_MAX
                                                                                 : options_.max_body_bytes * kDrainFactor);

  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response&) {
    tls_request = RequestContext{};
    tls_request.active = true;
    tls_request.start = Clock::now();
    tls_request.route = RouteOf(req.path);
    metrics_.RequestStarted();
    return httplib::Server::HandlerResponse::Unhandled;
  });

  http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    RequestContext ctx = tls_request;
    tls_request = RequestContext{};
    double seconds = 0;
    if (ctx.active) {
      seconds = std::chrono::duration<double>(Clock::now() - ctx.start).count();
      metrics_.RequestFinished();
    }
    metrics_.RecordRequest(ctx.route, res.status, seconds);
    if (!options_.log_requests) return;
    // No client address, no headers, no query string: nothing that identifies the user.
    std::fprintf(stderr, "%s %s %s %d %.1fms %zuB %s\n", IsoUtc(WallSeconds(), /*millis=*/true).c_str(),
                 req.method.empty() ? "-" : req.method.c_str(), ctx.route, res.status, seconds * 1000,
                 ctx.body_bytes, ctx.outcome.empty() ? "-" : ctx.outcome.c_str());
  });

  http.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    const char* error = res.status == 404 ? "not_found" : res.status == 413 ? kRejectTooLarge : "bad_request";
    const std::string reason = res.status == 404   ? "no such route: POST /v1/identify, GET /healthz, GET /metrics"
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

  auto authorized = [this](const httplib::Request& req) {
    if (options_.token.empty()) return true;
    const std::string auth = req.get_header_value("Authorization");
    constexpr std::string_view kBearer = "bearer ";  // the scheme is case-insensitive (RFC 7235)
    if (auth.size() <= kBearer.size() || MediaType(auth.substr(0, kBearer.size() - 1)) + " " != kBearer) return false;
    return TokenMatches(std::string_view(auth).substr(kBearer.size()), options_.token);
  };

  // Refuses the request; `unread_body`: the body is still on the socket, so the connection
  // cannot carry another request.
  auto reject = [this](httplib::Response& res, const std::string& category, const std::string& reason,
                       bool unread_body) {
    metrics_.RecordRejection(category);
    tls_request.outcome = category;
    SendJson(res, StatusFor(category), {{"error", category}, {"reason", reason}});
    if (category == kRejectUnauthorized) res.set_header("WWW-Authenticate", "Bearer realm=\"fruitpipe\"");
    if (category == kRejectBusy) res.set_header("Retry-After", "1");
    if (unread_body) res.set_header("Connection", "close");
  };

  http.Post(kIdentifyRoute, [this, authorized, reject](const httplib::Request& req, httplib::Response& res,
                                                        const httplib::ContentReader& content_reader) {
    const Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(options_.timeout_ms);
    // cpp-httplib would inflate a gzip body before we see it, and without a bound: such a
    // body is never read.
    const std::string encoding = MediaType(req.get_header_value("Content-Encoding"));
    const bool encoded = !encoding.empty() && encoding != "identity";
    // Refused bodies are still read and dropped when they are at most kDrainFactor times the
    // limit, so that the client gets its answer (closing a socket with unread data resets the
    // connection, which can destroy the response in flight) and the connection survives.
    const std::size_t max_body = options_.max_body_bytes;
    const std::size_t drain_limit = max_body > SIZE_MAX / kDrainFactor ? SIZE_MAX : max_body * kDrainFactor;
    std::uint64_t declared = 0;
    bool length_valid = true;
    if (req.has_header("Content-Length")) {
      const std::string len = req.get_header_value("Content-Length");
      length_valid = !len.empty() && len.size() <= 19 && len.find_first_not_of("0123456789") == std::string::npos;
      if (length_valid) declared = std::stoull(len);
    }

    // Reads the body whatever the framing (length, chunked, or until close) into *body (null:
    // drops it). Past max_body it goes on reading and dropping up to drain_limit; it gives up
    // at the deadline.
    struct BodyRead {
      bool complete = false;   // the whole body was consumed: the connection can go on
      bool too_large = false;
      bool timed_out = false;
    };
    auto read_body = [&](std::string* body) {
      BodyRead r;
      std::size_t seen = 0;
      r.complete = content_reader([&](const char* data, std::size_t n) {
        seen += n;
        if (seen > max_body) r.too_large = true;
        if (seen > drain_limit) return false;
        if (Clock::now() > deadline) {
          r.timed_out = true;
          return false;
        }
        if (body && !r.too_large) body->append(data, n);
        return true;
      });
      // A stalled body fails the read once the read timeout (the request timeout) has passed.
      if (!r.complete && Clock::now() >= deadline) r.timed_out = true;
      tls_request.body_bytes = seen;
      return r;
    };
    auto refuse = [&](const char* category, const std::string& reason) {
      const bool drainable = !encoded && length_valid && declared <= drain_limit;
      reject(res, category, reason, !(drainable && read_body(nullptr).complete));
    };

    if (!authorized(req)) return refuse(kRejectUnauthorized, "missing or invalid bearer token");
    if (encoded) return refuse(kRejectMediaType, "Content-Encoding is not accepted; send the image bytes as they are");
    const std::string type = MediaType(req.get_header_value("Content-Type"));
    if (type != "image/jpeg" && type != "image/png" && type != "application/octet-stream") {
      return refuse(kRejectMediaType,
                    "Content-Type '" + type.substr(0, 64) + "' is not image/jpeg, image/png or application/octet-stream");
    }
    const std::string too_large = "body exceeds the limit of " + std::to_string(max_body) + " bytes";
    if (!length_valid || declared > max_body) return refuse(kRejectTooLarge, too_large);

    // The photo lives in this string until the handler returns, and nowhere else.
    std::string body;
    const BodyRead read = read_body(&body);
    if (read.too_large) return reject(res, kRejectTooLarge, too_large, !read.complete);
    if (read.timed_out) return reject(res, kRejectTimeout, "the body was not received within the request timeout", true);
    if (!read.complete) return reject(res, kRejectIncomplete, "the body ended before its declared length", true);
    if (body.empty()) return reject(res, kRejectEmpty, "empty body: send the image bytes", false);

    const IdentifyOutcome outcome = identifier_.Identify(body, deadline);
    if (!outcome.ok) return reject(res, outcome.category, outcome.reason, false);
    metrics_.RecordIdentified(outcome.result.unknown);
    tls_request.outcome = outcome.result.unknown ? "unknown" : outcome.result.label;
    json answer = IdentificationJson(outcome.result);
    answer["model"] = identifier_.model().id;
    SendJson(res, 200, answer);
  });

  http.Get(kHealthRoute, [this](const httplib::Request&, httplib::Response& res) {
    SendJson(res, 200, {{"status", "ok"}, {"model", identifier_.model().id}, {"workers", identifier_.workers()}});
  });

  http.Get(kMetricsRoute, [this, authorized, reject](const httplib::Request& req, httplib::Response& res) {
    if (!authorized(req)) return reject(res, kRejectUnauthorized, "missing or invalid bearer token", false);
    res.status = 200;
    res.set_content(metrics_.RenderPrometheus(), "text/plain; version=0.0.4; charset=utf-8");
  });
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
  std::thread listener([this, &http] {
    http.listen_after_bind();
    std::lock_guard<std::mutex> lock(mu_);
    listener_done_ = true;
    cv_.notify_all();
  });
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return stop_requested_ || listener_done_; });
  // httplib's stop() does nothing until the listener has started; it closes the listening
  // socket, lets each connection finish its current request, and joins the workers.
  while (!listener_done_ && !http.is_running()) {
    lock.unlock();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    lock.lock();
  }
  const bool stop = !listener_done_;
  lock.unlock();
  if (stop) http.stop();
  listener.join();
}

void Server::Stop() {
  std::lock_guard<std::mutex> lock(mu_);
  stop_requested_ = true;
  cv_.notify_all();
}

}  // namespace fruitpipe::serve
