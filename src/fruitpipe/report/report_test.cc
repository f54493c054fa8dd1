#include "fruitpipe/report/report.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "fruitpipe/common/error.h"
#include "fruitpipe/common/testing.h"
#include "fruitpipe/parquet/parquet.h"
#include "fruitpipe/dataset/results.h"

namespace fruitpipe::report {
namespace {

using nlohmann::json;

// The JSON blob the page carries, parsed back out of the HTML.
json EmbeddedData(const std::string& page) {
  const std::string open = "<script id=\"data\" type=\"application/json\">";
  const std::size_t b = page.find(open);
  EXPECT_NE(b, std::string::npos);
  const std::size_t e = page.find("</script>", b);
  EXPECT_NE(e, std::string::npos);
  return json::parse(page.substr(b + open.size(), e - b - open.size()));
}

// A Results_PCA part written the way the pipeline writes it.
std::string PcaPart(const std::vector<std::pair<std::string, std::string>>& path_label, int k, double base) {
  dataset::PcaBatch batch;
  batch.dim = k;
  for (std::size_t i = 0; i < path_label.size(); ++i) {
    dataset::ImageRow row;
    row.path = path_label[i].first;
    row.label = path_label[i].second;
    row.image_sha256 = std::string(64, 'a');
    row.width = row.height = 100;
    batch.rows.push_back(row);
    for (int c = 0; c < k; ++c) batch.vectors.push_back(base + static_cast<double>(i) + 0.25 * c);
  }
  return parquet::WriteParquet(dataset::ResultsPcaTable(batch));
}

json SmallRun() {
  return {{"source", "/data/Test"},
          {"output", "/out"},
          {"images", 3},
          {"rejected", 1},
          {"seconds", 2.5},
          {"exit_code", 0},
          {"pca", {{"k", 2}, {"dim", 4}, {"explained_variance_ratio", {0.6, 0.3}}}},
          {"labels", {{"Apple", 2}, {"Banana", 1}}},
          {"shard_timeline",
           {{{"shard", 0}, {"rows", 2}, {"rejected", 1}, {"worker", "local"}, {"this_run", true}, {"start", 0.5},
             {"end", 1.5}, {"stages", {{"read", {{0.4, 0.6}}}, {"featurize", {{0.7, 0.9}, {1.0, 1.3}}}}}},
            {{"shard", 1}, {"rows", 1}, {"rejected", 0}, {"worker", "local"}, {"this_run", true}, {"start", 1.5},
             {"end", 2.0}, {"stages", {{"read", {{1.4, 1.5}}}, {"featurize", {{1.6, 1.7}}}}}}}}};
}

class ReportStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    out_ = storage::OpenStorage("mem://report-test-" + std::to_string(reinterpret_cast<std::uintptr_t>(this)));
  }
  std::unique_ptr<storage::Storage> out_;
};

TEST(ThinIndicesTest, KeepsEverythingUpToTheLimit) {
  EXPECT_EQ(ThinIndices(0, 5), std::vector<std::size_t>{});
  EXPECT_EQ(ThinIndices(3, 5), (std::vector<std::size_t>{0, 1, 2}));
  EXPECT_EQ(ThinIndices(5, 5), (std::vector<std::size_t>{0, 1, 2, 3, 4}));
}

TEST(ThinIndicesTest, EvenlySpacedIncreasingAndExactlyMax) {
  const auto keep = ThinIndices(70123, 20000);
  ASSERT_EQ(keep.size(), 20000u);
  EXPECT_EQ(keep.front(), 0u);
  EXPECT_LT(keep.back(), 70123u);
  for (std::size_t j = 1; j < keep.size(); ++j) {
    EXPECT_GT(keep[j], keep[j - 1]);
    EXPECT_LE(keep[j] - keep[j - 1], 4u);  // ceil(70123 / 20000)
  }
  EXPECT_EQ(ThinIndices(70123, 20000), keep);  // deterministic
  EXPECT_EQ(ThinIndices(10, 4), (std::vector<std::size_t>{0, 2, 5, 7}));
}

TEST(QuantileTest, InterpolatesBetweenClosestRanks) {
  EXPECT_DOUBLE_EQ(Quantile({4, 1, 3, 2}, 0.0), 1.0);
  EXPECT_DOUBLE_EQ(Quantile({4, 1, 3, 2}, 0.25), 1.75);
  EXPECT_DOUBLE_EQ(Quantile({4, 1, 3, 2}, 0.5), 2.5);
  EXPECT_DOUBLE_EQ(Quantile({4, 1, 3, 2}, 1.0), 4.0);
  EXPECT_DOUBLE_EQ(Quantile({7}, 0.75), 7.0);
  EXPECT_THROW(Quantile({}, 0.5), InvalidArgumentError);
}

TEST(StageSummaryTest, SummarisesEachStageOverShards) {
  const json summary = StageSummary(SmallRun()["shard_timeline"]);
  std::map<std::string, json> by;
  for (const auto& m : summary) by[m["metric"]] = m;
  ASSERT_TRUE(by.count("shard"));
  EXPECT_EQ(by["shard"]["count"], 2);
  EXPECT_DOUBLE_EQ(by["shard"]["min"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(by["shard"]["max"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(by["shard"]["total"].get<double>(), 1.5);
  // Shard 0 featurized in two batches: 0.2 + 0.3 s.
  EXPECT_NEAR(by["featurize"]["max"].get<double>(), 0.5, 1e-12);
  EXPECT_NEAR(by["featurize"]["min"].get<double>(), 0.1, 1e-12);
  EXPECT_NEAR(by["featurize"]["median"].get<double>(), 0.3, 1e-12);
  EXPECT_EQ(by["rows"]["unit"], "images");
  EXPECT_DOUBLE_EQ(by["rows"]["total"].get<double>(), 3.0);
  EXPECT_DOUBLE_EQ(by["rejected"]["max"].get<double>(), 1.0);
  EXPECT_FALSE(by.count("decode"));  // not recorded: no row rather than zeros
  EXPECT_FALSE(by.count("pca"));
  EXPECT_TRUE(StageSummary(json::array()).empty());
  EXPECT_TRUE(StageSummary(json()).empty());
}

TEST_F(ReportStoreTest, LoadsEveryInputAndEmbedsItInThePage) {
  out_->Put("run.json", SmallRun().dump());
  // A hostile path must not end the data <script> element early.
  out_->Put("rejected.jsonl",
            R"({"path":"/data/Test/x/</script><script>alert(1)</script>.jpg","reason":"not an image"})"
            "\n\n");
  out_->Put("Results_PCA/part-00001-m.snappy.parquet", PcaPart({{"/data/Test/Banana/b.jpg", "Banana"}}, 2, 10));
  out_->Put("Results_PCA/part-00000-m.snappy.parquet",
            PcaPart({{"/data/Test/Apple/a1.jpg", "Apple"}, {"/data/Test/Apple/a2.jpg", "Apple"}}, 2, -1));
  out_->Put("Results_PCA/_ignored.parquet", "not parquet");  // '_' files are not parts
  out_->Put("evaluation.json", json{{"top1_accuracy", 0.97}}.dump());

  const ReportData d = LoadReportData(*out_);
  EXPECT_EQ(d.run["images"], 3);
  ASSERT_EQ(d.rejected.size(), 1u);
  ASSERT_TRUE(d.evaluation.has_value());
  EXPECT_DOUBLE_EQ((*d.evaluation)["top1_accuracy"].get<double>(), 0.97);
  ASSERT_EQ(d.scatter.size(), 3u);
  EXPECT_EQ(d.scatter.labels, (std::vector<std::string>{"Apple", "Banana"}));
  // Part files in key order, first two components.
  EXPECT_EQ(d.scatter.path[0], "/data/Test/Apple/a1.jpg");
  EXPECT_EQ(d.scatter.path[2], "/data/Test/Banana/b.jpg");
  EXPECT_DOUBLE_EQ(d.scatter.x[1], 0.0);
  EXPECT_DOUBLE_EQ(d.scatter.y[1], 0.25);
  EXPECT_EQ(d.scatter.label, (std::vector<int>{0, 0, 1}));

  const std::string page = RenderReport(d);
  EXPECT_EQ(page.find("alert(1)</script>"), std::string::npos);
  EXPECT_EQ(page.find("__FRUITPIPE_REPORT_DATA__"), std::string::npos);
  const json blob = EmbeddedData(page);
  EXPECT_EQ(blob["run"], d.run);
  EXPECT_EQ(blob["rejected"][0]["path"], "/data/Test/x/</script><script>alert(1)</script>.jpg");
  EXPECT_EQ(blob["rejected_total"], 1);
  EXPECT_DOUBLE_EQ(blob["evaluation"]["top1_accuracy"].get<double>(), 0.97);
  const json& sc = blob["scatter"];
  EXPECT_EQ(sc["total"], 3);
  EXPECT_EQ(sc["shown"], 3);
  EXPECT_EQ(sc["path_prefix"], "/data/Test/");
  EXPECT_EQ(sc["path"][2], "Banana/b.jpg");
  EXPECT_EQ(sc["label_totals"], (std::vector<int>{2, 1}));
  const double scale = sc["scale"].get<double>();
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_NEAR(sc["x"][i].get<double>() * scale, d.scatter.x[i], scale);
    EXPECT_NEAR(sc["y"][i].get<double>() * scale, d.scatter.y[i], scale);
  }
  EXPECT_EQ(blob["stage_summary"], StageSummary(d.run["shard_timeline"]));
}

TEST_F(ReportStoreTest, EmbedsCalibrationSpeciesAndOfftopicFigures) {
  out_->Put("run.json", SmallRun().dump());
  json bins = json::array();
  for (int b = 0; b < 10; ++b) {
    const bool empty = b < 5;  // an empty bin has null mean confidence and accuracy
    bins.push_back({{"lower", b / 10.0},
                    {"upper", (b + 1) / 10.0},
                    {"count", empty ? 0 : 10 * b},
                    {"mean_confidence", empty ? json(nullptr) : json(b / 10.0 + 0.05)},
                    {"accuracy", empty ? json(nullptr) : json(b / 10.0)}});
  }
  out_->Put("evaluation.json", json{{"top1_accuracy", 0.9},
                                    {"species_top1_accuracy", 0.95},
                                    {"known_false_unknown_rate", 0.02},
                                    {"unknown_flagged_rate", nullptr},
                                    {"calibration", {{"ece", 0.05}, {"bins", bins}}},
                                    {"offtopic", {{"images", 40}, {"flagged", 38}, {"flagged_rate", 0.95}}}}
                                   .dump());
  const std::string page = RenderReport(LoadReportData(*out_));
  const json e = EmbeddedData(page)["evaluation"];
  EXPECT_DOUBLE_EQ(e["species_top1_accuracy"].get<double>(), 0.95);
  EXPECT_DOUBLE_EQ(e["known_false_unknown_rate"].get<double>(), 0.02);
  EXPECT_TRUE(e["unknown_flagged_rate"].is_null());
  EXPECT_DOUBLE_EQ(e["calibration"]["ece"].get<double>(), 0.05);
  ASSERT_EQ(e["calibration"]["bins"].size(), 10u);
  EXPECT_TRUE(e["calibration"]["bins"][0]["accuracy"].is_null());
  EXPECT_EQ(e["calibration"]["bins"][9]["count"], 90);
  EXPECT_DOUBLE_EQ(e["calibration"]["bins"][9]["mean_confidence"].get<double>(), 0.95);
  EXPECT_EQ(e["offtopic"]["flagged"], 38);
  EXPECT_DOUBLE_EQ(e["offtopic"]["flagged_rate"].get<double>(), 0.95);
  // The page's reliability diagram, its text alternative and the new cards.
  for (const char* needle : {"id=\"calibration\"", "id=\"calibration-chart\"", "id=\"calibration-table\"",
                             "id=\"calibration-caption\"", "renderCalibration", "'species_top1_accuracy'",
                             "E.offtopic", "'aria-label'"}) {
    EXPECT_NE(page.find(needle), std::string::npos) << needle;
  }
}

TEST_F(ReportStoreTest, PageIsSelfContained) {
  out_->Put("run.json", SmallRun().dump());
  const std::string page = RenderReport(LoadReportData(*out_));
  EXPECT_EQ(page.rfind("<!DOCTYPE html>", 0), 0u);
  for (const char* external : {"<script src", "<link", "<img", "<iframe", "url(", "@import", "fetch(", "XMLHttpRequest"}) {
    EXPECT_EQ(page.find(external), std::string::npos) << external;
  }
}

TEST_F(ReportStoreTest, OneComponentPlotsOnALine) {
  out_->Put("run.json", SmallRun().dump());
  out_->Put("Results_PCA/part-00000-m.snappy.parquet", PcaPart({{"/d/A/1.jpg", "A"}, {"/d/A/2.jpg", "A"}}, 1, 3));
  const ReportData d = LoadReportData(*out_);
  ASSERT_EQ(d.scatter.size(), 2u);
  EXPECT_DOUBLE_EQ(d.scatter.x[1], 4.0);
  EXPECT_DOUBLE_EQ(d.scatter.y[1], 0.0);
}

TEST_F(ReportStoreTest, WithoutPcaResultsTheScatterIsEmpty) {
  out_->Put("run.json", SmallRun().dump());
  const ReportData d = LoadReportData(*out_);
  EXPECT_EQ(d.scatter.size(), 0u);
  EXPECT_TRUE(d.rejected.empty());
  EXPECT_FALSE(d.evaluation.has_value());
  EXPECT_EQ(EmbeddedData(RenderReport(d))["scatter"]["total"], 0);
}

TEST_F(ReportStoreTest, MissingOrMalformedInputsNameTheObject) {
  try {
    LoadReportData(*out_);
    FAIL() << "expected NotFoundError";
  } catch (const NotFoundError& e) {
    EXPECT_NE(std::string(e.what()).find("run.json"), std::string::npos) << e.what();
  }
  out_->Put("run.json", "{not json");
  EXPECT_THROW(LoadReportData(*out_), CorruptionError);
  out_->Put("run.json", "[1, 2]");
  EXPECT_THROW(LoadReportData(*out_), CorruptionError);
  out_->Put("run.json", SmallRun().dump());
  out_->Put("rejected.jsonl", "{\"path\":\"a\",\"reason\":\"b\"}\n{\"path\":\"c\"}\n");
  try {
    LoadReportData(*out_);
    FAIL() << "expected CorruptionError";
  } catch (const CorruptionError& e) {
    EXPECT_NE(std::string(e.what()).find("rejected.jsonl: line 2"), std::string::npos) << e.what();
  }
  out_->Delete("rejected.jsonl");
  out_->Put("Results_PCA/part-00000-m.snappy.parquet", "PAR1 truncated");
  try {
    LoadReportData(*out_);
    FAIL() << "expected CorruptionError";
  } catch (const CorruptionError& e) {
    EXPECT_NE(std::string(e.what()).find("part-00000-m.snappy.parquet"), std::string::npos) << e.what();
  }
  // A Parquet file without the PCA column is not a Results_PCA part.
  parquet::Table t;
  t.columns.push_back({"path", parquet::StringColumn{{"a"}, {}, false}});
  out_->Put("Results_PCA/part-00000-m.snappy.parquet", parquet::WriteParquet(t));
  EXPECT_THROW(LoadReportData(*out_), CorruptionError);
}

TEST(RenderReportTest, ThinsLargeScattersAndSaysHowMany) {
  ReportData d;
  d.run = SmallRun();
  d.scatter.labels = {"A", "B"};
  const std::size_t n = kMaxScatterPoints + 5001;
  for (std::size_t i = 0; i < n; ++i) {
    d.scatter.x.push_back(static_cast<double>(i));
    d.scatter.y.push_back(-static_cast<double>(i));
    d.scatter.label.push_back(i < n / 2 ? 0 : 1);
    d.scatter.path.push_back("/p/" + std::string(i < n / 2 ? "A/" : "B/") + std::to_string(i) + ".jpg");
  }
  for (std::size_t i = 0; i < kMaxRejectedRows + 10; ++i) d.rejected.push_back({{"path", "r"}, {"reason", "x"}});
  const json blob = EmbeddedData(RenderReport(d));
  const json& sc = blob["scatter"];
  EXPECT_EQ(sc["total"], n);
  EXPECT_EQ(sc["shown"], kMaxScatterPoints);
  EXPECT_EQ(sc["x"].size(), kMaxScatterPoints);
  EXPECT_EQ(sc["path"].size(), kMaxScatterPoints);
  EXPECT_EQ(sc["label_totals"][0].get<std::size_t>() + sc["label_totals"][1].get<std::size_t>(), n);
  // The kept rows are the ThinIndices ones, in order.
  const auto keep = ThinIndices(n, kMaxScatterPoints);
  EXPECT_EQ(sc["path_prefix"].get<std::string>() + sc["path"][777].get<std::string>(), d.scatter.path[keep[777]]);
  EXPECT_EQ(blob["rejected"].size(), kMaxRejectedRows);
  EXPECT_EQ(blob["rejected_total"], kMaxRejectedRows + 10);
}

TEST(WriteReportTest, WritesReportHtmlBesideRunJson) {
  fruitpipe::testing::TempDir dir;
  auto out = storage::OpenStorage(dir.str());
  out->Put("run.json", SmallRun().dump());
  const std::string uri = WriteReport(*out);
  EXPECT_EQ(uri, out->Uri("report.html"));
  std::ifstream in(dir.path() / "report.html");
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(EmbeddedData(text.str())["run"]["images"], 3);
}

}  // namespace
}  // namespace fruitpipe::report
