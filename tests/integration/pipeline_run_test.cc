// `fruitpipe run` end to end on the real dev data and model; every output is read back by
// DuckDB (an independent Parquet implementation) and compared value by value.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "fruitpipe/common/env_vars.h"
#include "fruitpipe/common/testing.h"
#include "fruitpipe/dataset/results.h"

namespace fruitpipe {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::RunCommand;
using testing::ShellQuote;

fs::path FixtureDir() { return GetEnvOr("FRUITPIPE_FIXTURE_DIR", "fixtures"); }

json ReadJson(const fs::path& p) { return json::parse(ReadLocalFile(p.string())); }

std::vector<fs::path> Parts(const fs::path& dir) {
  std::vector<fs::path> parts;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".parquet") parts.push_back(e.path());
  }
  std::sort(parts.begin(), parts.end());
  return parts;
}

// All rows of the files matching `glob`, as DuckDB reads them (ordered by path), as objects.
json DuckDbRows(const std::string& glob) {
  const std::string script = (testing::SourceDir() / "tools/node/duckdb_dump.mjs").string();
  const std::string sql = "SELECT * FROM read_parquet('" + glob + "') ORDER BY path";
  const auto r = RunCommand("node " + ShellQuote(script) + " --query " + ShellQuote(sql));
  EXPECT_EQ(r.exit_code, 0) << r.output.substr(0, 2000);
  const json dump = json::parse(r.output);
  json rows = json::array();
  for (const auto& values : dump.at("rows")) {
    json row = json::object();
    for (std::size_t c = 0; c < dump.at("columns").size(); ++c) row[dump["columns"][c]["name"].get<std::string>()] = values.at(c);
    rows.push_back(std::move(row));
  }
  return rows;
}

#define REQUIRE_FIXTURE(name)                                                         \
  FRUITPIPE_REQUIRE_SHARED();                                                         \
  if (!fs::exists(FixtureDir() / name / "_SUCCESS")) GTEST_FAIL() << "fixture " << name << " missing"

TEST(PipelineRunTest, DevTestSplitHasOneRowPerImageWithContractColumns) {
  REQUIRE_FIXTURE("dev-test");
  const fs::path out = FixtureDir() / "dev-test";
  const json run = ReadJson(out / "run.json");
  EXPECT_EQ(run["images"], 1800);
  EXPECT_EQ(run["rejected"], 0);
  EXPECT_GT(run["images_per_second"].get<double>(), 0.0);
  for (const char* stage : {"read", "decode", "featurize", "write", "pca_fit", "pca_transform"}) {
    EXPECT_TRUE(run["stages"].contains(stage)) << stage;
  }
  EXPECT_EQ(run["model"]["sha256"], "afc61595720fb15fd2545e0f0559fdaa1135167557f91abc8407bf71f6e8c767");
  EXPECT_EQ(run["labels"].size(), 120u);
  EXPECT_TRUE(fs::exists(out / "_SUCCESS"));
  EXPECT_TRUE(fs::exists(out / "rejected.jsonl"));

  std::size_t rows = 0;
  for (const auto& part : Parts(out / "Results")) {
    const auto batch = dataset::ParseResults(ReadLocalFile(part.string()));
    EXPECT_EQ(batch.dim, 1280);
    for (const auto& row : batch.rows) {
      EXPECT_EQ(fs::path(row.path).parent_path().filename().string(), row.label);
      EXPECT_EQ(row.image_sha256.size(), 64u);
      EXPECT_EQ(row.width, 100);
      EXPECT_FALSE(row.subject_id.has_value());
    }
    rows += batch.rows.size();
  }
  EXPECT_EQ(rows, 1800u);
}

TEST(PipelineRunTest, DuckDbReadsEveryValueWeWrote) {
  REQUIRE_FIXTURE("dev-test");
  const fs::path out = FixtureDir() / "dev-test";
  for (const char* dir : {"Results", "Results_PCA"}) {
    const json duck = DuckDbRows((out / dir / "*.parquet").string());
    std::vector<std::pair<dataset::ImageRow, std::vector<double>>> ours;
    for (const auto& part : Parts(out / dir)) {
      const std::string bytes = ReadLocalFile(part.string());
      if (std::string(dir) == "Results") {
        auto b = dataset::ParseResults(bytes);
        for (std::size_t i = 0; i < b.rows.size(); ++i) {
          ours.push_back({b.rows[i], std::vector<double>(b.vectors.begin() + i * b.dim, b.vectors.begin() + (i + 1) * b.dim)});
        }
      } else {
        auto b = dataset::ParseResultsPca(bytes);
        for (std::size_t i = 0; i < b.rows.size(); ++i) {
          ours.push_back({b.rows[i], std::vector<double>(b.vectors.begin() + i * b.dim, b.vectors.begin() + (i + 1) * b.dim)});
        }
      }
    }
    std::sort(ours.begin(), ours.end(), [](const auto& a, const auto& b) { return a.first.path < b.first.path; });
    ASSERT_EQ(duck.size(), ours.size()) << dir;
    const char* vec = std::string(dir) == "Results" ? "features" : "pcaFeatures";
    for (std::size_t i = 0; i < ours.size(); ++i) {
      const json& d = duck[i];
      const auto& [row, v] = ours[i];
      ASSERT_EQ(d["path"], row.path);
      ASSERT_EQ(d["label"], row.label);
      ASSERT_EQ(d["image_sha256"], row.image_sha256);
      ASSERT_EQ(d["width"], row.width);
      ASSERT_EQ(d["height"], row.height);
      ASSERT_TRUE(d["subject_id"].is_null());
      ASSERT_EQ(d[vec].size(), v.size());
      for (std::size_t k = 0; k < v.size(); ++k) {
        const double got = d[vec][k].get<double>();
        if (std::string(dir) == "Results") {
          ASSERT_EQ(static_cast<float>(got), static_cast<float>(v[k])) << row.path << " [" << k << "]";
        } else {
          ASSERT_EQ(got, v[k]) << row.path << " [" << k << "]";
        }
      }
    }
  }
}

TEST(PipelineRunTest, PcaFittedOnTrainingAndAppliedToTest) {
  REQUIRE_FIXTURE("dev-test");
  const json train = ReadJson(FixtureDir() / "dev-training" / "run.json");
  const json test = ReadJson(FixtureDir() / "dev-test" / "run.json");
  EXPECT_EQ(train["images"], 4560);
  EXPECT_TRUE(train["pca"]["fitted"].get<bool>());
  EXPECT_FALSE(test["pca"]["fitted"].get<bool>());
  const int k = train["pca"]["k"];
  EXPECT_GT(k, 1);
  EXPECT_LT(k, 1280);
  EXPECT_EQ(test["pca"]["k"], k);
  EXPECT_EQ(test["pca"]["model_id"], train["pca"]["model_id"]);
  const auto& ratio = train["pca"]["explained_variance_ratio"];
  ASSERT_EQ(ratio.size(), static_cast<std::size_t>(k));
  double cumulative = 0;
  for (std::size_t i = 0; i < ratio.size(); ++i) {
    if (i > 0) {
      EXPECT_LE(ratio[i].get<double>(), ratio[i - 1].get<double>());
    }
    cumulative += ratio[i].get<double>();
  }
  EXPECT_GE(cumulative, 0.95);
  for (const auto& part : Parts(FixtureDir() / "dev-test" / "Results_PCA")) {
    EXPECT_EQ(dataset::ParseResultsPca(ReadLocalFile(part.string())).dim, k);
  }
}

// A folder mixing good photos and broken files: the good ones become rows, each broken one
// a rejected.jsonl line with a reason, and the run finishes with exit status 3 (failed work
// items), which run.json records too.
TEST(PipelineRunTest, BrokenFilesAreRejectedWithReasonsAndTheRunSaysSo) {
  FRUITPIPE_REQUIRE_SHARED();
  testing::TempDir tmp;
  const fs::path src = tmp.path() / "src";
  fs::create_directories(src / "Banana");
  fs::create_directories(src / "Broken");
  int copied = 0;
  for (const auto& e : fs::directory_iterator(testing::DevDataDir() / "Test" / "Banana")) {
    if (copied++ == 3) break;
    fs::copy_file(e.path(), src / "Banana" / e.path().filename());
  }
  const std::string jpeg = ReadLocalFile((src / "Banana" / fs::directory_iterator(src / "Banana")->path().filename()).string());
  std::ofstream(src / "Broken" / "empty.jpg").close();
  std::ofstream(src / "Broken" / "random.jpg") << std::string(3000, '\x5a');
  std::ofstream(src / "Broken" / "truncated.jpg") << jpeg.substr(0, jpeg.size() / 2);
  const fs::path out = tmp.path() / "out";
  const auto r = RunCommand(testing::FruitpipeBinary().string() + " run " + ShellQuote(src.string()) + " " +
                            ShellQuote(out.string()) + " --model " + ShellQuote(testing::FeatureModelCard().string()) +
                            " --pca-k 2 --quiet");
  ASSERT_EQ(r.exit_code, 3) << r.output;
  const json run = ReadJson(out / "run.json");
  EXPECT_EQ(run["images"], 3);
  EXPECT_EQ(run["rejected"], 3);
  EXPECT_EQ(run["failed"], 3);
  EXPECT_EQ(run["exit_code"], 3);
  EXPECT_TRUE(fs::exists(out / "_SUCCESS"));
  std::ifstream rejected(out / "rejected.jsonl");
  std::map<std::string, std::string> reasons;
  for (std::string line; std::getline(rejected, line);) {
    const json j = json::parse(line);
    reasons[fs::path(j["path"].get<std::string>()).filename().string()] = j["reason"];
  }
  ASSERT_EQ(reasons.size(), 3u);
  EXPECT_NE(reasons["empty.jpg"].find("empty"), std::string::npos) << reasons["empty.jpg"];
  EXPECT_NE(reasons["random.jpg"].find("not an image"), std::string::npos) << reasons["random.jpg"];
  EXPECT_NE(reasons["truncated.jpg"].find("truncated"), std::string::npos) << reasons["truncated.jpg"];
}

TEST(PipelineRunTest, ExistingOutputNeedsResumeOrIncremental) {
  FRUITPIPE_REQUIRE_SHARED();
  testing::TempDir tmp;
  const std::string base = testing::FruitpipeBinary().string() + " run " +
                           ShellQuote((testing::DevDataDir() / "Test").string()) + " " + ShellQuote(tmp.str()) +
                           " --model " + ShellQuote(testing::FeatureModelCard().string()) + " --limit 40 --pca-k 3 --quiet";
  ASSERT_EQ(RunCommand(base).exit_code, 0);
  const auto again = RunCommand(base);
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_NE(again.output.find("already holds a finished run"), std::string::npos) << again.output;
  const auto resumed = RunCommand(base + " --resume");
  EXPECT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_EQ(ReadJson(tmp.path() / "run.json")["images_processed"], 0);
}

// A newcomer's first mistakes get one line that says what is wrong, exit 2, and no output.
TEST(PipelineRunTest, AMissingOrEmptySourceIsSaidPlainly) {
  FRUITPIPE_REQUIRE_SHARED();
  testing::TempDir tmp;
  const auto run = [&](const fs::path& src) {
    return RunCommand(testing::FruitpipeBinary().string() + " run " + ShellQuote(src.string()) + " " +
                      ShellQuote((tmp.path() / "out").string()) + " --model " +
                      ShellQuote(testing::FeatureModelCard().string()) + " --quiet");
  };
  auto r = run(tmp.path() / "no-such-folder");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("no-such-folder: no such folder"), std::string::npos) << r.output;
  fs::create_directories(tmp.path() / "empty");
  r = run(tmp.path() / "empty");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("empty: holds no image files (expected <Label>/ folders of photos)"), std::string::npos) << r.output;
  std::ofstream(tmp.path() / "flat.jpg") << "x";
  fs::create_directories(tmp.path() / "flat");
  fs::rename(tmp.path() / "flat.jpg", tmp.path() / "flat" / "photo.jpg");
  r = run(tmp.path() / "flat");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("holds no image files in <Label>/ folders"), std::string::npos) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  EXPECT_FALSE(fs::exists(tmp.path() / "out" / "_plan.json"));
  const auto version = RunCommand(testing::FruitpipeBinary().string() + " --version");
  EXPECT_EQ(version.output, "fruitpipe 0.1.0\n");
}

TEST(PipelineRunTest, BadModelCardIsAOneLineError) {
  testing::TempDir tmp;
  std::ofstream(tmp.path() / "card.json") << R"({"name":"x","file":"missing.onnx","sha256":"00"})";
  const auto r = RunCommand(testing::FruitpipeBinary().string() + " run " + ShellQuote(tmp.str()) + " " +
                            ShellQuote((tmp.path() / "out").string()) + " --model " +
                            ShellQuote((tmp.path() / "card.json").string()));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  EXPECT_NE(r.output.find("card.json"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace fruitpipe
