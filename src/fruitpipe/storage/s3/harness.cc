#include "fruitpipe/storage/s3/harness.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <thread>

#include "fruitpipe/common/env_vars.h"
#include "fruitpipe/common/error.h"

namespace fs = std::filesystem;

namespace fruitpipe::storage::s3::harness {
namespace {

std::string NodeBinary() { return GetEnvOr("FRUITPIPE_NODE", "node"); }

fs::path MakeTempDir(const std::string& stem) {
  std::string tmpl = (fs::temp_directory_path() / (stem + "-XXXXXX")).string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    throw IOError(tmpl + ": cannot create a temporary directory: " + std::strerror(errno));
  }
  return tmpl;
}

// fork + exec of node with pipes on stdin and stdout; stderr is inherited so that a failing
// server explains itself in the test log.
pid_t Spawn(const std::vector<std::string>& argv, int* stdin_fd, int* stdout_fd) {
  int in[2], out[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) {
    throw IOError("pipe: " + std::string(std::strerror(errno)));
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw IOError("fork: " + std::string(std::strerror(errno)));
  if (pid == 0) {
    // Only async-signal-safe calls between fork and exec.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(127);
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  *stdin_fd = in[1];
  *stdout_fd = out[0];
  return pid;
}

void Stop(pid_t pid) {
  if (pid <= 0) return;
  ::kill(pid, SIGTERM);
  for (int i = 0; i < 50; ++i) {
    if (::waitpid(pid, nullptr, WNOHANG) == pid) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
}

}  // namespace

fs::path HarnessDir() {
  return fs::path(GetEnvOr("FRUITPIPE_SOURCE_DIR", FRUITPIPE_HARNESS_SOURCE_DIR)) / "tests" / "harness";
}

bool NodeToolsAvailable(std::string* why) {
  const fs::path modules = HarnessDir() / ".." / ".." / "tools" / "node" / "node_modules";
  for (const char* pkg : {"@20minutes/s3rver", "@smithy/signature-v4"}) {
    if (!fs::exists(modules / pkg)) {
      *why = (modules / pkg).string() + " is missing (run scripts/install-deps.sh)";
      return false;
    }
  }
  try {
    RunNodeScript("", {"-e", "process.stdout.write('ok')"}, "", 30);
  } catch (const Error& e) {
    *why = "node does not run (" + NodeBinary() + "): " + e.what();
    return false;
  }
  return true;
}

std::string RunNodeScript(const std::string& script, const std::vector<std::string>& args,
                          const std::string& input, int timeout_s) {
  std::vector<std::string> argv = {NodeBinary()};
  if (!script.empty()) argv.push_back((HarnessDir() / script).string());
  argv.insert(argv.end(), args.begin(), args.end());
  int in_fd = -1, out_fd = -1;
  const pid_t pid = Spawn(argv, &in_fd, &out_fd);
  // Feed stdin from a thread so a child that writes before reading cannot deadlock us.
  std::thread feeder([in_fd, &input] {
    std::size_t off = 0;
    while (off < input.size()) {
      const ssize_t n = ::write(in_fd, input.data() + off, input.size() - off);
      if (n <= 0) break;
      off += static_cast<std::size_t>(n);
    }
    ::close(in_fd);
  });
  std::string out;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  bool timed_out = false;
  char buf[65536];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{out_fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    const ssize_t n = ::read(out_fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(out_fd);
  if (timed_out) ::kill(pid, SIGKILL);
  feeder.join();
  int status = 0;
  ::waitpid(pid, &status, 0);
  const std::string name = script.empty() ? "node" : script;
  if (timed_out) throw IOError(name + ": timed out after " + std::to_string(timeout_s) + " s");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw IOError(name + ": exited with status " + std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1));
  }
  return out;
}

NodeServer::NodeServer(const std::string& script, std::vector<std::string> args,
                       std::vector<std::string> node_flags) {
  std::vector<std::string> argv = {NodeBinary()};
  argv.insert(argv.end(), node_flags.begin(), node_flags.end());
  argv.push_back((HarnessDir() / script).string());
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back("--stop-on-stdin-close");
  int out_fd = -1;
  pid_ = Spawn(argv, &stdin_fd_, &out_fd);
  std::string line;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  char c;
  while (line.find('\n') == std::string::npos) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{out_fd, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0 || ::read(out_fd, &c, 1) != 1) {
      ::close(out_fd);
      Stop(pid_);
      ::close(stdin_fd_);
      throw IOError(script + ": did not report its port (is node installed? see its stderr above)");
    }
    line.push_back(c);
  }
  ::close(out_fd);  // the servers print nothing else
  const auto at = line.find("\"port\":");
  if (at != std::string::npos) port_ = std::atoi(line.c_str() + at + 7);
  if (port_ <= 0) {
    Stop(pid_);
    ::close(stdin_fd_);
    throw IOError(script + ": unexpected first line: " + line);
  }
}

NodeServer::~NodeServer() {
  Stop(pid_);
  if (stdin_fd_ >= 0) ::close(stdin_fd_);
}

S3rver::S3rver(const std::vector<std::string>& buckets,
               const std::vector<std::pair<std::string, std::string>>& key_pairs)
    : dir_(MakeTempDir("fruitpipe-s3rver")) {
  std::vector<std::string> args = {"--directory", dir_.string()};
  for (const auto& b : buckets) {
    args.push_back("--bucket");
    args.push_back(b);
  }
  for (const auto& [id, secret] : key_pairs) {
    args.push_back("--credentials");
    args.push_back(id + ":" + secret);
  }
  try {
    // s3rver's continuation tokens use DES, in OpenSSL 3's legacy provider.
    server_ = std::make_unique<NodeServer>("s3rver.mjs", std::move(args),
                                           std::vector<std::string>{"--openssl-legacy-provider"});
  } catch (...) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
    throw;
  }
}

S3rver::~S3rver() {
  server_.reset();
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

FaultProxy::FaultProxy(int target_port, std::vector<std::string> args) {
  static std::atomic<int> counter{0};
  log_ = fs::temp_directory_path() /
         ("fruitpipe-fault-proxy-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + ".log");
  std::error_code ec;
  fs::remove(log_, ec);
  args.insert(args.begin(), {"--target", "127.0.0.1:" + std::to_string(target_port), "--log", log_.string()});
  server_ = std::make_unique<NodeServer>("fault_proxy.mjs", std::move(args));
}

FaultProxy::~FaultProxy() {
  server_.reset();
  std::error_code ec;
  fs::remove(log_, ec);
}

std::vector<std::string> FaultProxy::LogLines() const {
  std::vector<std::string> lines;
  std::ifstream in(log_);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

}  // namespace fruitpipe::storage::s3::harness
