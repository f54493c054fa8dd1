// The identification service over HTTP (cpp-httplib): POST /v1/identify, GET /healthz,
// GET /metrics. See docs/serving.md for the API, the limits and the privacy rules (request
// bodies live in memory for the duration of the request only; logs hold no image bytes, no
// tokens and no client addresses).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>

#include "fruitpipe/serve/identifier.h"
#include "fruitpipe/serve/metrics.h"

namespace fruitpipe::serve {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                       // 0: any free port (see Server::port())
  std::string token;                     // non-empty: "Authorization: Bearer <token>" required
  std::size_t max_body_bytes = 20u << 20;
  int timeout_ms = 10000;                // receiving a request and waiting for a worker
  int connection_threads = 64;           // connections served at once (keep-alive included)
  bool log_requests = true;              // one line per request on stderr
};

class Server {
 public:
  Server(Identifier& identifier, ServerOptions options);
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

  Identifier& identifier_;
  ServerOptions options_;
  Metrics metrics_;
  std::unique_ptr<Impl> impl_;
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
