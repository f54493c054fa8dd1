// Test-only: `fruitpipe serve` as a child process on 127.0.0.1 and raw HTTP helpers, shared
// by the service's tests (serve_test.cc) and the app routes' tests (app_test.cc).
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>

#include "fruitpipe/common/env_vars.h"
#include "fruitpipe/common/error.h"
#include "fruitpipe/common/testing.h"

namespace fruitpipe::servetest {

namespace fs = std::filesystem;

inline fs::path FixtureDir() { return GetEnvOr("FRUITPIPE_FIXTURE_DIR", "fixtures"); }
inline fs::path ModelDir() { return FixtureDir() / "dev-model"; }
// The first photo (by name) of a class of the dev Test split.
inline fs::path TestImage(const std::string& cls) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(testing::DevDataDir() / "Test" / cls)) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files.empty() ? fs::path() : files.front();
}

#define REQUIRE_MODEL()                                                                         \
  FRUITPIPE_REQUIRE_SHARED();                                                                   \
  if (!fs::exists(ModelDir() / "model.json")) GTEST_FAIL() << "fixture dev-model missing at " << ModelDir()

// `fruitpipe serve` as a child process on a free port, its log in a temporary folder.
class ServerProcess {
 public:
  explicit ServerProcess(std::vector<std::string> extra_args = {}) {
    log_ = dir_.path() / "serve.log";
    std::vector<std::string> args = {testing::FruitpipeBinary().string(), "serve", ModelDir().string(), "--port", "0",
                                     "--host", "127.0.0.1"};
    // Defaults for the tests, unless the test sets them.
    for (const auto& [flag, value] : std::vector<std::pair<std::string, std::string>>{
             {"--threads", "2"}, {"--timeout-ms", "2000"}, {"--max-body-bytes", "2000000"}}) {
      if (std::find(extra_args.begin(), extra_args.end(), flag) == extra_args.end()) {
        args.push_back(flag);
        args.push_back(value);
      }
    }
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    pid_ = fork();
    if (pid_ == 0) {
      const int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      dup2(fd, 1);
      dup2(fd, 2);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    // The server prints "listening on http://127.0.0.1:PORT" once it accepts connections.
    const std::regex listening("listening on http://127\\.0\\.0\\.1:([0-9]+)");
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (std::chrono::steady_clock::now() < until) {
      std::smatch m;
      const std::string text = Log();
      if (std::regex_search(text, m, listening)) {
        port_ = std::stoi(m[1]);
        return;
      }
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        ADD_FAILURE() << "fruitpipe serve exited at start: " << text;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "fruitpipe serve did not start: " << Log();
  }

  ~ServerProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  // SIGTERM, then the exit status (-1 if it did not exit within `seconds`).
  int Terminate(int seconds = 20) {
    if (pid_ <= 0) return -1;
    kill(pid_, SIGTERM);
    return Wait(seconds);
  }
  int Wait(int seconds) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (std::chrono::steady_clock::now() < until) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string Log() const { return fs::exists(log_) ? ReadLocalFile(log_.string()) : ""; }
  std::unique_ptr<httplib::Client> Client() const {
    auto c = std::make_unique<httplib::Client>("127.0.0.1", port_);
    c->set_read_timeout(30, 0);
    // One connection, so one server thread answers in order: a request's metrics are recorded
    // (after its response is written) before the next request is read.
    c->set_keep_alive(true);
    return c;
  }
  // Peak resident memory of the server (kB), from /proc.
  long PeakRssKb() const {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
    }
    return -1;
  }

 private:
  testing::TempDir dir_;
  fs::path log_;
  pid_t pid_ = -1;
  int port_ = 0;
};

// A connection to 127.0.0.1:port (-1 on failure).
inline int Connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// A raw exchange on one connection: sends `request`, half-closes when `close_write`, and reads
// the response until the server closes or `timeout_ms` passes. Returns the status code (0:
// no response) and the whole response in *text.
inline int RawExchange(int port, const std::string& request, bool close_write, std::string* text = nullptr,
                int timeout_ms = 10000) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return 0;
  }
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may refuse before reading everything
    sent += static_cast<std::size_t>(n);
  }
  if (close_write) shutdown(fd, SHUT_WR);
  std::string response;
  char buf[4096];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    response.append(buf, static_cast<std::size_t>(n));
    // One response is enough: stop at the end of its JSON body.
    const auto body = response.find("\r\n\r\n");
    if (body != std::string::npos && response.size() > body + 4 && response.back() == '}') break;
  }
  close(fd);
  if (text) *text = response;
  int status = 0;
  std::sscanf(response.c_str(), "HTTP/1.1 %d", &status);
  return status;
}

inline std::string ReadImage(const fs::path& p) { return ReadLocalFile(p.string()); }

// The value of the Prometheus sample `series` (0 when absent).
inline double MetricValue(const std::string& text, const std::string& series) {
  const auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) return 0;
  return std::stod(text.substr(at + series.size() + 2));
}

inline std::string Metrics(httplib::Client& c, const httplib::Headers& headers = {}) {
  auto r = c.Get("/metrics", headers);
  EXPECT_TRUE(r);
  if (!r) return "";
  EXPECT_EQ(r->status, 200);
  return "\n" + r->body;
}

}  // namespace fruitpipe::servetest
