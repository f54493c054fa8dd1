// `fruitpipe run s3://... s3://...` end to end against a real S3 server: s3rver on 127.0.0.1
// (verifies SigV4 like AWS), sometimes behind the fault-injecting proxy of tests/harness.
// Every S3 run must give the rows of the local run of the same 80 dev images (fixture
// s3_e2e_reference): same relative keys, labels, content hashes, features bit for bit.
// Issue 3 (S3 in and out, resume, inspect, --pca-model, wrong secret, residency) and issue 9
// (20 % storage faults, persistent outages then --resume).
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../integration/dataset_compare.h"
#include "fruitpipe/common/env_vars.h"
#include "fruitpipe/common/error.h"
#include "fruitpipe/common/testing.h"
#include "fruitpipe/storage/local_storage.h"
#include "fruitpipe/storage/s3/harness.h"
#include "fruitpipe/storage/s3/s3_storage.h"
#include "fruitpipe/storage/s3/test_util.h"

namespace fruitpipe {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using storage::S3Storage;
using storage::s3::harness::FaultProxy;
using storage::s3::harness::S3rver;
using testing::ExpectSameDataset;
using testing::RunCommand;
using testing::ShellQuote;

constexpr char kBucket[] = "fruits";
constexpr int kImages = 80;  // reference.sh: 8 classes x 10 images, shards of 16

fs::path FixtureDir() { return fs::path(GetEnvOr("FRUITPIPE_FIXTURE_DIR", "fixtures")) / "s3-e2e"; }
fs::path SourceDir() { return FixtureDir() / "src"; }
fs::path Reference() { return FixtureDir() / "reference"; }

std::string S3Uri(const std::string& prefix) { return std::string("s3://") + kBucket + "/" + prefix; }

// One line of output, ending in a newline: what a user sees when a run fails.
void ExpectOneLineError(const testing::CommandResult& r, const std::string& must_contain) {
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  EXPECT_EQ(r.output.rfind("fruitpipe: error: ", 0), 0u) << r.output;
  EXPECT_NE(r.output.find(must_contain), std::string::npos) << r.output;
}

// The proxy's log of requests (it also logs failures to reach the server, which are not
// requests and should not happen).
std::vector<json> ProxyLog(const FaultProxy& proxy) {
  std::vector<json> out;
  for (const auto& line : proxy.LogLines()) {
    json e = json::parse(line);
    EXPECT_FALSE(e.contains("upstreamError")) << line;
    if (!e.contains("upstreamError")) out.push_back(std::move(e));
  }
  return out;
}

class S3PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FRUITPIPE_REQUIRE_SHARED();
    FRUITPIPE_REQUIRE_NODE_TOOLS();
    // The fruitpipe children inherit this environment: the test key pair, no metadata
    // service, no AWS configuration of the machine.
    storage::s3::testing::IsolateAwsEnvironment();
    ::setenv("AWS_ACCESS_KEY_ID", "S3RVER", 1);
    ::setenv("AWS_SECRET_ACCESS_KEY", "S3RVER", 1);
    ASSERT_TRUE(fs::exists(Reference() / "_SUCCESS")) << "fixture s3_e2e_reference missing at " << FixtureDir();
    const json plan = json::parse(ReadLocalFile((Reference() / "_plan.json").string()));
    ASSERT_EQ(plan["shard_size"], 16) << "reference.sh and this test must use the same --shard-size";
    server_ = std::make_unique<S3rver>(std::vector<std::string>{kBucket});
    bucket_ = Store("");
    Upload();
  }

  std::unique_ptr<S3Storage> Store(const std::string& prefix) const {
    storage::S3Config c;
    c.bucket = kBucket;
    c.prefix = prefix;
    c.endpoint = server_->endpoint();
    return std::make_unique<S3Storage>(
        c, std::make_shared<storage::s3::StaticCredentialsProvider>(
               storage::s3::AwsCredentials{"S3RVER", "S3RVER", "", std::nullopt}, "test"));
  }

  // The reference's source images, as s3://fruits/Test/<Class>/<file>.
  void Upload() {
    storage::LocalStorage local(SourceDir());
    auto test = Store("Test");
    int n = 0;
    for (const auto& obj : local.List("")) {
      test->Put(obj.key, local.Get(obj.key));
      ++n;
    }
    ASSERT_EQ(n, kImages);
  }

  // Downloads everything under s3://fruits/<prefix> to a local folder, for the comparisons
  // and for DuckDB.
  fs::path Download(const std::string& prefix) {
    const fs::path dir = tmp_.path() / prefix;
    auto store = Store(prefix);
    std::vector<std::string> keys;
    for (const auto& obj : store->List("")) keys.push_back(obj.key);
    std::mutex mu;
    std::vector<std::string> errors;
    store->GetMany(keys, [&](storage::FetchResult&& r) {
      std::lock_guard lock(mu);
      if (!r.ok) {
        errors.push_back(r.error);
        return;
      }
      fs::create_directories((dir / r.key).parent_path());
      std::ofstream(dir / r.key, std::ios::binary) << r.data;
    });
    EXPECT_TRUE(errors.empty()) << errors.front();
    return dir;
  }

  // `fruitpipe run` with the reference's options; `endpoint` defaults to the server's.
  testing::CommandResult Run(const std::string& src, const std::string& out, const std::string& extra = "",
                             const std::string& endpoint = "", const std::string& env = "",
                             const std::string& pca = "--pca-k 8") const {
    return RunCommand(env + " " + ShellQuote(testing::FruitpipeBinary().string()) + " run " + ShellQuote(src) + " " +
                      ShellQuote(out) + " --s3-endpoint " + (endpoint.empty() ? server_->endpoint() : endpoint) +
                      " --region eu-west-1 --model " + ShellQuote(testing::FeatureModelCard().string()) +
                      " --shard-size 16 " + pca + " --quiet " + extra);
  }

  int CommittedShards(const std::string& out) const { return static_cast<int>(Store(out)->List("_shards/").size()); }

  testing::TempDir tmp_;
  std::unique_ptr<S3rver> server_;
  std::unique_ptr<S3Storage> bucket_;
};

// Issue 3: s3:// in and out gives the local run's rows; DuckDB reads the downloaded parts;
// `inspect` reads S3; every PUT asked for encryption and was signed.
TEST_F(S3PipelineTest, S3ToS3RunMatchesLocalRunAndDuckDbReadsIt) {
  FaultProxy proxy(server_->port(), {});  // no faults: a request log
  const auto r = Run(S3Uri("Test"), S3Uri("out"), "--json", proxy.endpoint());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const json run = json::parse(r.output.substr(r.output.find('{')));
  EXPECT_EQ(run["images"], kImages);
  EXPECT_EQ(run["rejected"], 0);
  EXPECT_EQ(run["source"], S3Uri("Test"));
  const fs::path out = Download("out");
  ExpectSameDataset(Reference(), out, 1e-9);

  int puts = 0;
  for (const json& e : ProxyLog(proxy)) {
    EXPECT_TRUE(e["signed"].get<bool>()) << e.dump();
    if (e["method"] == "PUT" || (e["method"] == "POST" && e["url"].get<std::string>().find("uploads") != std::string::npos)) {
      ++puts;
      EXPECT_EQ(e["sse"], "AES256") << e.dump();
    }
  }
  EXPECT_GT(puts, 15);

  // DuckDB (an independent Parquet reader) on the downloaded parts: every row, every value.
  const auto rows = testing::ReadDataset(out);
  const std::string dump = (testing::SourceDir() / "tools/node/duckdb_dump.mjs").string();
  for (const char* dir : {"Results", "Results_PCA"}) {
    const bool pca = std::string(dir) == "Results_PCA";
    const std::string glob = (out / dir / "*.parquet").string();
    const auto d = RunCommand("node " + ShellQuote(dump) + " --query " +
                              ShellQuote(std::string("SELECT path, label, image_sha256, ") +
                                         (pca ? "pcaFeatures" : "features") + " FROM read_parquet('" + glob +
                                         "') ORDER BY path"));
    ASSERT_EQ(d.exit_code, 0) << d.output.substr(0, 2000);
    const json duck = json::parse(d.output)["rows"];
    ASSERT_EQ(duck.size(), static_cast<std::size_t>(kImages)) << dir;
    for (const json& row : duck) {
      const std::string path = row[0];
      const std::string prefix = S3Uri("Test") + "/";
      ASSERT_EQ(path.rfind(prefix, 0), 0u) << path;
      const auto it = rows.find(path.substr(prefix.size()));
      ASSERT_NE(it, rows.end()) << path;
      EXPECT_EQ(row[1], it->second.meta.label);
      EXPECT_EQ(row[2], it->second.meta.image_sha256);
      const json& v = row[3];
      if (pca) {
        ASSERT_EQ(v.size(), it->second.pca.size());
        for (std::size_t k = 0; k < v.size(); ++k) ASSERT_EQ(v[k].get<double>(), it->second.pca[k]) << path;
      } else {
        ASSERT_EQ(v.size(), it->second.features.size());
        for (std::size_t k = 0; k < v.size(); ++k) {
          ASSERT_EQ(static_cast<float>(v[k].get<double>()), it->second.features[k]) << path;
        }
      }
    }
  }

  const auto inspect = RunCommand(ShellQuote(testing::FruitpipeBinary().string()) + " inspect " +
                                  ShellQuote(S3Uri("out/Results_PCA")) + " --s3-endpoint " + server_->endpoint() +
                                  " --region eu-west-1");
  ASSERT_EQ(inspect.exit_code, 0) << inspect.output;
  EXPECT_NE(inspect.output.find(S3Uri("out/Results_PCA/part-00000-")), std::string::npos) << inspect.output;
  EXPECT_NE(inspect.output.find("pcaFeatures"), std::string::npos) << inspect.output;
}

// A PCA model read from S3 (a dataset folder holding _pca_model.bin) is applied, not refitted.
TEST_F(S3PipelineTest, PcaModelFromS3IsApplied) {
  bucket_->Put("train/_pca_model.bin", ReadLocalFile((Reference() / "_pca_model.bin").string()));
  const auto r = Run(S3Uri("Test"), S3Uri("applied"), "--json", "", "", "--pca-model " + S3Uri("train"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const json run = json::parse(r.output.substr(r.output.find('{')));
  EXPECT_FALSE(run["pca"]["fitted"].get<bool>());
  const json reference = json::parse(ReadLocalFile((Reference() / "run.json").string()));
  EXPECT_EQ(run["pca"]["model_id"], reference["pca"]["model_id"]);
  ExpectSameDataset(Reference(), Download("applied"), 1e-9);
}

// Killed right before its N-th PUT (inside a shard's commit, in the PCA stage), the run
// leaves no _SUCCESS on S3, and --resume finishes it with the rows of a clean run.
TEST_F(S3PipelineTest, ResumeAfterCrashOnS3MatchesLocalRun) {
  // Puts: plan (1), part/stats/record per shard (2..16), PCA model (17, 18), PCA parts (19..23).
  for (int crash_at : {6, 20}) {
    const std::string out = "crash-" + std::to_string(crash_at);
    const auto crashed = Run(S3Uri("Test"), S3Uri(out), "", "", "FRUITPIPE_CRASH_BEFORE_PUT=" + std::to_string(crash_at));
    ASSERT_EQ(crashed.exit_code, 128 + SIGKILL) << "crash point " << crash_at << ": " << crashed.output;
    ASSERT_FALSE(bucket_->Exists(out + "/_SUCCESS"));
    const auto resumed = Run(S3Uri("Test"), S3Uri(out), "--resume");
    ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
    ExpectSameDataset(Reference(), Download(out), 1e-9);
  }
}

TEST_F(S3PipelineTest, WrongSecretFailsWithOneLineAndWritesNothing) {
  const auto r = Run(S3Uri("Test"), S3Uri("denied"), "", "", "AWS_SECRET_ACCESS_KEY=not-the-secret-42");
  ExpectOneLineError(r, "SignatureDoesNotMatch");
  EXPECT_EQ(r.output.find("not-the-secret-42"), std::string::npos) << "the secret leaked: " << r.output;
  EXPECT_TRUE(bucket_->List("denied/").empty());
}

// GDPR residency: refused before any request (the proxy in front of the server sees none).
TEST_F(S3PipelineTest, NonEuRegionRefusedBeforeAnyRequest) {
  FaultProxy proxy(server_->port(), {});
  const auto r = RunCommand(ShellQuote(testing::FruitpipeBinary().string()) + " run " + S3Uri("Test") + " " +
                            S3Uri("us") + " --s3-endpoint " + proxy.endpoint() + " --region us-east-1 --model " +
                            ShellQuote(testing::FeatureModelCard().string()) + " --quiet");
  ExpectOneLineError(r, "outside the EU/EEA");
  EXPECT_TRUE(proxy.LogLines().empty()) << proxy.LogLines().front();
}

// Issue 9: one request in five fails (SlowDown, ServiceUnavailable, InternalError, a reset
// connection or a 1 s stall, in turn). Retries absorb them all: the output is the clean run's.
// --max-consecutive 4 keeps the proxy from failing one request five times in a row (the
// client's attempts); what happens beyond that is the next test.
TEST_F(S3PipelineTest, TwentyPercentStorageFaultsGiveTheCleanRunsRows) {
  FaultProxy proxy(server_->port(), {"--every", "5", "--modes", "503,unavailable,500,reset,slow", "--slow-ms", "1000",
                                     "--max-consecutive", "4"});
  const auto r = Run(S3Uri("Test"), S3Uri("faulty"), "", proxy.endpoint());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ExpectSameDataset(Reference(), Download("faulty"), 1e-9);

  std::map<std::string, int> faults;
  int requests = 0;
  for (const json& e : ProxyLog(proxy)) {
    ++requests;
    if (!e["fault"].is_null()) ++faults[e["fault"].get<std::string>()];
  }
  int total = 0;
  std::string summary;
  for (const auto& [mode, n] : faults) {
    total += n;
    summary += " " + mode + "=" + std::to_string(n);
  }
  std::printf("storage faults injected: %d of %d requests:%s\n", total, requests, summary.c_str());
  for (const char* mode : {"503", "unavailable", "500", "reset", "slow"}) EXPECT_GT(faults[mode], 0) << mode;
  // Every fifth request, less the few spared by --max-consecutive.
  EXPECT_LE(total, requests / 5);
  EXPECT_GE(total, requests / 6);
}

// Issue 9: an outage that starts mid-run and does not end. The run stops with one clear line
// once its retries run out; nothing it wrote claims the missing shards; after the outage
// --resume completes it with the clean run's rows. Two outages: the whole service (PUTs fail
// too), and only the image reads (the run must not turn unreadable images into "rejected"
// rows and carry on).
TEST_F(S3PipelineTest, PersistentFaultsFailClearlyThenResumeCompletes) {
  struct Outage {
    std::string name;
    std::vector<std::string> proxy_args;
  };
  const std::vector<Outage> outages = {
      {"outage-all", {"--every", "1", "--after", "60", "--modes", "503"}},
      {"outage-reads", {"--every", "1", "--after", "40", "--modes", "500,reset", "--match", "^GET /fruits/Test/"}},
  };
  for (const Outage& o : outages) {
    SCOPED_TRACE(o.name);
    {
      FaultProxy proxy(server_->port(), o.proxy_args);
      const auto failed = Run(S3Uri("Test"), S3Uri(o.name), "", proxy.endpoint());
      ExpectOneLineError(failed, "failed after 5 attempts");
      int faults = 0;
      for (const json& e : ProxyLog(proxy)) faults += e["fault"].is_null() ? 0 : 1;
      std::printf("%s: %d faults injected, then: %s", o.name.c_str(), faults, failed.output.c_str());
    }
    EXPECT_FALSE(bucket_->Exists(o.name + "/_SUCCESS"));
    const int committed = CommittedShards(o.name);
    EXPECT_GE(committed, 1) << "the outage should start after the first commit";
    EXPECT_LT(committed, 5);
    // The outage is over: straight to the server.
    const auto resumed = Run(S3Uri("Test"), S3Uri(o.name), "--resume --json");
    ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
    const json run = json::parse(resumed.output.substr(resumed.output.find('{')));
    EXPECT_EQ(run["rejected"], 0);
    EXPECT_EQ(run["images"], kImages);
    ExpectSameDataset(Reference(), Download(o.name), 1e-9);
  }
}

}  // namespace
}  // namespace fruitpipe
