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

// Appends a blob's rows as photos of one domain (one view each), numbering photos from `photo`.
void AddBlobs(const Blobs& b, int domain, bool negative, int* photo, TrainingSet* set) {
  set->dim = static_cast<int>(b.x.cols());
  for (Eigen::Index i = 0; i < b.x.rows(); ++i) {
    const Eigen::VectorXf row = b.x.row(i).transpose().cast<float>();
    set->Add(row.data(), b.labels[static_cast<std::size_t>(i)], domain, negative, (*photo)++, 0);
  }
}

TrainingSet OneDomain(const Blobs& b) {
  TrainingSet set;
  int photo = 0;
  AddBlobs(b, 0, false, &photo, &set);
  return set;
}

Prediction PredictRow(const FruitIdentifier& id, const RowMatrix& x, Eigen::Index i) {
  const Eigen::VectorXf row = x.row(i).transpose().cast<float>();
  return id.Predict(row.data(), 1);
}

std::vector<Prediction> PredictAll(const FruitIdentifier& id, const RowMatrix& x) {
  std::vector<Prediction> out;
  for (Eigen::Index i = 0; i < x.rows(); ++i) out.push_back(PredictRow(id, x, i));
  return out;
}

// Class centres 4σ apart per coordinate on average: separable, like fruit classes.
class IdentifierTest : public ::testing::Test {
 protected:
  IdentifierTest()
      : train_(MakeBlobs(kClasses, kDim, 300, 2.0, 1.0, 1)),
        test_(MakeBlobs(kClasses, kDim, 200, 0.0, 1.0, 2, &train_.centers)),
        id_(FruitIdentifier::Train(OneDomain(train_), Taxonomy{}, ImagenetPrior{})) {}
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

  const nlohmann::json e = Evaluate(id_.classes(), truth, PredictAll(id_, x), Taxonomy{});
  EXPECT_EQ(e.at("n_known"), kClasses * 200);
  EXPECT_EQ(e.at("n_unknown"), 300);
  EXPECT_GT(e.at("top1_accuracy").get<double>(), 0.99);
  EXPECT_EQ(e.at("species_top1_accuracy"), e.at("top1_accuracy"));  // no taxonomy: each class its own species
  EXPECT_EQ(e.at("top5_accuracy").get<double>(), 1.0);
  EXPECT_GT(e.at("unknown_flagged_rate").get<double>(), 0.99);
  EXPECT_LE(e.at("known_false_unknown_rate").get<double>(), 0.08);
  EXPECT_LT(e.at("calibration").at("ece").get<double>(), 0.1);
  EXPECT_EQ(e.at("calibration").at("bins").size(), 10u);
}

TEST_F(IdentifierTest, ThresholdsComeFromHeldOutPhotos) {
  const nlohmann::json& cal = id_.metadata().at("calibration");
  ASSERT_EQ(cal.size(), 1u);
  EXPECT_EQ(cal[0].at("known_photos"), kClasses * 30);  // the last tenth of each class
  EXPECT_LE(cal[0].at("known_flagged").get<double>(), IdentifierOptions{}.max_known_flagged);
  EXPECT_EQ(id_.metadata().at("fit_rows"), kClasses * 270);
  // On fresh rows of the same classes the flagged share stays near the calibrated one.
  int flagged = 0;
  for (const Prediction& p : PredictAll(id_, test_.x)) flagged += p.unknown;
  EXPECT_LE(flagged, static_cast<int>(0.1 * static_cast<double>(test_.x.rows())));
}

TEST_F(IdentifierTest, PredictionCarriesTopFiveDistanceAndPooledViews) {
  const Prediction p = PredictRow(id_, test_.x, 0);
  EXPECT_EQ(p.label, test_.labels[0]);
  ASSERT_EQ(p.top.size(), 5u);
  EXPECT_EQ(p.top[0].label, p.label);
  for (std::size_t i = 1; i < p.top.size(); ++i) EXPECT_GE(p.top[i - 1].probability, p.top[i].probability);
  EXPECT_GT(p.distance, 0.0);
  EXPECT_EQ(p.species, p.label);
  // Two identical views pool to the single view's answer.
  Eigen::Matrix<float, 2, kDim, Eigen::RowMajor> twice;
  twice.row(0) = test_.x.row(0).cast<float>();
  twice.row(1) = twice.row(0);
  const Prediction q = id_.Predict(twice.data(), 2);
  EXPECT_EQ(q.label, p.label);
  EXPECT_NEAR(q.confidence, p.confidence, 1e-12);
  std::vector<float> bad(kDim, 0.0f);
  bad[2] = NAN;
  EXPECT_THROW(id_.Predict(bad.data(), 1), InvalidArgumentError);
  EXPECT_THROW(id_.Predict(bad.data(), 0), InvalidArgumentError);
}

TEST(IdentifierDomainsTest, TwoDatasetsUnionOfClassesAndTheSmallOneCounts) {
  // A large "catalogue" domain and a small "real photo" domain whose class centres are
  // shifted and which adds a class the catalogue lacks.
  const Blobs catalogue = MakeBlobs(4, kDim, 400, 2.0, 1.0, 11);
  Eigen::MatrixXd shifted(5, kDim);
  shifted.topRows(4) = catalogue.centers.array() + 1.5;
  shifted.row(4) = Eigen::RowVectorXd::Constant(kDim, -3.0);
  const Blobs real = MakeBlobs(5, kDim, 12, 0.0, 1.0, 12, &shifted);
  const Blobs real_test = MakeBlobs(5, kDim, 100, 0.0, 1.0, 13, &shifted);
  TrainingSet set;
  int photo = 0;
  AddBlobs(catalogue, 0, false, &photo, &set);
  AddBlobs(real, 1, false, &photo, &set);
  const FruitIdentifier id = FruitIdentifier::Train(set, Taxonomy{}, ImagenetPrior{});
  EXPECT_EQ(id.classes().size(), 5u);
  const nlohmann::json e = Evaluate(id.classes(), real_test.labels, PredictAll(id, real_test.x), Taxonomy{});
  EXPECT_GT(e.at("top1_accuracy").get<double>(), 0.95);
  const nlohmann::json cal = id.metadata().at("calibration");
  ASSERT_EQ(cal.size(), 2u);
  EXPECT_EQ(cal[1].at("known_photos"), 5);  // 12 photos per class: the last one of each
}

TEST(IdentifierNegativesTest, NegativePhotosTeachTheNoFruitAnswer) {
  const Blobs known = MakeBlobs(4, kDim, 200, 2.0, 1.0, 21);
  const Eigen::MatrixXd off_center = Eigen::MatrixXd::Constant(1, kDim, 5.0);
  Blobs negatives = MakeBlobs(1, kDim, 300, 0.0, 1.5, 22, &off_center);
  for (auto& l : negatives.labels) l = "carton";  // labels of negatives are ignored
  TrainingSet set;
  int photo = 0;
  AddBlobs(known, 0, false, &photo, &set);
  AddBlobs(negatives, 1, true, &photo, &set);
  const FruitIdentifier id = FruitIdentifier::Train(set, Taxonomy{}, ImagenetPrior{});
  EXPECT_TRUE(id.has_negative_class());
  EXPECT_EQ(id.classes().size(), 4u);  // "carton" is no class
  const Blobs fresh = MakeBlobs(1, kDim, 100, 0.0, 1.5, 23, &off_center);
  int no_fruit = 0;
  for (const Prediction& p : PredictAll(id, fresh.x)) no_fruit += p.unknown_reason.find("no_known_fruit") != std::string::npos;
  EXPECT_GT(no_fruit, 95);
  const nlohmann::json cal = id.metadata().at("calibration");
  EXPECT_GT(cal[1].at("negative_flagged").get<double>(), 0.95);
  EXPECT_LE(cal[0].at("known_flagged").get<double>(), 0.08);
}

TEST(IdentifierSpeciesTest, SpeciesSumsItsVarietiesAndSaysWhenTheVarietyIsUncertain) {
  // Two overlapping varieties of one species and a distinct other fruit.
  Eigen::MatrixXd centers = Eigen::MatrixXd::Zero(3, kDim);
  centers.row(1).setConstant(0.3);
  centers.row(2).setConstant(6.0);
  const Blobs b = MakeBlobs(3, kDim, 300, 0.0, 1.0, 31, &centers);
  TrainingSet set = OneDomain(b);
  const Taxonomy taxonomy = Taxonomy::Parse("class-000\tApple\t948\nclass-001\tApple\t-\n", "test.tsv");
  const FruitIdentifier id = FruitIdentifier::Train(set, taxonomy, ImagenetPrior{});
  EXPECT_EQ(id.species(), (std::vector<std::string>{"Apple", "Apple", "class-002"}));
  const Eigen::VectorXf between = ((centers.row(0) + centers.row(1)) / 2).transpose().cast<float>();
  const Prediction p = id.Predict(between.data(), 1);
  EXPECT_EQ(p.species, "Apple");
  EXPECT_GT(p.species_confidence, 0.9);
  EXPECT_LT(p.confidence, 0.8);
  EXPECT_GE(p.species_confidence, p.confidence);
  EXPECT_EQ(p.variety_uncertain, p.confidence < id.detector().min_confidence);
  EXPECT_FALSE(p.unknown);
}

TEST(IdentifierPriorTest, TheImagenetPriorMovesMassToTheClassesItKnows) {
  const Blobs b = MakeBlobs(3, 4, 200, 2.0, 1.0, 41);
  TrainingSet set = OneDomain(b);
  const Taxonomy taxonomy = Taxonomy::Parse("class-001\tPear\t7\n", "test.tsv");
  ImagenetPrior prior;
  prior.head = Eigen::MatrixXf::Zero(5, 1000);
  prior.head(4, 7) = 8.0f;  // a bias: ImageNet says "class 7" for everything
  IdentifierOptions options;
  const FruitIdentifier with = FruitIdentifier::Train(set, taxonomy, prior, options);
  options.prior_weight = 0.0;
  const FruitIdentifier without = FruitIdentifier::Train(set, taxonomy, prior, options);
  EXPECT_TRUE(with.has_prior());
  EXPECT_FALSE(without.has_prior());
  const Eigen::VectorXf middle = ((b.centers.row(0) + b.centers.row(1)) / 2).transpose().cast<float>();
  const auto probability_of = [&](const FruitIdentifier& id, const std::string& label) {
    for (const auto& t : id.Predict(middle.data(), 1).top) {
      if (t.label == label) return t.probability;
    }
    return 0.0;
  };
  EXPECT_GT(probability_of(with, "class-001"), probability_of(without, "class-001"));
  // The prior survives serialization.
  const FruitIdentifier back = FruitIdentifier::Deserialize(with.Serialize());
  EXPECT_EQ(back.Predict(middle.data(), 1).confidence, with.Predict(middle.data(), 1).confidence);
}

TEST_F(IdentifierTest, Deterministic) {
  EXPECT_EQ(FruitIdentifier::Train(OneDomain(train_), Taxonomy{}, ImagenetPrior{}).Serialize(), id_.Serialize());
}

TEST_F(IdentifierTest, SerializationRoundTrip) {
  id_.metadata()["source"] = "ab12";
  const auto files = id_.Serialize();
  ASSERT_EQ(files.size(), 3u);  // json, weights, taxonomy (no prior)
  const FruitIdentifier back = FruitIdentifier::Deserialize(files);
  EXPECT_EQ(back.classes(), id_.classes());
  EXPECT_EQ(back.metadata().at("source"), "ab12");
  EXPECT_EQ(back.Serialize(), files);
  for (int i = 0; i < 50; ++i) {
    const Prediction a = PredictRow(id_, test_.x, i);
    const Prediction b = PredictRow(back, test_.x, i);
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

  auto bad_taxonomy = files;
  bad_taxonomy["taxonomy.tsv"] = "x\ty\t-\n";
  EXPECT_THROW(FruitIdentifier::Deserialize(bad_taxonomy), CorruptionError);

  // A consistent-looking JSON that disagrees with the weights' shape.
  nlohmann::json j = nlohmann::json::parse(files.at("classifier.json"));
  j["classes"].push_back("zzz");
  j["species"].push_back("zzz");
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
  TrainingSet one_class = OneDomain(b);
  for (auto& l : one_class.labels) l = "apple";
  EXPECT_THROW(FruitIdentifier::Train(one_class, Taxonomy{}, ImagenetPrior{}), InvalidArgumentError);
  TrainingSet short_column = OneDomain(b);
  short_column.view.pop_back();
  EXPECT_THROW(FruitIdentifier::Train(short_column, Taxonomy{}, ImagenetPrior{}), InvalidArgumentError);
  TrainingSet empty_label = OneDomain(b);
  empty_label.labels[4] = "";
  EXPECT_THROW(FruitIdentifier::Train(empty_label, Taxonomy{}, ImagenetPrior{}), InvalidArgumentError);
  TrainingSet infinite = OneDomain(b);
  infinite.features[3] = INFINITY;
  EXPECT_THROW(FruitIdentifier::Train(infinite, Taxonomy{}, ImagenetPrior{}), InvalidArgumentError);
  IdentifierOptions holdout_one;
  holdout_one.holdout_every = 1;
  EXPECT_THROW(FruitIdentifier::Train(OneDomain(b), Taxonomy{}, ImagenetPrior{}, holdout_one), InvalidArgumentError);
  ImagenetPrior wrong;
  wrong.head = Eigen::MatrixXf::Zero(3, 1000);
  EXPECT_THROW(FruitIdentifier::Train(OneDomain(b), Taxonomy{}, wrong), InvalidArgumentError);
}

TEST(IdentifierTrainTest, SmallClassesAndNoHoldout) {
  // 3 photos per class: 3/10 rounds to none held out, and per-class quantiles fall back to
  // the pooled one; with holdout_every = 0 calibration uses the fit photos.
  const auto b = MakeBlobs(4, 3, 3, 3.0, 1.0, 6);
  const FruitIdentifier a = FruitIdentifier::Train(OneDomain(b), Taxonomy{}, ImagenetPrior{});
  EXPECT_EQ(a.metadata().at("calibration_photos"), 0);
  const double t = a.detector().distance_threshold(0);
  for (int c = 1; c < 4; ++c) EXPECT_EQ(a.detector().distance_threshold(c), t);
  IdentifierOptions no_holdout;
  no_holdout.holdout_every = 0;
  const FruitIdentifier c = FruitIdentifier::Train(OneDomain(b), Taxonomy{}, ImagenetPrior{}, no_holdout);
  EXPECT_EQ(c.metadata().at("fit_rows"), 12);
  EXPECT_EQ(c.metadata().at("calibration_photos"), 12);
}

TEST(TaxonomyTest, ParsesTheBuiltInAndRejectsBadLines) {
  const Taxonomy& t = Taxonomy::Builtin();
  EXPECT_EQ(t.SpeciesOf("Apple Granny Smith"), "Apple");
  EXPECT_EQ(t.ImagenetClassOf("Apple Granny Smith"), 948);
  EXPECT_EQ(t.SpeciesOf("Nectarine Flat"), "Peach");
  EXPECT_EQ(t.SpeciesOf("Potato Sweet"), "Sweet potato");
  EXPECT_EQ(t.ImagenetClassOf("Kiwi"), -1);
  EXPECT_EQ(t.SpeciesOf("Dragon fruit"), "Dragon fruit");  // not listed: its own species
  EXPECT_THROW(Taxonomy::Parse("a\tb\n", "t.tsv"), InvalidArgumentError);
  EXPECT_THROW(Taxonomy::Parse("a\tb\t1000\n", "t.tsv"), InvalidArgumentError);
  EXPECT_THROW(Taxonomy::Parse("a\tb\t-\na\tc\t-\n", "t.tsv"), InvalidArgumentError);
  try {
    Taxonomy::Parse("# comment\n\na\t\t-\n", "t.tsv");
    FAIL();
  } catch (const InvalidArgumentError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("t.tsv:3: ", 0), 0u) << e.what();
  }
}

}  // namespace
}  // namespace fruitpipe::classify
