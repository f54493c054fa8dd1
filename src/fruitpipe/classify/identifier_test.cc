#include "fruitpipe/classify/identifier.h"

#include <gtest/gtest.h>

#include "fruitpipe/classify/metrics.h"
#include "fruitpipe/classify/test_blobs.h"
#include "fruitpipe/common/error.h"

namespace fruitpipe::classify {
namespace {

using testing::Blobs;
using testing::MakeBlobs;

constexpr int kClasses = 6;
constexpr int kDim = 16;

FruitIdentifier TrainOn(const Blobs& b, const IdentifierOptions& options = {}) {
  return FruitIdentifier::Train(b.x.data(), static_cast<int>(b.x.rows()), static_cast<int>(b.x.cols()), b.labels,
                                options);
}

std::vector<Prediction> PredictAll(const FruitIdentifier& id, const RowMatrix& x) {
  std::vector<Prediction> out;
  for (int i = 0; i < x.rows(); ++i) out.push_back(id.Predict(x.row(i).data()));
  return out;
}

// Class centres 4σ apart per coordinate on average: separable, like fruit classes in PCA space.
class IdentifierTest : public ::testing::Test {
 protected:
  IdentifierTest()
      : train_(MakeBlobs(kClasses, kDim, 300, 2.0, 1.0, 1)),
        test_(MakeBlobs(kClasses, kDim, 200, 0.0, 1.0, 2, &train_.centers)),
        id_(TrainOn(train_)) {}
  Blobs train_, test_;
  FruitIdentifier id_;
};

TEST_F(IdentifierTest, ClassifiesKnownBlobsAndFlagsAFarBlob) {
  // A new fruit: a blob whose centre is 8σ away from every class along every feature.
  const Eigen::MatrixXd far_center = Eigen::MatrixXd::Constant(1, kDim, 8.0);
  Blobs unknown = MakeBlobs(1, kDim, 300, 0.0, 1.0, 3, &far_center);
  std::vector<std::string> truth = test_.labels;
  RowMatrix x(test_.x.rows() + unknown.x.rows(), kDim);
  x << test_.x, unknown.x;
  truth.insert(truth.end(), 300, "mystery fruit");

  const nlohmann::json e = Evaluate(id_.classes(), truth, PredictAll(id_, x));
  EXPECT_EQ(e.at("n_known"), kClasses * 200);
  EXPECT_EQ(e.at("n_unknown"), 300);
  EXPECT_GT(e.at("top1_accuracy").get<double>(), 0.99);
  EXPECT_EQ(e.at("top5_accuracy").get<double>(), 1.0);
  EXPECT_GT(e.at("unknown_flagged_rate").get<double>(), 0.99);
  EXPECT_LT(e.at("known_false_unknown_rate").get<double>(), 0.05);
  EXPECT_EQ(e.at("unknown_labels").at("mystery fruit").at("support"), 300);
}

TEST_F(IdentifierTest, TrainingRowsAreRarelyFlagged) {
  int flagged = 0;
  for (const Prediction& p : PredictAll(id_, train_.x)) flagged += p.unknown;
  EXPECT_LT(flagged, 0.03 * train_.x.rows());
  EXPECT_GT(id_.metadata().at("train_accuracy").get<double>(), 0.99);
  EXPECT_EQ(id_.metadata().at("training_rows"), kClasses * 300);
  EXPECT_EQ(id_.metadata().at("calibration_rows"), kClasses * 30);  // every 10th row of each class
  EXPECT_EQ(id_.metadata().at("fit_rows"), kClasses * 270);
  EXPECT_TRUE(id_.metadata().at("optimizer").at("converged").get<bool>());
}

TEST_F(IdentifierTest, PredictionCarriesTopFiveAndDistance) {
  const Prediction p = id_.Predict(test_.x.row(0).data());
  EXPECT_EQ(p.label, "class-000");
  ASSERT_EQ(p.top.size(), 5u);
  EXPECT_EQ(p.top[0].label, p.label);
  EXPECT_EQ(p.top[0].probability, p.confidence);
  double sum = 0;
  for (std::size_t i = 0; i < p.top.size(); ++i) {
    sum += p.top[i].probability;
    if (i > 0) {
      EXPECT_GE(p.top[i - 1].probability, p.top[i].probability);
    }
  }
  EXPECT_LE(sum, 1.0 + 1e-12);
  EXPECT_GT(p.distance, 0.0);
  EXPECT_EQ(p.distance_threshold, id_.detector().distance_threshold(0));
  EXPECT_EQ(p.unknown, p.distance > p.distance_threshold || p.confidence < id_.detector().min_confidence);
}

TEST_F(IdentifierTest, UnknownReasonsFollowTheRule) {
  // Midway between two class centres: close enough to both by distance, unsure between them.
  const Eigen::VectorXd mid = 0.5 * (train_.centers.row(0) + train_.centers.row(1)).transpose();
  const Prediction between = id_.Predict(mid.data());
  EXPECT_LT(between.confidence, 0.9);
  const Eigen::VectorXd far = Eigen::VectorXd::Constant(kDim, 50.0);
  const Prediction p = id_.Predict(far.data());
  EXPECT_TRUE(p.unknown);
  EXPECT_EQ(p.unknown_reason.rfind("far_from_class", 0), 0u) << p.unknown_reason;
  EXPECT_GT(p.distance, p.distance_threshold);
  Eigen::VectorXd bad = mid;
  bad(2) = NAN;
  EXPECT_THROW(id_.Predict(bad.data()), InvalidArgumentError);
}

TEST_F(IdentifierTest, Deterministic) {
  EXPECT_EQ(TrainOn(train_).Serialize(), id_.Serialize());
}

TEST_F(IdentifierTest, SerializationRoundTrip) {
  id_.metadata()["pca_model_sha256"] = "ab12";
  const auto files = id_.Serialize();
  ASSERT_EQ(files.size(), 2u);
  const FruitIdentifier back = FruitIdentifier::Deserialize(files);
  EXPECT_EQ(back.classes(), id_.classes());
  EXPECT_EQ(back.metadata().at("pca_model_sha256"), "ab12");
  EXPECT_EQ(back.Serialize(), files);
  for (int i = 0; i < 50; ++i) {
    const Prediction a = id_.Predict(test_.x.row(i).data());
    const Prediction b = back.Predict(test_.x.row(i).data());
    EXPECT_EQ(a.label, b.label);
    EXPECT_EQ(a.confidence, b.confidence);
    EXPECT_EQ(a.distance, b.distance);
    EXPECT_EQ(a.unknown, b.unknown);
  }
  const nlohmann::json j = nlohmann::json::parse(files.at("classifier.json"));
  EXPECT_EQ(j.at("classes").size(), static_cast<std::size_t>(kClasses));
  EXPECT_EQ(j.at("dim"), kDim);
}

TEST_F(IdentifierTest, DamagedModelIsCorruption) {
  const auto files = id_.Serialize();
  const std::string& weights = files.at("classifier.weights");
  for (std::size_t at : {std::size_t{0}, std::size_t{20}, weights.size() / 2, weights.size() - 1}) {
    auto damaged = files;
    damaged["classifier.weights"][at] ^= 0x04;
    EXPECT_THROW(FruitIdentifier::Deserialize(damaged), CorruptionError) << "byte " << at;
  }
  auto truncated = files;
  truncated["classifier.weights"].resize(weights.size() - 9);
  EXPECT_THROW(FruitIdentifier::Deserialize(truncated), CorruptionError);

  auto bad_json = files;
  bad_json["classifier.json"].resize(100);
  EXPECT_THROW(FruitIdentifier::Deserialize(bad_json), CorruptionError);

  // A consistent-looking JSON that disagrees with the weights' shape.
  nlohmann::json j = nlohmann::json::parse(files.at("classifier.json"));
  j["classes"].push_back("zzz");
  j["unknown"]["distance_thresholds"].push_back(1.0);
  auto reshaped = files;
  reshaped["classifier.json"] = j.dump();
  EXPECT_THROW(FruitIdentifier::Deserialize(reshaped), CorruptionError);

  j = nlohmann::json::parse(files.at("classifier.json"));
  j["standardization"]["std"][3] = -1.0;
  auto negative = files;
  negative["classifier.json"] = j.dump();
  EXPECT_THROW(FruitIdentifier::Deserialize(negative), CorruptionError);

  auto missing = files;
  missing.erase("classifier.weights");
  EXPECT_THROW(FruitIdentifier::Deserialize(missing, "models/v1"), NotFoundError);
  try {
    FruitIdentifier::Deserialize(truncated, "s3://b/models/v1");
    FAIL();
  } catch (const CorruptionError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("s3://b/models/v1: classifier.weights: ", 0), 0u) << e.what();
  }
}

TEST(IdentifierTrainTest, RejectsBadInput) {
  const auto b = MakeBlobs(3, 4, 20, 2.0, 1.0, 5);
  const int rows = static_cast<int>(b.x.rows());
  EXPECT_THROW(FruitIdentifier::Train(b.x.data(), rows, 4, std::vector<std::string>(rows, "apple")),
               InvalidArgumentError);  // one class
  EXPECT_THROW(FruitIdentifier::Train(b.x.data(), rows, 4, std::vector<std::string>(rows - 1, "a")),
               InvalidArgumentError);
  std::vector<std::string> labels = b.labels;
  labels[4] = "";
  EXPECT_THROW(FruitIdentifier::Train(b.x.data(), rows, 4, labels), InvalidArgumentError);
  RowMatrix x = b.x;
  x(3, 3) = INFINITY;
  EXPECT_THROW(FruitIdentifier::Train(x.data(), rows, 4, b.labels), InvalidArgumentError);
  IdentifierOptions holdout_one;
  holdout_one.holdout_every = 1;
  EXPECT_THROW(FruitIdentifier::Train(b.x.data(), rows, 4, b.labels, holdout_one), InvalidArgumentError);
}

TEST(IdentifierTrainTest, SmallClassesAndNoHoldout) {
  // 3 rows per class: nothing is held out (row 9 never comes) and per-class quantiles fall
  // back to the pooled one; with holdout_every = 0 calibration uses the fit rows.
  const auto b = MakeBlobs(4, 3, 3, 3.0, 1.0, 6);
  const FruitIdentifier a = FruitIdentifier::Train(b.x.data(), 12, 3, b.labels);
  EXPECT_EQ(a.metadata().at("calibration_rows"), 0);
  const double t = a.detector().distance_threshold(0);
  for (int c = 1; c < 4; ++c) EXPECT_EQ(a.detector().distance_threshold(c), t);
  IdentifierOptions no_holdout;
  no_holdout.holdout_every = 0;
  const FruitIdentifier c = FruitIdentifier::Train(b.x.data(), 12, 3, b.labels, no_holdout);
  EXPECT_EQ(c.metadata().at("fit_rows"), 12);
}

}  // namespace
}  // namespace fruitpipe::classify
