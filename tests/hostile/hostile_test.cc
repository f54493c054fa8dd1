// Issue 9: the real `fruitpipe run` (real model) on a source holding every hostile input of
// hostile_corpus.cc plus a few good dev images. The run must exit 0 within a time bound and a
// memory bound, and each input must end up where its expectation says: a Results row with
// the documented width and height, or a rejected.jsonl line with the expected reason.
#include <sys/resource.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "fruitpipe/common/env_vars.h"
#include "fruitpipe/common/testing.h"
#include "fruitpipe/dataset/results.h"
#include "hostile_corpus.h"

namespace fruitpipe {
namespace {

namespace fs = std::filesystem;
using hostile::Expectation;
using Outcome = Expectation::Outcome;

constexpr int kTimeoutSeconds = 300;
constexpr long kMaxRssKb = 1536L * 1024;  // 1.5 GiB, with the 36-Mpixel PNG decoded

struct ChildResult {
  int exit_code = -1;
  bool timed_out = false;
  long max_rss_kb = 0;
  double seconds = 0;
  std::string output;
};

// Runs argv with stdout+stderr to a file; kills it after `timeout_s`. Peak RSS from wait4.
ChildResult RunBounded(const std::vector<std::string>& argv, const fs::path& log, int timeout_s) {
  ChildResult r;
  const auto start = std::chrono::steady_clock::now();
  const pid_t pid = fork();
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  rusage usage{};
  while (true) {
    const pid_t done = ::wait4(pid, &status, WNOHANG, &usage);
    if (done == pid) break;
    if (std::chrono::steady_clock::now() - start > std::chrono::seconds(timeout_s)) {
      r.timed_out = true;
      ::kill(pid, SIGKILL);
      ::wait4(pid, &status, 0, &usage);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.max_rss_kb = usage.ru_maxrss;
  std::ifstream in(log);
  r.output.assign(std::istreambuf_iterator<char>(in), {});
  return r;
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

TEST(HostileInputTest, EveryInputIsProcessedOrRejectedWithItsReason) {
  FRUITPIPE_REQUIRE_SHARED();
  testing::TempDir tmp;
  const fs::path src = tmp.path() / "src", out = tmp.path() / "out";
  const std::vector<Expectation> expected = hostile::WriteHostileCorpus(src, ::geteuid() == 0);

  // A few good images beside them, so the run has real fruit to featurize and fit PCA on.
  std::vector<fs::path> good;
  const fs::path dev_class = testing::DevDataDir() / "Test" / "Banana";
  for (const auto& e : fs::directory_iterator(dev_class)) good.push_back(e.path());
  std::sort(good.begin(), good.end());
  good.resize(6);
  for (const auto& p : good) {
    fs::create_directories(src / "Banana");
    fs::copy_file(p, src / "Banana" / p.filename());
  }

  const ChildResult r = RunBounded({testing::FruitpipeBinary().string(), "run", src.string(), out.string(), "--model",
                                    testing::FeatureModelCard().string(), "--pca-k", "4", "--quiet"},
                                   tmp.path() / "run.log", kTimeoutSeconds);
  ASSERT_FALSE(r.timed_out) << "fruitpipe run still going after " << kTimeoutSeconds << " s:\n" << r.output;
  // Finished, with failed work items: the exit status says so (README), and run.json agrees.
  ASSERT_EQ(r.exit_code, 3) << r.output;
  EXPECT_LT(r.max_rss_kb, kMaxRssKb) << "peak RSS " << r.max_rss_kb / 1024 << " MiB";

  EXPECT_EQ(nlohmann::json::parse(ReadLocalFile((out / "run.json").string()))["exit_code"], 3);

  std::map<std::string, std::string> rejected;  // path -> reason
  {
    std::ifstream in(out / "rejected.jsonl");
    std::string line;
    while (std::getline(in, line)) {
      const auto j = nlohmann::json::parse(line);
      EXPECT_TRUE(rejected.emplace(j.at("path").get<std::string>(), j.at("reason").get<std::string>()).second)
          << "rejected twice: " << line;
    }
  }
  std::map<std::string, dataset::ImageRow> rows;  // path -> row
  for (const auto& e : fs::directory_iterator(out / "Results")) {
    if (e.path().extension() != ".parquet") continue;
    for (auto& row : dataset::ParseResults(ReadLocalFile(e.path().string())).rows) {
      const std::string path = row.path;
      EXPECT_TRUE(rows.emplace(path, std::move(row)).second) << "two rows for " << path;
    }
  }

  int n_processed = 0, n_rejected = 0, n_ignored = 0;
  for (const Expectation& e : expected) {
    SCOPED_TRACE(e.key + " (" + e.what + ")");
    // rejected.jsonl writes a name that is not UTF-8 with U+FFFD in place of the bad bytes.
    const std::string path =
        nlohmann::json::parse(nlohmann::json((src / e.key).string())
                                  .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace))
            .get<std::string>();
    const auto row = rows.find(path);
    const auto rej = rejected.find(path);
    switch (e.outcome) {
      case Outcome::kProcessed:
        ++n_processed;
        EXPECT_EQ(rej, rejected.end()) << "rejected: " << rej->second;
        if (row == rows.end()) {
          ADD_FAILURE() << "no Results row";
          break;
        }
        EXPECT_EQ(row->second.label, e.label);
        EXPECT_EQ(row->second.width, e.width);
        EXPECT_EQ(row->second.height, e.height);
        rows.erase(row);
        break;
      case Outcome::kRejected:
        ++n_rejected;
        EXPECT_EQ(row, rows.end()) << "unexpected Results row";
        if (rej == rejected.end()) {
          ADD_FAILURE() << "not in rejected.jsonl";
          break;
        }
        if (e.reason_is_suffix) {
          EXPECT_TRUE(EndsWith(rej->second, e.reason)) << rej->second << " does not end with " << e.reason;
        } else {
          EXPECT_EQ(rej->second, e.reason);
        }
        rejected.erase(rej);
        break;
      case Outcome::kIgnored:
        ++n_ignored;
        EXPECT_EQ(row, rows.end()) << "unexpected Results row";
        EXPECT_EQ(rej, rejected.end()) << "unexpected rejection: " << rej->second;
        break;
    }
  }
  // Nothing else: the good images are the only other rows, and nobody else was rejected.
  for (const auto& p : good) {
    const auto row = rows.find((src / "Banana" / p.filename()).string());
    ASSERT_NE(row, rows.end()) << p;
    EXPECT_EQ(row->second.width, 100);
    rows.erase(row);
  }
  for (const auto& [path, row] : rows) ADD_FAILURE() << "unexpected Results row " << path << " label " << row.label;
  for (const auto& [path, reason] : rejected) ADD_FAILURE() << "unexpected rejection " << path << ": " << reason;

  std::printf("hostile inputs tried: %zu (%d processed, %d rejected, %d ignored) + %zu good images; "
              "run %.1f s, peak RSS %ld MiB\n",
              expected.size(), n_processed, n_rejected, n_ignored, good.size(), r.seconds, r.max_rss_kb / 1024);
}

}  // namespace
}  // namespace fruitpipe
