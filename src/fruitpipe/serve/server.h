// The identification service over HTTP (cpp-httplib): POST /v1/identify, GET /v1/classes,
// GET /healthz, GET /metrics, the app's page at GET /, and with an AppBackend the app's
// routes (POST /v1/contributions, GET|POST /v1/consent, POST /v1/erasure-requests). See
// docs/serving.md for the API, the limits and the privacy rules (request
// bodies live in memory for the duration of the request only; logs hold no image bytes, no
// tokens and no client addresses). cpp-httplib parses and routes each request; fruitpipe owns
// the connections: one poll() thread reads request heads (with a deadline for the whole head),
// keeps idle keep-alive connections and caps connections per client, and a fixed set of
// threads handles requests whose head is complete.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>

#include "fruitpipe/serve/app_backend.h"
#include "fruitpipe/serve/identifier.h"
#include "fruitpipe/serve/metrics.h"

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace fruitpipe::serve {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                       // 0: any free port (see Server::port())
  std::string token;                     // non-empty: "Authorization: Bearer <token>" required
  std::size_t max_body_bytes = 20u << 20;
  int timeout_ms = 10000;                // receiving the body (per read) and waiting for a worker
  // The whole request head (request line and headers) must arrive within this, counted from
  // the accept (a new connection) or from the first byte of the next request (keep-alive);
  // after it the connection is answered 408 and closed. Connections still sending their head
  // or idle between requests wait in one poll() thread and hold no connection thread.
  int head_timeout_ms = 10000;
  // Requests handled at once (threads). A request whose head is complete while all are busy
  // is answered 503 with Retry-After at once, never queued.
  int connection_threads = 64;
  // Open connections per client address (loopback included); one more is answered 503 with
  // Retry-After and closed. 0: no cap.
  int max_connections_per_client = 16;
  // Open connections in all (also kept under the process's file-descriptor limit); one more
  // is answered 503 with Retry-After and closed.
  int max_connections = 1024;
  bool log_requests = true;              // one line per request on stderr
};

class Server {
 public:
  // `app` (may be null: the app routes answer 404) outlives the server.
  Server(Identifier& identifier, ServerOptions options, AppBackend* app = nullptr);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the listening socket; throws IOError naming host:port when it cannot.
  void Bind();
  int port() const { return port_; }

  // Serves until Stop(), then stops accepting, finishes the requests in flight and returns.
  void Run();
  // Thread-safe; may be called before Run has started listening. Not async-signal-safe: call
  // it from a thread that waits for signals (sigwait), not from a signal handler.
  void Stop();

  Metrics& metrics() { return metrics_; }

 private:
  struct Impl;
  void Routes();
  void AppRoutes();  // app_routes.cc
  bool Authorized(const httplib::Request& req) const;
  // Answers a refusal; `unread_body`: the body is still on the socket, so the connection
  // cannot carry another request.
  void Reject(httplib::Response& res, const std::string& category, const std::string& reason, bool unread_body,
              int retry_after_s = 0);

  Identifier& identifier_;
  ServerOptions options_;
  AppBackend* app_;
  Metrics metrics_;
  std::unique_ptr<Impl> impl_;  // the HTTP server, the head poller and the request threads
  int port_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_requested_ = false;
  bool listener_done_ = false;
};

// Reads a bearer token file: the first line, surrounding whitespace removed. Throws
// InvalidArgumentError when the file is empty or the token holds characters a header cannot.
std::string ReadTokenFile(const std::string& path);

// Constant-time comparison of `presented` with `expected` (time depends on neither value nor
// length: both sides are hashed first).
bool TokenMatches(std::string_view presented, std::string_view expected);

// The media type of a Content-Type header value, lowercased, without parameters.
std::string MediaType(std::string_view content_type);

}  // namespace fruitpipe::serve
