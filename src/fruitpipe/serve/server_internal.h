// The connection machinery of serve::Server, shared by server.cc (routes, the request
// pipeline) and connection_loop.cc (the poller and the request threads). Not a public header.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

// server.h (Eigen, through the identifier) before httplib.h: <resolv.h> defines _res, a name
// Eigen uses.
#include "fruitpipe/serve/server.h"

#include <httplib.h>
#include <nlohmann/json.hpp>

namespace fruitpipe::serve {
namespace http_detail {


using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr char kIdentifyRoute[] = "/v1/identify";
constexpr char kHealthRoute[] = "/healthz";
constexpr char kMetricsRoute[] = "/metrics";
constexpr char kPageRoute[] = "/";
constexpr char kClassesRoute[] = "/v1/classes";
constexpr char kContributionsRoute[] = "/v1/contributions";
constexpr char kConsentRoute[] = "/v1/consent";
constexpr char kErasureRequestsRoute[] = "/v1/erasure-requests";
constexpr char kOtherRoute[] = "other";
// Bodies of the JSON routes (consent, erasure requests) are small: larger ones get 413, and
// they must declare their length (411), so nothing unbounded is read for them.
constexpr std::size_t kJsonBodyMaxBytes = 16 * 1024;
constexpr std::size_t kDrainFactor = 4;

// Categories the HTTP layer adds to the identifier's (metrics labels, JSON "error").
constexpr char kRejectUnauthorized[] = "unauthorized";
constexpr char kRejectMediaType[] = "unsupported_media_type";
constexpr char kRejectTimeout[] = "timeout";
constexpr char kRejectIncomplete[] = "incomplete_body";
constexpr char kRejectMethod[] = "method_not_allowed";
constexpr char kRejectHeadTimeout[] = "head_timeout";
constexpr char kRejectHeadTooLarge[] = "head_too_large";
constexpr char kRejectConnections[] = "too_many_connections";
constexpr char kRejectLengthRequired[] = "length_required";

// A request head larger than this is answered 431 (httplib allows 8 KiB per line).
constexpr std::size_t kMaxHeadBytes = 64 * 1024;
// Idle keep-alive connections are closed after this (the Keep-Alive header says 5 s too).
constexpr int kKeepAliveSeconds = 5;
constexpr int kKeepAliveMaxCount = 1000;
// After the last response of a connection the write side is shut and what the client still
// sends is read and dropped for up to this long (and up to kDrainFactor x the body limit), so
// that the close does not reset the connection and destroy the answer in flight.
constexpr int kLingerMs = 2000;
// Connections refused at accept (503) linger for less, and only this many at once.
constexpr int kRefusedLingerMs = 500;
constexpr int kMaxRefusedLingering = 256;

// What the logger needs about the request this thread is handling. cpp-httplib runs the
// pre-routing handler, the route handler and the logger of one request on one thread.
struct RequestContext {
  bool active = false;       // set by pre-routing; false for requests httplib refused itself
  Clock::time_point start;
  const char* route = kOtherRoute;
  std::string outcome;       // label or rejection category, for the log line
  std::size_t body_bytes = 0;
};
// The request this thread is handling (a function: a thread_local shared across files trips
// the sanitizers).
RequestContext& CurrentRequest();

const char* RouteOf(const std::string& path);
const char* KnownMethod(std::string_view m);

void SendJson(httplib::Response& res, int status, const json& body);
int StatusFor(const std::string& category);

// The body of an upload route (identify, contributions), whatever its framing: checked on the
// head (encoding, media type, declared length), then read within max_body and the deadline.
class UploadBody {
 public:
  UploadBody(const httplib::Request& req, const httplib::ContentReader& reader, std::size_t max_body,
             Clock::time_point deadline);
  // nullptr, or the category (and *reason) of a head the upload cannot have.
  const char* CheckHead(std::string* reason) const;
  // For a refusal before the body is read: reads and drops it when it is at most kDrainFactor
  // times the limit, so that the client gets its answer (closing a socket with unread data
  // resets the connection, which can destroy the response in flight) and the connection
  // survives. True: the body is consumed.
  bool Drain();
  // Reads the body into *body: nullptr, or the category (and *reason) of the failure;
  // *unread: the connection cannot carry another request.
  const char* Read(std::string* body, std::string* reason, bool* unread);

 private:
  struct Outcome {
    bool complete = false;   // the whole body was consumed
    bool too_large = false;
    bool timed_out = false;
  };
  Outcome Consume(std::string* body);
  const httplib::Request& req_;
  const httplib::ContentReader& reader_;
  std::size_t max_body_;
  std::size_t drain_limit_;
  Clock::time_point deadline_;
  bool encoded_ = false;
  bool length_valid_ = true;
  std::uint64_t declared_ = 0;
};
// One line per request on stderr: no client address, no headers, no query string.
void LogRequest(const char* method, const char* route, int status, double seconds, std::size_t body_bytes,
                const std::string& outcome);
using Millis = std::chrono::milliseconds;

// One client connection. At any time exactly one thread owns it: the poller (waiting for a
// request head, idle between requests, or lingering before the close) or a request thread.
struct Connection {
  enum class State { kHead, kIdle, kLinger };
  int fd = -1;
  bool counted = false;          // holds a place in the per-client and total counts
  std::string ip;                // the peer: the per-client cap and httplib's REMOTE_ADDR; never logged
  int peer_port = 0;
  std::string buf;               // received and not consumed yet: buf[pos...]
  std::size_t pos = 0;
  State state = State::kHead;
  Clock::time_point deadline;    // of the head, of the idle wait, or of the linger
  Clock::time_point head_start;  // the accept, or the first byte of the next request
  bool head_done = false;        // httplib has parsed the head of the request in progress
  bool close_after = false;      // the response said Connection: close (or httplib refused the head)
  std::size_t lingered = 0;      // bytes dropped while lingering
  std::size_t linger_limit = 0;
  int served = 0;

  std::size_t buffered() const { return buf.size() - pos; }
  void Compact() {
    buf.erase(0, pos);
    pos = 0;
  }
  // The buffered bytes from `from` on (at least pos) end a request head: an empty line.
  bool HeadComplete(std::size_t from = 0) const {
    const std::string_view b(buf);
    from = std::max(from, pos);
    return b.find("\n\r\n", from) != std::string_view::npos || b.find("\n\n", from) != std::string_view::npos;
  }
  // Method and route of the buffered request line, for the log of a request refused before
  // httplib parsed it.
  std::pair<const char*, const char*> RequestLine() const {
    const std::string_view b = std::string_view(buf).substr(pos);
    const auto sp = b.find(' ');
    if (sp == std::string_view::npos) return {"-", kOtherRoute};
    const std::string_view target = b.substr(sp + 1, b.find_first_of(" ?\r\n", sp + 1) - (sp + 1));
    return {KnownMethod(b.substr(0, sp)), RouteOf(std::string(target))};
  }
};
// The connection this request thread serves; nullptr elsewhere.
Connection*& CurrentConnection();

// Runs each task at once on the caller: httplib's listener hands every accepted socket to
// HttpServer::process_and_close_socket, which only registers it with the poller.
class InlineTaskQueue : public httplib::TaskQueue {
 public:
  void enqueue(std::function<void()> fn) override { fn(); }
  void shutdown() override {}
};
// Debian's cpp-httplib is built with a listen backlog of 5: a burst of new connections beyond
// that waits for SYN retransmits (1 s, then 3 s). listen() again on the bound socket raises it.
class HttpServer : public httplib::Server {
 public:
  bool RaiseBacklog() { return ::listen(svr_sock_, SOMAXCONN) == 0; }
  // Parses, routes and answers one request (httplib's own per-request entry point).
  bool ProcessRequest(httplib::Stream& strm, bool close_connection, bool& connection_closed) {
    return process_request(strm, close_connection, connection_closed, nullptr);
  }
  std::function<void(socket_t)> on_accept;

 private:
  // httplib's listener calls this (through the task queue) with each accepted socket; httplib's
  // own version serves the connection on a pool thread until it closes, which is what lets
  // slow clients hold every thread. Here the socket only goes to the poller.
  bool process_and_close_socket(socket_t sock) override {
    on_accept(sock);
    return true;
  }
};

}  // namespace http_detail

struct Server::Impl {
  explicit Impl(Server& s);
  ~Impl();

  void Start();
  void Shutdown();

  void Accept(int fd);                           // httplib's listener thread
  void Poll();                                   // the poller thread
  void Work();                                   // each request thread
  bool ServeRequests(http_detail::Connection& c);             // true: back to the poller (keep-alive)
  void OnReadable(std::unique_ptr<http_detail::Connection>& c, std::vector<char>& scratch);
  void OnDeadline(std::unique_ptr<http_detail::Connection>& c);
  void Dispatch(std::unique_ptr<http_detail::Connection> c);  // the head is complete
  void Refuse(std::unique_ptr<http_detail::Connection> c, int status, const char* category, const std::string& reason);
  void Linger(http_detail::Connection& c, int ms);
  void ToPoller(std::unique_ptr<http_detail::Connection> c);
  void Release(http_detail::Connection& c);
  void Wake();

  Server& server;
  const ServerOptions& options;
  http_detail::HttpServer http;
  int threads = 1;
  int max_connections = 1;
  std::size_t drain_limit = 0;
  int wake_fd = -1;

  std::mutex mu;
  std::condition_variable work_cv;
  std::deque<std::unique_ptr<http_detail::Connection>> ready;   // heads complete, a request thread promised
  std::vector<std::unique_ptr<http_detail::Connection>> inbox;  // for the poller: accepted, or back from a request
  std::unordered_map<std::string, int> per_client;
  int open = 0;               // counted connections
  int refused_lingering = 0;  // refused at accept, lingering
  int busy = 0;               // request threads serving a connection
  std::atomic<bool> stopping{false};
  bool workers_done = false;
  std::vector<std::thread> workers;
  std::thread poller;
};

}  // namespace fruitpipe::serve
