#include "fruitpipe/privacy/audit_log.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <thread>

#include "fruitpipe/common/env_vars.h"
#include "fruitpipe/common/error.h"
#include "fruitpipe/common/hash.h"
#include "fruitpipe/common/testing.h"

namespace fruitpipe::privacy {
namespace {

using nlohmann::json;

const std::string kAlice(64, 'a');

std::vector<std::string> Lines(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

void WriteLines(const std::string& path, const std::vector<std::string>& lines) {
  std::ofstream out(path, std::ios::trunc);
  for (const auto& l : lines) out << l << "\n";
}

class AuditLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    log_ = std::make_unique<AuditLog>(path_);
    log_->Append("consent.grant", kAlice, {{"purpose", "training"}});
    log_->Append("ingest", kAlice, {{"photos", 2}, {"purpose", "training"}});
    log_->Append("forget", kAlice, {{"rows_removed", 12}, {"photos_deleted", 2}});
    head_ = log_->Append("purge", std::nullopt, {{"photos_deleted", 0}});
  }
  testing::TempDir dir_;
  std::string path_ = (dir_.path() / "audit" / "audit.jsonl").string();
  std::unique_ptr<AuditLog> log_;
  AuditHead head_;
};

TEST_F(AuditLogTest, AppendsChainedCanonicalLines) {
  EXPECT_EQ(head_.seq, 4);
  const auto lines = Lines(path_);
  ASSERT_EQ(lines.size(), 4u);
  std::string prev(64, '0');
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const json j = json::parse(lines[i]);
    EXPECT_EQ(j["seq"], i + 1);
    EXPECT_EQ(j["prev_hash"], prev);
    EXPECT_EQ(j["time"].get<std::string>().size(), 20u);
    prev = j["hash"];
  }
  EXPECT_EQ(prev, head_.hash);
  EXPECT_EQ(json::parse(lines[2])["rows_removed"], 12);
  EXPECT_EQ(json::parse(lines[2])["subject"], kAlice);
  EXPECT_FALSE(json::parse(lines[3]).contains("subject"));
  const AuditVerdict v = log_->Verify(head_);
  EXPECT_TRUE(v.ok) << v.reason;
  EXPECT_EQ(v.lines, 4);
  EXPECT_EQ(v.head.hash, head_.hash);
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(AuditLogTest, EditedLineIsDetectedAtThatLine) {
  auto lines = Lines(path_);
  const auto at = lines[2].find("\"rows_removed\":12");
  ASSERT_NE(at, std::string::npos);
  lines[2].replace(at, 17, "\"rows_removed\":11");
  WriteLines(path_, lines);
  const AuditVerdict v = log_->Verify();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.bad_line, 3);
  EXPECT_NE(v.reason.find("edited"), std::string::npos) << v.reason;
  // Appending onto a broken chain is refused only when the last line is damaged; verify is
  // what finds damage further up.
  EXPECT_NO_THROW(log_->Append("x", std::nullopt));
}

TEST_F(AuditLogTest, EditWithRecomputedHashBreaksTheNextLine) {
  // A forger who recomputes the edited line's own hash still breaks the chain after it.
  auto lines = Lines(path_);
  json j = json::parse(lines[1]);
  j["photos"] = 1;
  j.erase("hash");
  const std::string canonical = j.dump();
  const std::string hash = Sha256Hex(j["prev_hash"].get<std::string>() + canonical);
  lines[1] = canonical.substr(0, canonical.size() - 1) + ",\"hash\":\"" + hash + "\"}";
  WriteLines(path_, lines);
  const AuditVerdict v = log_->Verify();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.bad_line, 3);
  EXPECT_NE(v.reason.find("prev_hash"), std::string::npos) << v.reason;
}

TEST_F(AuditLogTest, DeletedOrReorderedLinesAreDetected) {
  auto lines = Lines(path_);
  WriteLines(path_, {lines[0], lines[2], lines[3]});
  AuditVerdict v = log_->Verify();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.bad_line, 2);

  WriteLines(path_, {lines[0], lines[2], lines[1], lines[3]});
  v = log_->Verify();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.bad_line, 2);

  // Cutting the tail leaves a valid chain, caught only against the recorded head.
  WriteLines(path_, {lines[0], lines[1], lines[2]});
  EXPECT_TRUE(log_->Verify().ok);
  v = log_->Verify(head_);
  EXPECT_FALSE(v.ok);
  EXPECT_NE(v.reason.find("removed from the end"), std::string::npos) << v.reason;
}

TEST_F(AuditLogTest, TornLastLineStopsAppendsAndIsReported) {
  {
    std::ofstream out(path_, std::ios::app);
    out << "{\"seq\":5,\"act";
  }
  EXPECT_THROW(log_->Append("x", std::nullopt), CorruptionError);
  const AuditVerdict v = log_->Verify();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.bad_line, 5);
}

TEST_F(AuditLogTest, ConcurrentAppendsKeepOneChain) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([this] {
      AuditLog mine(path_);  // each its own file descriptor and lock
      for (int i = 0; i < 10; ++i) mine.Append("ingest", kAlice, {{"photos", i}});
    });
  }
  for (auto& t : threads) t.join();
  const AuditVerdict v = log_->Verify(head_);
  EXPECT_TRUE(v.ok) << v.reason << " at " << v.bad_line;
  EXPECT_EQ(v.lines, 44);
}

TEST_F(AuditLogTest, ReservedFieldsAndRawIdsAreRefused) {
  EXPECT_THROW(log_->Append("x", std::nullopt, {{"hash", "0"}}), InvalidArgumentError);
  EXPECT_THROW(log_->Append("x", std::string("alice@example.org")), InvalidArgumentError);
}

TEST(AuditLogPathTest, FlagThenEnvironmentThenBesideTheLedger) {
  ::unsetenv("FRUITPIPE_AUDIT_LOG");
  EXPECT_EQ(ResolveAuditLogPath("/x/a.jsonl", "/y/l.sqlite"), "/x/a.jsonl");
  EXPECT_EQ(ResolveAuditLogPath("", "/y/l.sqlite"), "/y/audit.jsonl");
  EXPECT_THROW(ResolveAuditLogPath("", ""), InvalidArgumentError);
  ::setenv("FRUITPIPE_AUDIT_LOG", "/z/env.jsonl", 1);
  EXPECT_EQ(ResolveAuditLogPath("", "/y/l.sqlite"), "/z/env.jsonl");
  ::unsetenv("FRUITPIPE_AUDIT_LOG");
}

}  // namespace
}  // namespace fruitpipe::privacy
