// Real servers for S3 tests and benchmarks, started as child processes from tests/harness:
// s3rver (an S3 server that verifies SigV4) and a fault-injecting proxy, both on 127.0.0.1
// with free ports. Each child stops when its object is destroyed, and also when this process
// dies (its stdin closes), so no server outlives a crashed test.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace fruitpipe::storage::s3::harness {

// <source>/tests/harness ($FRUITPIPE_SOURCE_DIR, else the source tree this was built from).
std::filesystem::path HarnessDir();

// True when node and the npm tools (tools/node/node_modules) are there; else *why says what
// is missing. The node binary is $FRUITPIPE_NODE, else `node` on PATH.
bool NodeToolsAvailable(std::string* why);

// Runs `node <script> args...`, feeding `input` on stdin; returns stdout. Throws IOError
// naming the script when it fails or exceeds `timeout_s`.
std::string RunNodeScript(const std::string& script, const std::vector<std::string>& args,
                          const std::string& input, int timeout_s = 60);

// A node child that prints {"port": N} on its first line when ready. `node_flags` go before
// the script (e.g. --openssl-legacy-provider).
class NodeServer {
 public:
  NodeServer(const std::string& script, std::vector<std::string> args,
             std::vector<std::string> node_flags = {});
  ~NodeServer();
  NodeServer(const NodeServer&) = delete;
  NodeServer& operator=(const NodeServer&) = delete;
  int port() const { return port_; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  int port_ = 0;
};

// s3rver with a fresh data directory, the given buckets, and the key pair S3RVER/S3RVER plus
// `key_pairs` (access key id, secret).
class S3rver {
 public:
  explicit S3rver(const std::vector<std::string>& buckets,
                  const std::vector<std::pair<std::string, std::string>>& key_pairs = {});
  ~S3rver();
  int port() const { return server_->port(); }
  std::string endpoint() const { return server_->endpoint(); }
  const std::filesystem::path& directory() const { return dir_; }

 private:
  std::filesystem::path dir_;
  std::unique_ptr<NodeServer> server_;
};

// tests/harness/fault_proxy.mjs in front of `target_port`; `args` are its fault options
// (--every, --modes, --match). Every request is logged to log_path().
class FaultProxy {
 public:
  FaultProxy(int target_port, std::vector<std::string> args);
  ~FaultProxy();
  std::string endpoint() const { return server_->endpoint(); }
  const std::filesystem::path& log_path() const { return log_; }
  // The log's JSON lines.
  std::vector<std::string> LogLines() const;

 private:
  std::filesystem::path log_;
  std::unique_ptr<NodeServer> server_;
};

}  // namespace fruitpipe::storage::s3::harness
