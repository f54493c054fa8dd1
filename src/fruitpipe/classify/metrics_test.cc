#include "fruitpipe/classify/metrics.h"

#include <gtest/gtest.h>

#include "fruitpipe/common/error.h"

namespace fruitpipe::classify {
namespace {

Prediction P(const std::string& label, std::vector<std::string> top, bool unknown) {
  Prediction p;
  p.label = label;
  p.unknown = unknown;
  p.unknown_reason = unknown ? "low_confidence" : "";
  double prob = 0.6;
  for (const std::string& t : top) {
    p.top.push_back({t, prob});
    prob /= 2;
  }
  p.confidence = p.top.front().probability;
  p.species = label;
  p.species_confidence = p.confidence;
  return p;
}

TEST(MetricsTest, HandMadeExample) {
  const std::vector<std::string> classes = {"A", "B", "C"};
  const std::vector<std::string> truth = {"A", "A", "A", "B", "B", "C", "X", "X", "Y"};
  const std::vector<Prediction> predictions = {
      P("A", {"A", "B", "C"}, false),  // right
      P("B", {"B", "A", "C"}, false),  // wrong, in top 5
      P("A", {"A", "C"}, true),        // right but flagged
      P("B", {"B", "A"}, false),       // right
      P("C", {"C", "A"}, true),        // wrong, not in top 5, flagged
      P("C", {"C"}, false),            // right
      P("A", {"A"}, true),             // unknown class, flagged
      P("B", {"B"}, false),            // unknown class, missed
      P("C", {"C"}, true),             // unknown class, flagged
  };
  const nlohmann::json e = Evaluate(classes, truth, predictions, Taxonomy{});
  EXPECT_EQ(e.at("n_known"), 6);
  EXPECT_EQ(e.at("n_unknown"), 3);
  EXPECT_EQ(e.at("n_known_accepted"), 4);
  EXPECT_DOUBLE_EQ(e.at("top1_accuracy").get<double>(), 4.0 / 6);
  EXPECT_DOUBLE_EQ(e.at("top5_accuracy").get<double>(), 5.0 / 6);
  EXPECT_DOUBLE_EQ(e.at("top1_accuracy_accepted").get<double>(), 3.0 / 4);
  EXPECT_DOUBLE_EQ(e.at("known_false_unknown_rate").get<double>(), 2.0 / 6);
  EXPECT_DOUBLE_EQ(e.at("unknown_flagged_rate").get<double>(), 2.0 / 3);
  EXPECT_EQ(e.at("confusion").at("labels"), nlohmann::json(classes));
  EXPECT_EQ(e.at("confusion").at("matrix"), nlohmann::json::parse("[[2,1,0],[0,1,1],[0,0,1]]"));
  const nlohmann::json& pc = e.at("per_class");
  EXPECT_DOUBLE_EQ(pc.at("A").at("precision").get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(pc.at("A").at("recall").get<double>(), 2.0 / 3);
  EXPECT_EQ(pc.at("A").at("support"), 3);
  EXPECT_DOUBLE_EQ(pc.at("B").at("precision").get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(pc.at("B").at("recall").get<double>(), 0.5);
  EXPECT_EQ(pc.at("B").at("support"), 2);
  EXPECT_DOUBLE_EQ(pc.at("C").at("precision").get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(pc.at("C").at("recall").get<double>(), 1.0);
  EXPECT_EQ(pc.at("C").at("support"), 1);
  EXPECT_EQ(e.at("unknown_labels"), nlohmann::json::parse(R"({"X":{"support":2,"flagged":1},"Y":{"support":1,"flagged":1}})"));
  // Confidences 0.6 (4 right of 6 known): one bin, ECE |0.6 - 4/6|.
  const nlohmann::json& bins = e.at("calibration").at("bins");
  EXPECT_EQ(bins[6].at("count"), 6);
  EXPECT_DOUBLE_EQ(bins[6].at("accuracy").get<double>(), 4.0 / 6);
  EXPECT_TRUE(bins[0].at("accuracy").is_null());
  EXPECT_NEAR(e.at("calibration").at("ece").get<double>(), 4.0 / 6 - 0.6, 1e-12);
}

TEST(MetricsTest, SpeciesTopOneCountsTheRightSpeciesOfAWrongVariety) {
  const Taxonomy taxonomy = Taxonomy::Parse("A1\tApple\t-\nA2\tApple\t-\n", "t.tsv");
  Prediction wrong_variety = P("A2", {"A2", "A1"}, false);
  wrong_variety.species = "Apple";
  Prediction right = P("A1", {"A1"}, false);
  right.species = "Apple";
  const nlohmann::json e = Evaluate({"A1", "A2", "B"}, {"A1", "A1", "B"}, {wrong_variety, right, P("A1", {"A1"}, false)}, taxonomy);
  EXPECT_DOUBLE_EQ(e.at("top1_accuracy").get<double>(), 1.0 / 3);
  EXPECT_DOUBLE_EQ(e.at("species_top1_accuracy").get<double>(), 2.0 / 3);
}

TEST(MetricsTest, RatesOverNoImagesAreNull) {
  const nlohmann::json e = Evaluate({"A", "B"}, {"A"}, {P("B", {"B", "A"}, true)}, Taxonomy{});
  EXPECT_TRUE(e.at("unknown_flagged_rate").is_null());
  EXPECT_TRUE(e.at("top1_accuracy_accepted").is_null());  // the only known image was flagged
  EXPECT_EQ(e.at("top1_accuracy").get<double>(), 0.0);
  EXPECT_EQ(e.at("per_class").at("A").at("precision").get<double>(), 0.0);  // never predicted
  EXPECT_EQ(e.at("per_class").at("B").at("recall").get<double>(), 0.0);     // no support
  const nlohmann::json empty = Evaluate({"A", "B"}, {}, {}, Taxonomy{});
  EXPECT_TRUE(empty.at("top1_accuracy").is_null());
  EXPECT_EQ(empty.at("n_known"), 0);
}

TEST(MetricsTest, RejectsInconsistentInput) {
  EXPECT_THROW(Evaluate({"A", "B"}, {"A", "B"}, {P("A", {"A"}, false)}, Taxonomy{}), InvalidArgumentError);
  EXPECT_THROW(Evaluate({"A", "B"}, {"A"}, {P("Z", {"Z"}, false)}, Taxonomy{}), InvalidArgumentError);
  EXPECT_THROW(Evaluate({"A", "A"}, {}, {}, Taxonomy{}), InvalidArgumentError);
}

}  // namespace
}  // namespace fruitpipe::classify
