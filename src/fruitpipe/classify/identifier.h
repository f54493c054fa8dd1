// The fruit identifier: standardization + softmax regression over PCA features, plus the
// unknown-fruit rule (docs/formats/classifier.md). Trained on the Training split only:
// a deterministic share of each class's rows is held out to calibrate the unknown rule.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <Eigen/Dense>
#include <nlohmann/json.hpp>

#include "fruitpipe/classify/logistic_regression.h"
#include "fruitpipe/classify/unknown_detector.h"

namespace fruitpipe::classify {

struct ScoredLabel {
  std::string label;
  double probability = 0.0;
};

struct Prediction {
  std::string label;        // the most probable class (even when unknown is set)
  double confidence = 0.0;  // its probability
  bool unknown = false;
  std::string unknown_reason;  // "", "far_from_class", "low_confidence" or both, comma-separated
  double distance = 0.0;       // to the predicted class's centroid (1 ≈ a typical member)
  double distance_threshold = 0.0;
  std::vector<ScoredLabel> top;  // up to 5, most probable first
};

struct IdentifierOptions {
  SoftmaxOptions regression;
  UnknownDetectorOptions unknown;
  // Row i of a class (in input order) calibrates instead of training when
  // i % holdout_every == holdout_every - 1; 0 trains on every row and calibrates on them.
  int holdout_every = 10;
};

class FruitIdentifier {
 public:
  static constexpr const char* kJsonFile = "classifier.json";
  static constexpr const char* kWeightsFile = "classifier.weights";

  // rows × dim features (row-major, e.g. PcaModel::TransformBatch output) and one label per
  // row. Classes are the distinct labels sorted bytewise; at least 2 are needed.
  static FruitIdentifier Train(const double* features, int rows, int dim, const std::vector<std::string>& labels,
                               const IdentifierOptions& options = {});

  // dim() values; throws InvalidArgumentError on a non-finite value.
  Prediction Predict(const double* features) const;

  int dim() const { return static_cast<int>(mean_.size()); }
  const std::vector<std::string>& classes() const { return classes_; }
  const UnknownDetector& detector() const { return detector_; }
  // Training figures (rows, accuracy, optimiser outcome); callers add their own entries
  // (pca_model_sha256, created_at) before Serialize.
  nlohmann::json& metadata() { return metadata_; }
  const nlohmann::json& metadata() const { return metadata_; }

  // File name → bytes: kJsonFile and kWeightsFile. Storage-agnostic, so a model directory can
  // live on disk or in S3; other files in the map are ignored by Deserialize.
  std::map<std::string, std::string> Serialize() const;
  // Throws CorruptionError naming `source` (the model directory) on any mismatch.
  static FruitIdentifier Deserialize(const std::map<std::string, std::string>& files, const std::string& source = {});

 private:
  std::vector<std::string> classes_;
  Eigen::VectorXd mean_, std_;  // standardization, dim each
  SoftmaxModel model_;
  UnknownDetector detector_;
  IdentifierOptions options_;
  nlohmann::json metadata_ = nlohmann::json::object();
};

}  // namespace fruitpipe::classify
