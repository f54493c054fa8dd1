#include "fruitpipe/serve/server.h"

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
constexpr char kRejectMethod[] = "method_not_allowed";
constexpr char kRejectHeadTimeout[] = "head_timeout";
constexpr char kRejectHeadTooLarge[] = "head_too_large";
constexpr char kRejectConnections[] = "too_many_connections";

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
  if (category == kRejectMethod) return 405;
  if (category == kRejectTimeout || category == kRejectHeadTimeout) return 408;
  if (category == kRejectTooLarge) return 413;
  if (category == kRejectMediaType) return 415;
  if (category == kRejectHeadTooLarge) return 431;
  if (category == kRejectBusy || category == kRejectConnections) return 503;
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

namespace {
using Millis = std::chrono::milliseconds;

// One line per request on stderr: no client address, no headers, no query string.
void LogRequest(const char* method, const char* route, int status, double seconds, std::size_t body_bytes,
                const std::string& outcome) {
  std::fprintf(stderr, "%s %s %s %d %.1fms %zuB %s\n", IsoUtc(WallSeconds(), /*millis=*/true).c_str(), method, route,
               status, seconds * 1000, body_bytes, outcome.empty() ? "-" : outcome.c_str());
}

// The method of a request line, when it is one httplib accepts ("-" otherwise: logs hold no
// request bytes beyond fixed strings).
const char* KnownMethod(std::string_view m) {
  for (const char* k : {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}) {
    if (m == k) return k;
  }
  return "-";
}

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
thread_local Connection* tls_connection = nullptr;

// Waits until `fd` is ready for `events` (or has an error the next call reports); false at
// `deadline`.
bool WaitFd(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    const auto left = std::chrono::ceil<Millis>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    const int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1 << 30)));
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) return false;
  }
}

void PeerOf(int fd, std::string* ip, int* port, bool local = false) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  const int r = local ? ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len)
                      : ::getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  char host[NI_MAXHOST] = "";
  char serv[NI_MAXSERV] = "0";
  if (r != 0 || ::getnameinfo(reinterpret_cast<sockaddr*>(&addr), len, host, sizeof host, serv, sizeof serv,
                              NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
    ip->clear();
    *port = 0;
    return;
  }
  *ip = host;
  *port = std::atoi(serv);
}

// httplib's view of a connection: reads are served from the bytes the poller already took
// off the socket, then from the socket (non-blocking, poll with the read timeout; before the
// head is parsed, also with the head deadline); what is read past the current request stays in
// the connection for the next one.
class ConnectionStream : public httplib::Stream {
 public:
  ConnectionStream(Connection& c, int timeout_ms, int head_timeout_ms)
      : c_(c), timeout_ms_(timeout_ms), head_timeout_ms_(head_timeout_ms) {}

  bool is_readable() const override { return c_.buffered() > 0 || WaitFd(c_.fd, POLLIN, ReadDeadline()); }
  bool is_writable() const override { return WaitFd(c_.fd, POLLOUT, Clock::now() + Millis(timeout_ms_)); }

  ssize_t read(char* ptr, size_t size) override {
    constexpr std::size_t kChunk = 16 * 1024;
    if (size == 0) return 0;
    if (c_.buffered() == 0) {
      c_.buf.clear();
      c_.pos = 0;
      const Clock::time_point deadline = ReadDeadline();
      for (;;) {
        ssize_t n;
        if (size >= kChunk) {
          n = ::recv(c_.fd, ptr, size, 0);
          if (n >= 0) return n;
        } else {
          c_.buf.resize(kChunk);
          n = ::recv(c_.fd, c_.buf.data(), kChunk, 0);
          c_.buf.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
          if (n == 0) return 0;
          if (n > 0) break;
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
        if (!WaitFd(c_.fd, POLLIN, deadline)) return -1;
      }
    }
    const std::size_t n = std::min(size, c_.buffered());
    std::memcpy(ptr, c_.buf.data() + c_.pos, n);
    c_.pos += n;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    std::size_t sent = 0;
    while (sent < size) {
      const ssize_t n = ::send(c_.fd, ptr + sent, size - sent, MSG_NOSIGNAL);
      if (n > 0) {
        sent += static_cast<std::size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
                 WaitFd(c_.fd, POLLOUT, Clock::now() + Millis(timeout_ms_))) {
        continue;
      } else {
        return -1;
      }
    }
    return static_cast<ssize_t>(size);
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = c_.ip;
    port = c_.peer_port;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override { PeerOf(c_.fd, &ip, &port, true); }
  socket_t socket() const override { return c_.fd; }

 private:
  Clock::time_point ReadDeadline() const {
    const Clock::time_point read = Clock::now() + Millis(timeout_ms_);
    return c_.head_done ? read : std::min(read, c_.head_start + Millis(head_timeout_ms_));
  }

  Connection& c_;
  int timeout_ms_;
  int head_timeout_ms_;
};

// An answer written by the poller itself (no httplib request behind it).
std::string ConnectionResponse(int status, const char* category, const std::string& reason) {
  const std::string body = json{{"error", category}, {"reason", reason}}.dump();
  const char* phrase = status == 408   ? "Request Timeout"
                       : status == 431 ? "Request Header Fields Too Large"
                                       : "Service Unavailable";
  std::string r = "HTTP/1.1 " + std::to_string(status) + " " + phrase +
                  "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  if (status == 503) r += "Retry-After: 1\r\n";
  return r + "Connection: close\r\n\r\n" + body;
}

// Runs each task at once on the caller: httplib's listener hands every accepted socket to
// HttpServer::process_and_close_socket, which only registers it with the poller.
class InlineTaskQueue : public httplib::TaskQueue {
 public:
  void enqueue(std::function<void()> fn) override { fn(); }
  void shutdown() override {}
};

}  // namespace

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

struct Server::Impl {
  explicit Impl(Server& s);
  ~Impl();

  void Start();
  void Shutdown();

  void Accept(int fd);                           // httplib's listener thread
  void Poll();                                   // the poller thread
  void Work();                                   // each request thread
  bool ServeRequests(Connection& c);             // true: back to the poller (keep-alive)
  void OnReadable(std::unique_ptr<Connection>& c, std::vector<char>& scratch);
  void OnDeadline(std::unique_ptr<Connection>& c);
  void Dispatch(std::unique_ptr<Connection> c);  // the head is complete
  void Refuse(std::unique_ptr<Connection> c, int status, const char* category, const std::string& reason);
  void Linger(Connection& c, int ms);
  void ToPoller(std::unique_ptr<Connection> c);
  void Release(Connection& c);
  void Wake();

  Server& server;
  const ServerOptions& options;
  HttpServer http;
  int threads = 1;
  int max_connections = 1;
  std::size_t drain_limit = 0;
  int wake_fd = -1;

  std::mutex mu;
  std::condition_variable work_cv;
  std::deque<std::unique_ptr<Connection>> ready;   // heads complete, a request thread promised
  std::vector<std::unique_ptr<Connection>> inbox;  // for the poller: accepted, or back from a request
  std::unordered_map<std::string, int> per_client;
  int open = 0;               // counted connections
  int refused_lingering = 0;  // refused at accept, lingering
  int busy = 0;               // request threads serving a connection
  std::atomic<bool> stopping{false};
  bool workers_done = false;
  std::vector<std::thread> workers;
  std::thread poller;
};

Server::Impl::Impl(Server& s) : server(s), options(s.options_) {
  wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd < 0) throw IOError(std::string("eventfd: ") + std::strerror(errno));
  http.on_accept = [this](socket_t fd) { Accept(fd); };
  threads = std::max(1, options.connection_threads);
  drain_limit = options.max_body_bytes > SIZE_MAX / kDrainFactor ? SIZE_MAX : options.max_body_bytes * kDrainFactor;
  // Each connection is a file descriptor: stay clear of the process's limit (accept would fail).
  rlimit nofile{};
  long fd_room = 1 << 20;
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY) {
    fd_room = static_cast<long>(nofile.rlim_cur) - 64;
  }
  const long wanted = options.max_connections > 0 ? options.max_connections : 1 << 20;
  max_connections = static_cast<int>(std::max(1L, std::min(wanted, fd_room)));
}

Server::Impl::~Impl() { ::close(wake_fd); }

void Server::Impl::Wake() {
  const std::uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = ::write(wake_fd, &one, sizeof one);
}

void Server::Impl::Start() {
  poller = std::thread([this] { Poll(); });
  for (int i = 0; i < threads; ++i) workers.emplace_back([this] { Work(); });
}

// After the listener has stopped: connections waiting for a head or idle are closed, the
// requests in progress or already promised a thread are answered, lingering closes end.
void Server::Impl::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu);
    stopping = true;
  }
  work_cv.notify_all();
  Wake();
  for (auto& t : workers) t.join();
  workers.clear();
  {
    std::lock_guard<std::mutex> lock(mu);
    workers_done = true;
  }
  Wake();
  if (poller.joinable()) poller.join();
}

void Server::Impl::ToPoller(std::unique_ptr<Connection> c) {
  {
    std::lock_guard<std::mutex> lock(mu);
    inbox.push_back(std::move(c));
  }
  Wake();
}

void Server::Impl::Release(Connection& c) {
  ::close(c.fd);
  c.fd = -1;
  std::lock_guard<std::mutex> lock(mu);
  if (!c.counted) {
    --refused_lingering;
    return;
  }
  --open;
  const auto it = per_client.find(c.ip);
  if (it != per_client.end() && --it->second <= 0) per_client.erase(it);
}

// Shuts the write side (the answer is complete) and drops what the client still sends until it
// closes, for at most `ms` and drain_limit bytes: closing a socket with unread data resets the
// connection, and a reset can destroy the answer before the client has read it.
void Server::Impl::Linger(Connection& c, int ms) {
  ::shutdown(c.fd, SHUT_WR);
  c.state = Connection::State::kLinger;
  c.deadline = Clock::now() + Millis(ms);
  c.lingered = 0;
  c.linger_limit = drain_limit;
  c.buf.clear();
  c.buf.shrink_to_fit();
  c.pos = 0;
}

void Server::Impl::Accept(int fd) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL, 0) | O_NONBLOCK);
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  auto c = std::make_unique<Connection>();
  c->fd = fd;
  PeerOf(fd, &c->ip, &c->peer_port);
  c->head_start = Clock::now();
  c->deadline = c->head_start + Millis(options.head_timeout_ms);
  std::string refusal;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (stopping) {
      ::close(fd);
      return;
    }
    const auto it = per_client.find(c->ip);
    const int from_client = it == per_client.end() ? 0 : it->second;
    if (open >= max_connections) {
      refusal = "the server holds its maximum of " + std::to_string(max_connections) + " connections";
    } else if (options.max_connections_per_client > 0 && from_client >= options.max_connections_per_client) {
      refusal = "more than " + std::to_string(options.max_connections_per_client) +
                " open connections from one address";
    } else {
      ++per_client[c->ip];
      ++open;
      c->counted = true;
    }
    if (!c->counted) {
      if (refused_lingering >= kMaxRefusedLingering) {
        ::close(fd);
        refusal.clear();
      } else {
        ++refused_lingering;
      }
    }
  }
  if (c->counted) return ToPoller(std::move(c));
  if (refusal.empty()) {  // too many refusals lingering already: closed without an answer
    server.metrics_.RecordRejection(kRejectConnections);
    return;
  }
  Refuse(std::move(c), 503, kRejectConnections, refusal);
}

// The answer to a connection no httplib request stands for (the cap, a full server, a head
// that did not arrive in time), counted and logged like a request, then the lingering close.
void Server::Impl::Refuse(std::unique_ptr<Connection> c, int status, const char* category, const std::string& reason) {
  const auto [method, route] = c->RequestLine();
  const std::string text = ConnectionResponse(status, category, reason);
  // One non-blocking write: the socket's send buffer holds a few hundred bytes unless the
  // client stopped reading, and then it gets no answer.
  [[maybe_unused]] const ssize_t n = ::send(c->fd, text.data(), text.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  const double seconds = std::chrono::duration<double>(Clock::now() - c->head_start).count();
  server.metrics_.RecordRejection(category);
  server.metrics_.RecordRequest(route, status, seconds);
  if (options.log_requests) LogRequest(method, route, status, seconds, 0, category);
  Linger(*c, c->counted ? kLingerMs : kRefusedLingerMs);
  ToPoller(std::move(c));
}

void Server::Impl::Dispatch(std::unique_ptr<Connection> c) {
  {
    std::lock_guard<std::mutex> lock(mu);
    if (!stopping && busy + static_cast<int>(ready.size()) < threads) {
      ready.push_back(std::move(c));
      work_cv.notify_one();
      return;
    }
  }
  if (stopping) {
    Release(*c);
    return;
  }
  Refuse(std::move(c), 503, kRejectBusy,
         "all " + std::to_string(threads) + " connection threads are busy; retry after 1 s");
}

void Server::Impl::OnReadable(std::unique_ptr<Connection>& c, std::vector<char>& scratch) {
  if (c->state == Connection::State::kLinger) {
    for (;;) {
      const ssize_t n = ::recv(c->fd, scratch.data(), scratch.size(), 0);
      if (n > 0) {
        c->lingered += static_cast<std::size_t>(n);
        if (c->lingered <= c->linger_limit) continue;
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return;
      }
      Release(*c);  // the client closed (or sent more than the drain limit)
      c.reset();
      return;
    }
  }
  if (c->pos > 0) c->Compact();
  const std::size_t old = c->buf.size();
  c->buf.resize(kMaxHeadBytes + 1);
  const ssize_t n = ::recv(c->fd, c->buf.data() + old, c->buf.size() - old, 0);
  c->buf.resize(old + (n > 0 ? static_cast<std::size_t>(n) : 0));
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
  if (n <= 0) {  // closed by the client (or reset) before a whole head
    Release(*c);
    c.reset();
    return;
  }
  const Clock::time_point now = Clock::now();
  if (c->state == Connection::State::kIdle) {
    c->state = Connection::State::kHead;
    c->head_start = now;
    c->deadline = now + Millis(options.head_timeout_ms);
  }
  if (c->HeadComplete(old >= 2 ? old - 2 : 0)) return Dispatch(std::move(c));
  if (c->buffered() > kMaxHeadBytes) {
    Refuse(std::move(c), 431, kRejectHeadTooLarge,
           "the request line and headers exceed " + std::to_string(kMaxHeadBytes) + " bytes");
  }
}

void Server::Impl::OnDeadline(std::unique_ptr<Connection>& c) {
  if (c->state == Connection::State::kHead && c->buffered() > 0) {
    Refuse(std::move(c), 408, kRejectHeadTimeout,
           "the request line and headers did not arrive within " + std::to_string(options.head_timeout_ms) + " ms");
    return;
  }
  // Idle past the keep-alive timeout, connected without sending anything, or done lingering.
  Release(*c);
  c.reset();
}

void Server::Impl::Poll() {
  std::vector<std::unique_ptr<Connection>> conns;
  std::vector<pollfd> fds;
  std::vector<char> scratch(64 * 1024);
  auto drop_empty = [&] { conns.erase(std::remove(conns.begin(), conns.end(), nullptr), conns.end()); };
  for (;;) {
    bool done = false;
    {
      std::lock_guard<std::mutex> lock(mu);
      for (auto& c : inbox) conns.push_back(std::move(c));
      inbox.clear();
      done = workers_done;
    }
    if (stopping) {
      for (auto& c : conns) {
        if (c->state != Connection::State::kLinger) {
          Release(*c);
          c.reset();
        }
      }
      drop_empty();
      if (done && conns.empty()) return;
    }
    Clock::time_point now = Clock::now();
    Clock::time_point next = now + Millis(stopping ? 50 : 1000);
    fds.assign(1, pollfd{wake_fd, POLLIN, 0});
    for (const auto& c : conns) {
      fds.push_back(pollfd{c->fd, POLLIN, 0});
      next = std::min(next, c->deadline);
    }
    const auto wait = std::max<long long>(0, std::chrono::ceil<Millis>(next - now).count());
    if (::poll(fds.data(), fds.size(), static_cast<int>(wait)) < 0 && errno != EINTR) {
      std::this_thread::sleep_for(Millis(1));
      continue;
    }
    if (fds[0].revents != 0) {
      std::uint64_t v;
      [[maybe_unused]] const ssize_t n = ::read(wake_fd, &v, sizeof v);
    }
    now = Clock::now();
    for (std::size_t i = 0; i < conns.size(); ++i) {
      if (fds[i + 1].revents != 0) OnReadable(conns[i], scratch);
      if (conns[i] && now >= conns[i]->deadline) OnDeadline(conns[i]);
    }
    drop_empty();
  }
}

void Server::Impl::Work() {
  for (;;) {
    std::unique_ptr<Connection> c;
    {
      std::unique_lock<std::mutex> lock(mu);
      work_cv.wait(lock, [this] { return !ready.empty() || stopping; });
      if (ready.empty()) return;
      c = std::move(ready.front());
      ready.pop_front();
      ++busy;
    }
    const bool keep = ServeRequests(*c);
    {
      std::lock_guard<std::mutex> lock(mu);
      --busy;
    }
    if (!keep) Linger(*c, kLingerMs);
    ToPoller(std::move(c));
  }
}

// Serves the requests whose heads are buffered (pipelined ones included) and returns the
// connection to the poller between requests.
bool Server::Impl::ServeRequests(Connection& c) {
  tls_connection = &c;
  bool keep = false;
  for (;;) {
    c.head_done = false;
    c.close_after = false;
    const bool last = stopping || ++c.served >= kKeepAliveMaxCount;
    bool closed = false;
    ConnectionStream strm(c, options.timeout_ms, options.head_timeout_ms);
    tls_request = RequestContext{};
    const bool ok = http.ProcessRequest(strm, last, closed);
    if (tls_request.active) {  // the logger did not run (no response was written)
      server.metrics_.RequestFinished();
      tls_request = RequestContext{};
    }
    if (!ok || closed || last || c.close_after) break;
    c.Compact();
    const Clock::time_point now = Clock::now();
    c.head_start = now;
    if (c.HeadComplete()) continue;
    c.state = c.buffered() > 0 ? Connection::State::kHead : Connection::State::kIdle;
    c.deadline = now + (c.buffered() > 0 ? Millis(options.head_timeout_ms) : Millis(kKeepAliveSeconds * 1000));
    keep = true;
    break;
  }
  tls_connection = nullptr;
  return keep;
}

Server::Server(Identifier& identifier, ServerOptions options)
    : identifier_(identifier), options_(std::move(options)), impl_(std::make_unique<Impl>(*this)) {
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
    if (tls_connection) tls_connection->head_done = true;
    if (tls_request.active) return;  // the Expect: 100-continue handler started it
    tls_request = RequestContext{};
    tls_request.active = true;
    tls_request.start = Clock::now();
    tls_request.route = RouteOf(req.path);
    metrics_.RequestStarted();
  };

  // The limits every route shares, checked on the head before any byte of the body is read:
  // unknown routes (404), methods the route does not take (405), a declared body over the
  // limit (413). A refused request that announced a body is answered with Connection: close
  // (the lingering close drops what the client still sends). False: `res` holds the refusal.
  auto admit = [this](const httplib::Request& req, httplib::Response& res) {
    const bool has_body = req.has_header("Transfer-Encoding") ||
                          (req.has_header("Content-Length") && req.get_header_value("Content-Length") != "0");
    auto refuse = [&](int status, const char* error, const std::string& reason) {
      if (status != 404) metrics_.RecordRejection(error);
      tls_request.outcome = error;
      SendJson(res, status, {{"error", error}, {"reason", reason}});
      if (has_body) res.set_header("Connection", "close");
      return false;
    };
    const char* route = RouteOf(req.path);
    if (route == kOtherRoute) {
      return refuse(404, "not_found", "no such route: POST /v1/identify, GET /healthz, GET /metrics");
    }
    const bool post = route == kIdentifyRoute;
    if (post ? req.method != "POST" : req.method != "GET" && req.method != "HEAD") {
      res.set_header("Allow", post ? "POST" : "GET, HEAD");
      return refuse(405, kRejectMethod, std::string(route) + " takes " + (post ? "POST" : "GET"));
    }
    if (req.has_header("Content-Length")) {
      std::string len = req.get_header_value("Content-Length");
      if (!len.empty() && len.find_first_not_of("0123456789") == std::string::npos) {
        len.erase(0, std::min(len.find_first_not_of('0'), len.size() - 1));
        if (len.size() > 19 || std::stoull(len) > options_.max_body_bytes) {
          return refuse(413, kRejectTooLarge,
                        "body exceeds the limit of " + std::to_string(options_.max_body_bytes) + " bytes");
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
    RequestContext ctx = tls_request;
    tls_request = RequestContext{};
    double seconds = 0;
    if (ctx.active) {
      seconds = std::chrono::duration<double>(Clock::now() - ctx.start).count();
      metrics_.RequestFinished();
    }
    metrics_.RecordRequest(ctx.route, res.status, seconds);
    if (tls_connection) {
      // A body left unread, or a head httplib refused itself (400, 414): the connection ends.
      bool close = !ctx.active;
      const auto range = res.headers.equal_range("Connection");
      for (auto it = range.first; it != range.second; ++it) close = close || it->second == "close";
      tls_connection->close_after = close;
    }
    if (!options_.log_requests) return;
    LogRequest(req.method.empty() ? "-" : req.method.c_str(), ctx.route, res.status, seconds, ctx.body_bytes,
               ctx.outcome);
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
