// `fruitpipe train`, `evaluate` and `predict` on the real dev data and model: the identifier
// trained on the Fruits-360 dev Training split, real store photos and negatives (fixture
// dev-model), evaluated on the dev Test split (whose six classes without Training images are
// unknown fruits), on real Validation photos, and on negatives kept apart from training.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "fruitpipe/common/env_vars.h"
#include "fruitpipe/common/hash.h"
#include "fruitpipe/common/testing.h"
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
  for (const char* f : {"dev-training/_SUCCESS", "dev-test/_SUCCESS", "real-training/_SUCCESS",        \
                        "real-validation/_SUCCESS", "negatives/_SUCCESS", "dev-model/model.json"}) { \
    if (!fs::exists(FixtureDir() / f)) GTEST_FAIL() << "fixture file missing: " << FixtureDir() / f; \
  }

// A private copy of a fixture dataset: evaluate writes evaluation.json and report.html into
// it, and the fixture is shared with other tests.
fs::path CopyOf(const testing::TempDir& dir, const std::string& name) {
  const fs::path copy = dir.path() / name;
  fs::copy(FixtureDir() / name, copy, fs::copy_options::recursive);
  return copy;
}
fs::path CopyOfDevTest(const testing::TempDir& dir) { return CopyOf(dir, "dev-test"); }

std::vector<std::string> DatasetLabels(const std::string& name) {
  auto d = storage::OpenStorage((FixtureDir() / name).string());
  std::vector<std::string> labels;
  for (const auto& r : serve::LoadResultsDataset(*d).rows.rows) labels.push_back(r.label);
  std::sort(labels.begin(), labels.end());
  labels.erase(std::unique(labels.begin(), labels.end()), labels.end());
  return labels;
}

const std::vector<std::string> kUnknownClasses = {"Tomato 3",      "Tomato 4",      "Tomato Cherry Red",
                                                  "Tomato Maroon", "Tomato Yellow", "Walnut"};

TEST(IdentifyTest, TrainOnTwoDatasetsWithNegativesRecordsLineage) {
  REQUIRE_FIXTURES();
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(ModelDir())) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"classifier.json", "classifier.weights", "imagenet_head.weights",
                                             "model.json", "taxonomy.tsv"}));
  const json m = ReadJson(ModelDir() / "model.json");
  EXPECT_EQ(m["format"], "fruitpipe-identifier/2");
  // Classes: the union of the two training datasets' labels; the negatives' labels are none.
  std::vector<std::string> classes = DatasetLabels("dev-training");
  for (const auto& l : DatasetLabels("real-training")) classes.push_back(l);
  std::sort(classes.begin(), classes.end());
  classes.erase(std::unique(classes.begin(), classes.end()), classes.end());
  const json clf = ReadJson(ModelDir() / "classifier.json");
  EXPECT_EQ(clf["classes"], json(classes));
  EXPECT_EQ(m["classes"], classes.size());
  EXPECT_TRUE(clf["negative_class"].get<bool>());
  // Lineage: every dataset, its role, its rows and the hash of its Results.
  ASSERT_EQ(m["lineage"].size(), 3u);
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"dev-training", "training"}, {"real-training", "training"}, {"negatives", "negatives"}};
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const json& l = m["lineage"][i];
    EXPECT_EQ(l["uri"], fs::weakly_canonical(FixtureDir() / expected[i].first).string());
    EXPECT_EQ(l["role"], expected[i].second);
    EXPECT_EQ(l["results_sha256"].get<std::string>().size(), 64u);
    EXPECT_EQ(l["augmented_photos"], 64);
  }
  EXPECT_EQ(m["lineage"][0]["rows"], 4560);
  EXPECT_EQ(m["imagenet_prior"], "mobilenet_v2_imagenet.json");
  const json card = ReadJson(testing::FeatureModelCard());
  EXPECT_EQ(m["feature_model"]["sha256"], card["sha256"]);
  EXPECT_EQ(m["feature_model"]["dim"], 1280);
  EXPECT_EQ(m["id"].get<std::string>().rfind(card["name"].get<std::string>() + "-", 0), 0u) << m["id"];
  // Thresholds from held-out photos of each dataset: at most 8 % of known photos flagged.
  ASSERT_EQ(m["training"]["calibration"].size(), 3u);
  for (const json& c : m["training"]["calibration"]) {
    if (c["known_photos"].get<int>() > 0) {
      EXPECT_LE(c["known_flagged"].get<double>(), 0.08) << c;
    }
  }
  EXPECT_GT(m["training"]["calibration"][2]["negative_flagged"].get<double>(), 0.5);
  EXPECT_LE(m["training"]["min_confidence"].get<double>(), 0.3);
}

TEST(IdentifyTest, TrainIsDeterministicWhateverTheThreads) {
  REQUIRE_FIXTURES();
  testing::TempDir dir;
  std::string outputs[2];
  for (int threads : {1, 2}) {
    const fs::path out = dir.path() / ("model-" + std::to_string(threads));
    const auto r = RunCommand(Bin() + " train " + ShellQuote((FixtureDir() / "real-training").string()) +
                              " --negatives " + ShellQuote((FixtureDir() / "negatives").string()) + " --out " +
                              ShellQuote(out.string()) + " --augment-images 8 --quiet --threads " +
                              std::to_string(threads));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("time "), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("views "), std::string::npos) << r.output;  // time per stage
    for (const char* f : {"model.json", "classifier.json", "classifier.weights", "imagenet_head.weights", "taxonomy.tsv"}) {
      outputs[threads - 1] += ReadLocalFile((out / f).string());
    }
  }
  EXPECT_EQ(outputs[0], outputs[1]);
}

TEST(IdentifyTest, EvaluateOnDevTestIsAccurateAndFlagsUnknownFruits) {
  REQUIRE_FIXTURES();
  testing::TempDir dir;
  const fs::path test = CopyOfDevTest(dir);
  fs::remove(test / "report.html");
  const auto r = RunCommand(Bin() + " evaluate " + ShellQuote(ModelDir().string()) + " " + ShellQuote(test.string()) +
                            " --quiet");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::cout << r.output;
  EXPECT_NE(r.output.find("top-1"), std::string::npos);
  EXPECT_NE(r.output.find("worst classes"), std::string::npos);

  const json ev = ReadJson(test / "evaluation.json");
  for (const char* key : {"top1_accuracy", "top5_accuracy", "species_top1_accuracy", "unknown_flagged_rate",
                          "known_false_unknown_rate", "per_class", "confusion", "calibration"}) {
    EXPECT_TRUE(ev.contains(key)) << key;
  }
  const std::size_t classes = ReadJson(ModelDir() / "classifier.json")["classes"].size();
  EXPECT_EQ(ev["rows"], 1800);
  EXPECT_EQ(ev["errors"], 0);
  EXPECT_EQ(ev["n_known"], 1710);  // 114 classes × 15
  EXPECT_EQ(ev["n_unknown"], 90);   // 6 classes × 15
  EXPECT_EQ(ev["per_class"].size(), classes);
  EXPECT_EQ(ev["confusion"]["matrix"].size(), classes);
  std::int64_t total = 0;
  for (const auto& row : ev["confusion"]["matrix"]) {
    for (const auto& v : row) total += v.get<std::int64_t>();
  }
  EXPECT_EQ(total, 1710);
  std::vector<std::string> unknown_labels;
  for (auto& [label, u] : ev["unknown_labels"].items()) unknown_labels.push_back(label);
  EXPECT_EQ(unknown_labels, kUnknownClasses);

  // Floors measured on the dev split with margin (docs/serving.md gives the figures).
  const double top1 = ev["top1_accuracy"], top5 = ev["top5_accuracy"], species = ev["species_top1_accuracy"];
  const double flagged = ev["unknown_flagged_rate"], false_unknown = ev["known_false_unknown_rate"];
  std::cout << "dev Test: top-1 " << top1 << ", top-5 " << top5 << ", species " << species << ", unknown flagged "
            << flagged << ", known wrongly flagged " << false_unknown << ", ECE " << ev["calibration"]["ece"] << "\n";
  EXPECT_GT(top1, 0.9);
  EXPECT_GE(top5, top1);
  EXPECT_GE(species, top1);
  // Untrained catalogue classes (tomatoes beside the trained tomatoes, walnut beside nuts)
  // are the weak spot since the thresholds serve real photos too: 23 % measured.
  EXPECT_GT(flagged, 0.15);
  EXPECT_LT(false_unknown, 0.05);

  ASSERT_TRUE(fs::exists(test / "report.html"));
  const std::string html = ReadLocalFile((test / "report.html").string());
  EXPECT_NE(html.find("known_false_unknown_rate"), std::string::npos);
}

TEST(IdentifyTest, EvaluateRealPhotosAndAnOfftopicFolder) {
  REQUIRE_FIXTURES();
  testing::TempDir dir;
  const fs::path validation = CopyOf(dir, "real-validation");
  const auto r = RunCommand(Bin() + " evaluate " + ShellQuote(ModelDir().string()) + " " +
                            ShellQuote(validation.string()) + " --offtopic " +
                            ShellQuote((FixtureDir() / "offtopic-eval").string()) + " --quiet");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::cout << r.output;
  EXPECT_NE(r.output.find("off-topic"), std::string::npos) << r.output;
  const json ev = ReadJson(validation / "evaluation.json");
  EXPECT_EQ(ev["n_known"], 108);
  EXPECT_EQ(ev["offtopic"]["images"], 432);  // the odd half of Offtopic/, never trained on
  const double top1 = ev["top1_accuracy"], flagged = ev["known_false_unknown_rate"];
  const double offtopic = ev["offtopic"]["flagged_rate"];
  std::cout << "Validation: top-1 " << top1 << ", species " << ev["species_top1_accuracy"] << ", flagged " << flagged
            << ", off-topic flagged " << offtopic << ", ECE " << ev["calibration"]["ece"] << "\n";
  // Floors with margin under the figures measured (docs/serving.md): a white-background-only
  // identifier gets under 20 % here and flags nearly everything.
  EXPECT_GT(top1, 0.7);
  EXPECT_LT(flagged, 0.2);
  EXPECT_GT(offtopic, 0.9);
  EXPECT_EQ(ev["calibration"]["bins"].size(), 10u);
  const std::string html = ReadLocalFile((validation / "report.html").string());
  EXPECT_NE(html.find("\"calibration\""), std::string::npos);

  // Produce of no known class, never trained on: mostly "unknown".
  const auto u = RunCommand(Bin() + " evaluate " + ShellQuote(ModelDir().string()) + " " +
                            ShellQuote(CopyOf(dir, "unknown-eval").string()) + " --quiet --json 2>/dev/null");
  ASSERT_EQ(u.exit_code, 0) << u.output;
  const json unknown = json::parse(u.output);
  EXPECT_EQ(unknown["n_known"], 0);
  std::cout << "Unknown: flagged " << unknown["unknown_flagged_rate"] << "\n";
  EXPECT_GT(unknown["unknown_flagged_rate"].get<double>(), 0.5);

  // A folder with no photo is refused in one line.
  const auto empty = RunCommand(Bin() + " evaluate " + ShellQuote(ModelDir().string()) + " --offtopic " +
                                ShellQuote(dir.path().string() + "/none"));
  EXPECT_EQ(empty.exit_code, 2) << empty.output;
  EXPECT_NE(empty.output.find("not a folder"), std::string::npos) << empty.output;
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
  // Datasets of another feature model cannot be mixed.
  const fs::path other = CopyOf(dir, "real-validation");
  json run = ReadJson(other / "run.json");
  run["model"]["sha256"] = std::string(64, 'a');
  std::ofstream(other / "run.json") << run.dump();
  r = RunCommand(Bin() + " train " + ShellQuote((FixtureDir() / "real-training").string()) + " " +
                 ShellQuote(other.string()) + " --out " + ShellQuote((dir.path() / "m2").string()));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("train on runs of one feature model"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir.path() / "m2" / "model.json"));
}

// `predict --json`: label, closest, species, top-5 for photos; errors for the rest.
TEST(IdentifyTest, PredictAnswersWithSpeciesAndReportsBadInputs) {
  REQUIRE_FIXTURES();
  const serve::IdentifyModel model = serve::LoadIdentifyModel(ModelDir().string(), {});
  auto test = storage::OpenStorage((FixtureDir() / "dev-test").string());
  const serve::ResultsDataset d = serve::LoadResultsDataset(*test);
  // Every 150th row: a dozen photos across the classes, known and unknown.
  std::vector<std::size_t> picks;
  for (std::size_t i = 0; i < d.rows.rows.size(); i += 150) picks.push_back(i);
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
  int right = 0;
  for (std::size_t j = 0; j < picks.size(); ++j) {
    const json& p = out["images"][j];
    const dataset::ImageRow& row = d.rows.rows[picks[j]];
    ASSERT_FALSE(p.contains("error")) << p;
    EXPECT_EQ(p["path"], row.path);
    ASSERT_EQ(p["top5"].size(), 5u);
    EXPECT_EQ(p["top5"][0]["label"], p["closest"]);
    EXPECT_EQ(p["label"], p["unknown"].get<bool>() ? "unknown" : p["closest"].get<std::string>()) << p;
    EXPECT_GE(p["species_confidence"].get<double>(), p["confidence"].get<double>() - 1e-12) << p;
    EXPECT_TRUE(p.contains("variety_uncertain"));
    right += p["closest"] == row.label;
  }
  EXPECT_GE(right, static_cast<int>(picks.size()) * 3 / 4);
  const json& bad = out["images"][picks.size()];
  EXPECT_EQ(bad["error"], "not_an_image") << bad;
  const json& missing = out["images"][picks.size() + 1];
  EXPECT_EQ(missing["error"], "unreadable") << missing;

  // Species of an apple variety is "Apple".
  const auto apple = RunCommand(Bin() + " predict " + ShellQuote(ModelDir().string()) + " --json " +
                                ShellQuote((fs::path(testing::SharedDir()) / "data/realworld-dev/Validation/Apple Granny Smith").string() +
                                           "/gs__val__Granny-Smith_001.jpg") + " 2>/dev/null");
  ASSERT_EQ(apple.exit_code, 0) << apple.output;
  EXPECT_EQ(json::parse(apple.output)["images"][0]["species"], "Apple") << apple.output;

  // The table form names the label, the species and the top-5.
  const auto table = RunCommand(Bin() + " predict " + ShellQuote(ModelDir().string()) + " " +
                                ShellQuote(d.rows.rows[picks[0]].path) + " 2>/dev/null");
  EXPECT_EQ(table.exit_code, 0) << table.output;
  EXPECT_NE(table.output.find("SPECIES"), std::string::npos) << table.output;
  EXPECT_NE(table.output.find("TOP-5"), std::string::npos) << table.output;
}

}  // namespace
}  // namespace fruitpipe
