// Helpers for tests: where the shared dev data and model are, temporary folders, and the
// skip rule for tests that need the real model (skipped on a user's fresh clone without
// ../shared, mandatory in CI where FRUITPIPE_REQUIRE_SHARED=1).
#pragma once

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

namespace fruitpipe::testing {

// $FRUITPIPE_SHARED_DIR, else <source>/../shared.
std::filesystem::path SharedDir();
std::filesystem::path DevDataDir();          // SharedDir()/data/fruits360-dev
std::filesystem::path FeatureModelCard();    // SharedDir()/models/mobilenet_v2_features.json
std::filesystem::path SourceDir();           // the repository root
std::filesystem::path BinaryDir();           // the CMake build tree (holds build/fruitpipe)

// Runs a shell command, capturing stdout and stderr together.
struct CommandResult {
  int exit_code = -1;
  std::string output;
};
CommandResult RunCommand(const std::string& command);
std::string ShellQuote(const std::string& s);
std::filesystem::path FruitpipeBinary();  // BinaryDir()/fruitpipe

// True when the shared data and model exist. When they do not: if FRUITPIPE_REQUIRE_SHARED=1
// the test fails, else it is skipped with a message saying why.
bool HaveShared();

// A fresh directory removed on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace fruitpipe::testing

// Use at the start of a test that needs ../shared.
#define FRUITPIPE_REQUIRE_SHARED()                                                          \
  do {                                                                                      \
    if (!::fruitpipe::testing::HaveShared()) {                                              \
      if (::fruitpipe::testing::SharedRequired()) {                                         \
        FAIL() << "shared data/model missing at " << ::fruitpipe::testing::SharedDir()      \
               << " and FRUITPIPE_REQUIRE_SHARED=1";                                        \
      }                                                                                     \
      GTEST_SKIP() << "SKIPPED: needs the real model and dev data at "                      \
                   << ::fruitpipe::testing::SharedDir()                                     \
                   << " (set FRUITPIPE_SHARED_DIR; CI makes this mandatory)";               \
    }                                                                                       \
  } while (0)

namespace fruitpipe::testing {
bool SharedRequired();
}
