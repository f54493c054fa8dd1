// `fruitpipe train`, `evaluate` and `predict` on the real dev data and model: the identifier
// trained on the dev Training split (fixture dev-model), evaluated on the dev Test split, whose
// six classes without Training images are the unknown fruits.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "fruitpipe/common/env_vars.h"
#include "fruitpipe/common/hash.h"
#include "fruitpipe/common/testing.h"
#include "fruitpipe/pca/pca.h"
#include "fruitpipe/serve/model_dir.h"
#include "fruitpipe/storage/storage.h"

namespace fruitpipe {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::RunCommand;
using testing::ShellQuote;

fs::path FixtureDir() { return GetEnvOr("FRUITPIPE_FIXTURE_DIR", "fixtures"); }
fs::path ModelDir() { return FixtureDir() / "dev-model"; }
std::string Bin() { return ShellQuote(testing::FruitpipeBinary().string()); }
json ReadJson(const fs::path& p) { return json::parse(ReadLocalFile(p.string())); }

#define REQUIRE_FIXTURES()                                                                       \
  FRUITPIPE_REQUIRE_SHARED();                                                                    \
  for (const char* f : {"dev-training/_SUCCESS", "dev-test/_SUCCESS", "dev-model/model.json"}) { \
    if (!fs::exists(FixtureDir() / f)) GTEST_FAIL() << "fixture file missing: " << FixtureDir() / f; \
  }

// A private copy of dev-test: evaluate writes evaluation.json and report.html into it, and the
// fixture is shared with other tests.
fs::path CopyOfDevTest(const testing::TempDir& dir) {
  const fs::path copy = dir.path() / "dev-test";
  fs::copy(FixtureDir() / "dev-test", copy, fs::copy_options::recursive);
  return copy;
}

const std::vector<std::string> kUnknownClasses = {"Tomato 3",      "Tomato 4",      "Tomato Cherry Red",
                                                  "Tomato Maroon", "Tomato Yellow", "Walnut"};

TEST(IdentifyTest, TrainIsDeterministicAndRecordsWhatServingNeeds) {
  REQUIRE_FIXTURES();
  testing::TempDir dir;
  const fs::path again = dir.path() / "model";
  const auto r = RunCommand(Bin() + " train " + ShellQuote((FixtureDir() / "dev-training").string()) + " --out " +
                            ShellQuote(again.string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("4560 (114 classes)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("train accuracy"), std::string::npos) << r.output;

  // Byte-identical to the fixture's model, trained in another process.
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(ModelDir())) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"classifier.json", "classifier.weights", "model.json", "pca_model.bin"}));
  for (const auto& n : names) {
    EXPECT_EQ(ReadLocalFile((again / n).string()), ReadLocalFile((ModelDir() / n).string())) << n << " differs";
  }

  const json m = ReadJson(ModelDir() / "model.json");
  EXPECT_EQ(m["format"], "fruitpipe-identifier/1");
  EXPECT_EQ(m["classes"], 114);
  EXPECT_EQ(m["training"]["rows"], 4560);
  const json card = ReadJson(testing::FeatureModelCard());
  EXPECT_EQ(m["feature_model"]["sha256"], card["sha256"]);
  EXPECT_EQ(m["feature_model"]["input_size"], 224);
  EXPECT_EQ(m["feature_model"]["dim"], 1280);
  const std::string train_pca = ReadLocalFile((FixtureDir() / "dev-training" / "_pca_model.bin").string());
  EXPECT_EQ(m["pca"]["sha256"], Sha256Hex(train_pca));
  EXPECT_EQ(m["pca"]["k"], pca::PcaModel::Deserialize(train_pca).k);
  EXPECT_EQ(m["id"].get<std::string>().rfind(card["name"].get<std::string>() + "-", 0), 0u) << m["id"];
  EXPECT_GT(m["training"]["train_accuracy"].get<double>(), 0.95);
}

TEST(IdentifyTest, EvaluateOnDevTestIsAccurateAndFlagsUnknownFruits) {
  REQUIRE_FIXTURES();
  testing::TempDir dir;
  const fs::path test = CopyOfDevTest(dir);
  fs::remove(test / "report.html");
  const auto r = RunCommand(Bin() + " evaluate " + ShellQuote(ModelDir().string()) + " " + ShellQuote(test.string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::cout << r.output;
  EXPECT_NE(r.output.find("top-1"), std::string::npos);
  EXPECT_NE(r.output.find("worst classes"), std::string::npos);

  const json ev = ReadJson(test / "evaluation.json");
  for (const char* key : {"top1_accuracy", "top5_accuracy", "unknown_flagged_rate", "known_false_unknown_rate",
                          "per_class", "confusion"}) {
    EXPECT_TRUE(ev.contains(key)) << key;
  }
  EXPECT_EQ(ev["rows"], 1800);
  EXPECT_EQ(ev["n_known"], 1710);  // 114 classes × 15
  EXPECT_EQ(ev["n_unknown"], 90);   // 6 classes × 15
  EXPECT_EQ(ev["per_class"].size(), 114u);
  EXPECT_EQ(ev["confusion"]["labels"].size(), 114u);
  EXPECT_EQ(ev["confusion"]["matrix"].size(), 114u);
  std::int64_t total = 0;
  for (const auto& row : ev["confusion"]["matrix"]) {
    for (const auto& v : row) total += v.get<std::int64_t>();
  }
  EXPECT_EQ(total, 1710);
  std::vector<std::string> unknown_labels;
  for (auto& [label, u] : ev["unknown_labels"].items()) unknown_labels.push_back(label);
  EXPECT_EQ(unknown_labels, kUnknownClasses);

  // Floors measured on the dev split with margin (see docs/serving.md for the figures).
  const double top1 = ev["top1_accuracy"], top5 = ev["top5_accuracy"];
  const double flagged = ev["unknown_flagged_rate"], false_unknown = ev["known_false_unknown_rate"];
  std::cout << "dev Test: top-1 " << top1 << ", top-5 " << top5 << ", unknown flagged " << flagged
            << ", known wrongly flagged " << false_unknown << "\n";
  EXPECT_GT(top1, 0.93);
  EXPECT_GT(top5, 0.98);
  EXPECT_GE(top5, top1);
  EXPECT_GT(flagged, 0.65);
  EXPECT_LT(false_unknown, 0.12);

  // The report is regenerated with the evaluation in it.
  ASSERT_TRUE(fs::exists(test / "report.html"));
  const std::string html = ReadLocalFile((test / "report.html").string());
  EXPECT_NE(html.find("known_false_unknown_rate"), std::string::npos);
}

TEST(IdentifyTest, EvaluateRefusesATestRunWithItsOwnPca) {
  REQUIRE_FIXTURES();
  testing::TempDir dir;
  const fs::path test = CopyOfDevTest(dir);
  // The classic mistake: the Test run fitted its own PCA instead of applying Training's.
  const auto refit = RunCommand(Bin() + " pca " + ShellQuote(test.string()) + " --pca-k 16");
  ASSERT_EQ(refit.exit_code, 0) << refit.output;
  const auto r = RunCommand(Bin() + " evaluate " + ShellQuote(ModelDir().string()) + " " + ShellQuote(test.string()));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("transform the Test run with --pca-model TRAIN_OUT"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(test / "evaluation.json"));
}

TEST(IdentifyTest, EvaluateAndTrainRefuseUnfinishedOrForeignInputs) {
  REQUIRE_FIXTURES();
  testing::TempDir dir;
  const fs::path test = CopyOfDevTest(dir);
  fs::remove(test / "_SUCCESS");
  auto r = RunCommand(Bin() + " evaluate " + ShellQuote(ModelDir().string()) + " " + ShellQuote(test.string()));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("no _SUCCESS"), std::string::npos) << r.output;
  r = RunCommand(Bin() + " train " + ShellQuote((dir.path() / "nothing").string()) + " --out " +
                 ShellQuote((dir.path() / "m").string()));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  r = RunCommand(Bin() + " predict " + ShellQuote(test.string()) + " x.jpg");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("not a model directory"), std::string::npos) << r.output;
}

// `predict` goes photo -> decode -> featurizer -> PCA -> classifier like the service; the
// batch path went through `fruitpipe run` into Results_PCA. Both must give the same answer.
TEST(IdentifyTest, PredictAgreesWithTheBatchPipelineOnTheSamePhotos) {
  REQUIRE_FIXTURES();
  const serve::IdentifyModel model = serve::LoadIdentifyModel(ModelDir().string(), {});
  auto test = storage::OpenStorage((FixtureDir() / "dev-test").string());
  const serve::PcaDataset d = serve::LoadPcaDataset(*test);
  // Every 150th row: a dozen photos across the classes, known and unknown.
  std::vector<std::size_t> picks;
  for (std::size_t i = 0; i < d.rows.rows.size(); i += 150) picks.push_back(i);
  for (std::size_t i = 0; i < d.rows.rows.size(); ++i) {
    if (d.rows.rows[i].label == "Walnut") {
      picks.push_back(i);
      break;
    }
  }
  testing::TempDir dir;
  const fs::path garbage = dir.path() / "notes.jpg";
  std::ofstream(garbage) << "not a photo";
  std::string cmd = Bin() + " predict " + ShellQuote(ModelDir().string()) + " --json --threads 2";
  for (std::size_t i : picks) cmd += " " + ShellQuote(d.rows.rows[i].path);
  cmd += " " + ShellQuote(garbage.string()) + " " + ShellQuote((dir.path() / "missing.jpg").string());
  const auto r = RunCommand(cmd + " 2>/dev/null");
  EXPECT_EQ(r.exit_code, 3) << r.output;  // finished, some inputs failed
  const json out = json::parse(r.output);
  EXPECT_EQ(out["model"], model.id);
  ASSERT_EQ(out["images"].size(), picks.size() + 2);
  for (std::size_t j = 0; j < picks.size(); ++j) {
    const json& p = out["images"][j];
    const std::size_t row = picks[j];
    ASSERT_FALSE(p.contains("error")) << p;
    const classify::Prediction batch =
        model.classifier.Predict(d.rows.vectors.data() + row * static_cast<std::size_t>(d.rows.dim));
    EXPECT_EQ(p["path"], d.rows.rows[row].path);
    EXPECT_EQ(p["closest"], batch.label) << p;
    EXPECT_EQ(p["unknown"], batch.unknown) << p;
    EXPECT_EQ(p["label"], batch.unknown ? "unknown" : batch.label) << p;
    EXPECT_NEAR(p["confidence"].get<double>(), batch.confidence, 2e-3) << p;
    ASSERT_EQ(p["top5"].size(), 5u);
    EXPECT_EQ(p["top5"][0]["label"], batch.label);
  }
  const json& bad = out["images"][picks.size()];
  EXPECT_EQ(bad["error"], "not_an_image") << bad;
  const json& missing = out["images"][picks.size() + 1];
  EXPECT_EQ(missing["error"], "unreadable") << missing;

  // The table form names the label and the top-5.
  const auto table = RunCommand(Bin() + " predict " + ShellQuote(ModelDir().string()) + " " +
                                ShellQuote(d.rows.rows[picks[0]].path) + " 2>/dev/null");
  EXPECT_EQ(table.exit_code, 0) << table.output;
  EXPECT_NE(table.output.find("TOP-5"), std::string::npos) << table.output;
}

}  // namespace
}  // namespace fruitpipe
