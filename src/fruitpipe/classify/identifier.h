// The fruit identifier (docs/formats/classifier.md): standardization + weighted softmax
// regression over the backbone's pooled features, with
//   - a "no known fruit" class learnt from negative photos (labels ignored),
//   - the backbone's own ImageNet head as a prior for the produce classes it knows,
//   - evidence pooled over several views of a photo (the whole image, its mirror, a zoom),
//   - species answers from a Taxonomy,
//   - unknown-fruit thresholds chosen on held-out photos (whole photos, all their views).
// Deterministic: the same TrainingSet gives the same bytes, whatever the thread count.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <Eigen/Dense>
#include <nlohmann/json.hpp>

#include "fruitpipe/classify/logistic_regression.h"
#include "fruitpipe/classify/taxonomy.h"
#include "fruitpipe/classify/unknown_detector.h"

namespace fruitpipe::classify {

struct ScoredLabel {
  std::string label;
  double probability = 0.0;
};

struct Prediction {
  std::string label;        // the most probable known class (even when unknown is set)
  double confidence = 0.0;  // its probability
  std::string species;      // the most probable species (summed over its classes)
  double species_confidence = 0.0;
  bool variety_uncertain = false;  // the species is sure, the class within it is not
  bool unknown = false;
  // "", or comma-separated codes: "far_from_class", "low_confidence", "no_known_fruit".
  std::string unknown_reason;
  double distance = 0.0;  // to the predicted class's centroid (1 ≈ a typical member)
  double distance_threshold = 0.0;
  double no_fruit_probability = 0.0;  // of the negative class (0 without negatives)
  std::vector<ScoredLabel> top;       // up to 5 known classes, most probable first
};

// Rows to train on: raw features of photos and of their augmented views.
struct TrainingSet {
  int dim = 0;
  std::vector<float> features;       // rows × dim
  std::vector<std::string> labels;   // a negative row's label is kept but not learnt
  std::vector<int> domain;           // the dataset a row comes from; domains weigh the same in total
  std::vector<char> negative;        // 1: a photo of no known class
  std::vector<int> photo;            // rows of one photo share the number: held out together
  std::vector<int> view;             // 0 the whole image; see image/augment.h for the others

  int rows() const { return static_cast<int>(labels.size()); }
  void Add(const float* row, const std::string& label, int row_domain, bool is_negative, int row_photo, int row_view);
};

// The backbone's ImageNet classifier (a linear map of the same features), used as a prior
// over the classes the taxonomy maps to an ImageNet class.
struct ImagenetPrior {
  Eigen::MatrixXf head;  // (dim + 1) × 1000, the last row the biases; empty: no prior
  bool empty() const { return head.size() == 0; }
};

struct IdentifierOptions {
  SoftmaxOptions regression;
  UnknownDetectorOptions unknown;
  // The last 1/holdout_every of each (domain, class)'s photos in input order calibrate
  // instead of training; 0 trains on every photo and calibrates on them (optimistic).
  int holdout_every = 10;
  // Each class's rows weigh 1 / count^class_balance within their domain (0: rows weigh the same).
  double class_balance = 1.0;
  // log p(class) += prior_weight × log q(class), q the ImageNet prior (0: no prior).
  double prior_weight = 0.25;
  // Views of a photo pooled at prediction (the first of image/augment.h's view order).
  int predict_views = 3;
  // min_confidence is the highest value flagging at most this share of each domain's
  // held-out known photos (with the other rules), capped at unknown.max_min_confidence.
  double max_known_flagged = 0.08;
};

class FruitIdentifier {
 public:
  static constexpr const char* kJsonFile = "classifier.json";
  static constexpr const char* kWeightsFile = "classifier.weights";
  static constexpr const char* kPriorFile = "imagenet_head.weights";
  static constexpr const char* kTaxonomyFile = "taxonomy.tsv";

  // Classes are the distinct labels of the non-negative rows, sorted bytewise; at least 2.
  static FruitIdentifier Train(const TrainingSet& set, const Taxonomy& taxonomy, const ImagenetPrior& prior,
                               const IdentifierOptions& options = {});

  // `views` rows of dim() raw features, the views of one photo in image/augment.h's order
  // (1 ≤ views). Throws InvalidArgumentError on a non-finite value.
  Prediction Predict(const float* features, int views) const;

  int dim() const { return static_cast<int>(mean_.size()); }
  int predict_views() const { return options_.predict_views; }
  const std::vector<std::string>& classes() const { return classes_; }
  const std::vector<std::string>& species() const { return species_; }  // per class
  const UnknownDetector& detector() const { return detector_; }
  bool has_negative_class() const { return has_negative_; }
  bool has_prior() const { return !prior_.empty(); }
  const Taxonomy& taxonomy() const { return taxonomy_; }
  // Training figures; callers add their own entries before Serialize.
  nlohmann::json& metadata() { return metadata_; }
  const nlohmann::json& metadata() const { return metadata_; }

  // File name → bytes (kJsonFile, kWeightsFile, kTaxonomyFile, and kPriorFile with a prior).
  // Storage-agnostic; other files in the map are ignored by Deserialize.
  std::map<std::string, std::string> Serialize() const;
  // Throws CorruptionError naming `source` (the model directory) on any mismatch.
  static FruitIdentifier Deserialize(const std::map<std::string, std::string>& files, const std::string& source = {});

 private:
  // Known-class probabilities (classes_.size()) and the negative class's, one view.
  void ViewProbabilities(const float* features, Eigen::VectorXd* known, double* negative) const;
  // ImageNet prior over the known classes, one view.
  void PriorDistribution(const float* features, Eigen::VectorXd* q) const;
  Prediction Decide(const Eigen::VectorXd& fused, double no_fruit, const Eigen::VectorXd& z_mean) const;
  Prediction PredictImpl(const float* features, int views) const;

  std::vector<std::string> classes_;
  std::vector<std::string> species_;
  std::vector<int> imagenet_class_;  // per class, -1 when unmapped
  bool has_negative_ = false;        // the softmax has one more column: no known fruit
  Eigen::VectorXd mean_, std_;       // standardization, dim each
  SoftmaxModel model_;
  ImagenetPrior prior_;
  UnknownDetector detector_;
  Taxonomy taxonomy_;
  IdentifierOptions options_;
  nlohmann::json metadata_ = nlohmann::json::object();
};

}  // namespace fruitpipe::classify
