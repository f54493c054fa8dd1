#include "fruitpipe/common/testing.h"

#include <sys/wait.h>

#include <cstdio>
#include <random>

#include "fruitpipe/common/env_vars.h"

namespace fs = std::filesystem;

namespace fruitpipe::testing {

fs::path SourceDir() {
  if (auto v = GetEnv("FRUITPIPE_SOURCE_DIR")) return *v;
  return fs::current_path();
}

fs::path BinaryDir() {
  if (auto v = GetEnv("FRUITPIPE_BINARY_DIR")) return *v;
  return fs::current_path();
}

fs::path SharedDir() {
  if (auto v = GetEnv("FRUITPIPE_SHARED_DIR")) return *v;
  return SourceDir() / ".." / "shared";
}

fs::path DevDataDir() { return SharedDir() / "data" / "fruits360-dev"; }
fs::path FeatureModelCard() { return SharedDir() / "models" / "mobilenet_v2_features.json"; }

bool HaveShared() {
  return fs::exists(FeatureModelCard()) && fs::exists(DevDataDir() / "Test");
}

bool SharedRequired() { return GetEnvOr("FRUITPIPE_REQUIRE_SHARED", "0") == "1"; }

CommandResult RunCommand(const std::string& command) {
  CommandResult result;
  std::FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) result.output.append(buf, n);
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''"; else out += c;
  }
  return out + "'";
}

fs::path FruitpipeBinary() { return BinaryDir() / "fruitpipe"; }

TempDir::TempDir() {
  std::random_device rd;
  const fs::path base = fs::temp_directory_path();
  for (int attempt = 0; attempt < 100; ++attempt) {
    fs::path candidate = base / ("fruitpipe-test-" + std::to_string(rd()));
    std::error_code ec;
    if (fs::create_directory(candidate, ec)) {
      path_ = candidate;
      return;
    }
  }
  throw std::runtime_error("cannot create a temporary directory");
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

}  // namespace fruitpipe::testing
