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

Connection*& CurrentConnection() {
  thread_local Connection* connection = nullptr;
  return connection;
}

RequestContext& CurrentRequest() {
  thread_local RequestContext request;
  return request;
}

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

}  // namespace http_detail

namespace {

using namespace http_detail;
using nlohmann::json;

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

}  // namespace

using namespace http_detail;

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
  CurrentConnection() = &c;
  bool keep = false;
  for (;;) {
    c.head_done = false;
    c.close_after = false;
    const bool last = stopping || ++c.served >= kKeepAliveMaxCount;
    bool closed = false;
    ConnectionStream strm(c, options.timeout_ms, options.head_timeout_ms);
    CurrentRequest() = RequestContext{};
    const bool ok = http.ProcessRequest(strm, last, closed);
    if (CurrentRequest().active) {  // the logger did not run (no response was written)
      server.metrics_.RequestFinished();
      CurrentRequest() = RequestContext{};
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
  CurrentConnection() = nullptr;
  return keep;
}

}  // namespace fruitpipe::serve
