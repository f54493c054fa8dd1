#include "fruitpipe/classify/identifier.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "fruitpipe/common/error.h"
#include "fruitpipe/common/hash.h"
#include "fruitpipe/pca/binary_io.h"

namespace fruitpipe::classify {
namespace {

constexpr char kFormat[] = "fruitpipe-classifier";
constexpr int kVersion = 1;
constexpr char kWeightsMagic[] = "FPCLSWTS";
constexpr std::uint32_t kWeightsVersion = 1;
constexpr std::uint32_t kMaxDim = 1u << 20;
constexpr std::uint32_t kMaxClasses = 1u << 20;
constexpr int kTopLabels = 5;

std::vector<double> ToVector(const Eigen::VectorXd& v) { return {v.data(), v.data() + v.size()}; }

// Class index order of probabilities: most probable first, ties by class index.
std::vector<int> RankClasses(const Eigen::VectorXd& p, int count) {
  std::vector<int> order(p.size());
  std::iota(order.begin(), order.end(), 0);
  count = std::min<int>(count, static_cast<int>(order.size()));
  std::partial_sort(order.begin(), order.begin() + count, order.end(),
                    [&p](int a, int b) { return p(a) > p(b) || (p(a) == p(b) && a < b); });
  order.resize(count);
  return order;
}

nlohmann::json OptionsJson(const IdentifierOptions& o) {
  const LbfgsOptions& l = o.regression.lbfgs;
  const UnknownDetectorOptions& u = o.unknown;
  return {
      {"holdout_every", o.holdout_every},
      {"l2", o.regression.l2},
      {"single_precision", o.regression.single_precision},
      {"lbfgs", {{"history", l.history}, {"max_iterations", l.max_iterations},
                 {"gradient_tolerance", l.gradient_tolerance}, {"value_tolerance", l.value_tolerance}}},
      {"unknown", {{"distance_quantile", u.distance_quantile}, {"distance_margin", u.distance_margin},
                   {"min_class_rows", u.min_class_rows}, {"confidence_quantile", u.confidence_quantile},
                   {"max_min_confidence", u.max_min_confidence}}},
  };
}

IdentifierOptions OptionsFromJson(const nlohmann::json& j) {
  IdentifierOptions o;
  o.holdout_every = j.at("holdout_every").get<int>();
  o.regression.l2 = j.at("l2").get<double>();
  o.regression.single_precision = j.at("single_precision").get<bool>();
  const nlohmann::json& l = j.at("lbfgs");
  o.regression.lbfgs.history = l.at("history").get<int>();
  o.regression.lbfgs.max_iterations = l.at("max_iterations").get<int>();
  o.regression.lbfgs.gradient_tolerance = l.at("gradient_tolerance").get<double>();
  o.regression.lbfgs.value_tolerance = l.at("value_tolerance").get<double>();
  const nlohmann::json& u = j.at("unknown");
  o.unknown.distance_quantile = u.at("distance_quantile").get<double>();
  o.unknown.distance_margin = u.at("distance_margin").get<double>();
  o.unknown.min_class_rows = u.at("min_class_rows").get<int>();
  o.unknown.confidence_quantile = u.at("confidence_quantile").get<double>();
  o.unknown.max_min_confidence = u.at("max_min_confidence").get<double>();
  return o;
}

}  // namespace

FruitIdentifier FruitIdentifier::Train(const double* features, int rows, int dim, const std::vector<std::string>& labels,
                                       const IdentifierOptions& options) {
  if (rows < 1 || dim < 1) {
    throw InvalidArgumentError("identifier training: empty feature matrix (" + std::to_string(rows) + " × " +
                               std::to_string(dim) + ")");
  }
  if (labels.size() != static_cast<std::size_t>(rows)) {
    throw InvalidArgumentError("identifier training: " + std::to_string(rows) + " rows but " +
                               std::to_string(labels.size()) + " labels");
  }
  if (options.holdout_every < 0 || options.holdout_every == 1) {
    throw InvalidArgumentError("identifier training: holdout_every=" + std::to_string(options.holdout_every) +
                               " must be 0 or at least 2");
  }
  const Eigen::Map<const RowMatrix> x(features, rows, dim);
  if (!x.allFinite()) throw InvalidArgumentError("identifier training: features contain a non-finite value");

  FruitIdentifier id;
  id.options_ = options;
  id.classes_ = labels;
  std::sort(id.classes_.begin(), id.classes_.end());
  id.classes_.erase(std::unique(id.classes_.begin(), id.classes_.end()), id.classes_.end());
  if (id.classes_.front().empty()) throw InvalidArgumentError("identifier training: a row has an empty label");
  if (id.classes_.size() < 2) {
    throw InvalidArgumentError("identifier training: needs at least 2 classes, got " +
                               std::to_string(id.classes_.size()));
  }
  const int classes = static_cast<int>(id.classes_.size());

  // Deterministic hold-out: every holdout_every-th row of each class, in input order.
  std::vector<int> y(rows), seen(classes, 0), fit_rows, calibration_rows;
  for (int i = 0; i < rows; ++i) {
    y[i] = static_cast<int>(std::lower_bound(id.classes_.begin(), id.classes_.end(), labels[i]) - id.classes_.begin());
    const int k = seen[y[i]]++;
    const bool hold = options.holdout_every > 0 && k % options.holdout_every == options.holdout_every - 1;
    (hold ? calibration_rows : fit_rows).push_back(i);
  }

  // Standardization from the fit rows; a constant feature keeps scale 1.
  id.mean_ = Eigen::VectorXd::Zero(dim);
  for (int i : fit_rows) id.mean_ += x.row(i).transpose();
  id.mean_ /= static_cast<double>(fit_rows.size());
  id.std_ = Eigen::VectorXd::Zero(dim);
  for (int i : fit_rows) id.std_ += (x.row(i).transpose() - id.mean_).array().square().matrix();
  id.std_ = (id.std_ / static_cast<double>(fit_rows.size())).cwiseSqrt();
  for (int j = 0; j < dim; ++j) {
    if (!(id.std_(j) > 1e-12 * std::max(1.0, std::abs(id.mean_(j))))) id.std_(j) = 1.0;
  }
  const auto standardize = [&](const std::vector<int>& which, RowMatrix* z, std::vector<int>* zy) {
    z->resize(static_cast<Eigen::Index>(which.size()), dim);
    zy->resize(which.size());
    for (std::size_t r = 0; r < which.size(); ++r) {
      z->row(r) = (x.row(which[r]) - id.mean_.transpose()).cwiseQuotient(id.std_.transpose());
      (*zy)[r] = y[which[r]];
    }
  };
  RowMatrix z_fit;
  std::vector<int> y_fit;
  standardize(fit_rows, &z_fit, &y_fit);

  LbfgsResult fit;
  id.model_ = TrainSoftmax(z_fit, y_fit, classes, options.regression, &fit);
  id.detector_ = FitUnknownDetector(z_fit, y_fit, classes, options.unknown);

  // Fit-row accuracy in one GEMM.
  RowMatrix logits = z_fit * id.model_.weights.topRows(dim);
  logits.rowwise() += id.model_.weights.row(dim);
  int fit_correct = 0;
  for (Eigen::Index r = 0; r < logits.rows(); ++r) {
    Eigen::Index best = 0;
    logits.row(r).maxCoeff(&best);
    fit_correct += best == y_fit[r];
  }

  // Calibrate min_confidence on held-out rows (the fit rows when there are none: optimistic).
  RowMatrix z_cal;
  std::vector<int> y_cal;
  if (calibration_rows.empty()) {
    z_cal = z_fit;
    y_cal = y_fit;
  } else {
    standardize(calibration_rows, &z_cal, &y_cal);
  }
  std::vector<double> top(z_cal.rows());
  std::vector<int> predicted(z_cal.rows());
  Eigen::VectorXd p(classes);
  int cal_correct = 0;
  for (Eigen::Index r = 0; r < z_cal.rows(); ++r) {
    id.model_.Probabilities(z_cal.row(r).data(), p.data());
    Eigen::Index best = 0;
    top[r] = p.maxCoeff(&best);
    predicted[r] = static_cast<int>(best);
    cal_correct += best == y_cal[r];
  }
  CalibrateConfidence(top, options.unknown, &id.detector_);
  int cal_flagged = 0;
  for (Eigen::Index r = 0; r < z_cal.rows(); ++r) {
    const double d = id.detector_.Distance(z_cal.row(r).data(), predicted[r]);
    cal_flagged += !id.detector_.Check(d, predicted[r], top[r]).empty();
  }

  id.metadata_ = {
      {"training_rows", rows},
      {"fit_rows", fit_rows.size()},
      {"calibration_rows", calibration_rows.size()},
      {"k", dim},
      {"classes", classes},
      {"train_accuracy", static_cast<double>(fit_correct) / static_cast<double>(fit_rows.size())},
      {"calibration_accuracy", static_cast<double>(cal_correct) / static_cast<double>(z_cal.rows())},
      {"calibration_unknown_rate", static_cast<double>(cal_flagged) / static_cast<double>(z_cal.rows())},
      {"optimizer",
       {{"iterations", fit.iterations}, {"evaluations", fit.evaluations}, {"converged", fit.converged},
        {"stop_reason", fit.stop_reason}, {"loss", fit.value}, {"gradient_max", fit.gradient_max}}},
  };
  return id;
}

Prediction FruitIdentifier::Predict(const double* features) const {
  const Eigen::VectorXd z = (Eigen::Map<const Eigen::VectorXd>(features, dim()) - mean_).cwiseQuotient(std_);
  if (!z.allFinite()) throw InvalidArgumentError("identifier: features contain a non-finite value");
  Eigen::VectorXd p(classes_.size());
  model_.Probabilities(z.data(), p.data());
  const std::vector<int> order = RankClasses(p, kTopLabels);
  Prediction out;
  const int best = order.front();
  out.label = classes_[best];
  out.confidence = p(best);
  out.distance = detector_.Distance(z.data(), best);
  out.distance_threshold = detector_.distance_threshold(best);
  out.unknown_reason = detector_.Check(out.distance, best, out.confidence);
  out.unknown = !out.unknown_reason.empty();
  for (int c : order) out.top.push_back({classes_[c], p(c)});
  return out;
}

// classifier.weights: magic, u32 version, u32 dim, u32 classes, f64 weights[classes][dim+1]
// (each class's dim weights then its bias), f64 centroids[classes][dim], f64
// within_variance[dim], sha256 of everything before it.
std::map<std::string, std::string> FruitIdentifier::Serialize() const {
  const int classes = static_cast<int>(classes_.size());
  pca::RecordWriter w(std::string_view(kWeightsMagic, pca::kMagicSize));
  w.U32(kWeightsVersion);
  w.U32(static_cast<std::uint32_t>(dim()));
  w.U32(static_cast<std::uint32_t>(classes));
  w.F64s(model_.weights.data(), model_.weights.size());  // column-major: one class after another
  const RowMatrix centroids = detector_.centroids;
  w.F64s(centroids.data(), centroids.size());
  w.F64s(detector_.within_variance.data(), dim());
  std::string weights = w.Finish();

  const nlohmann::json j = {
      {"format", kFormat},
      {"version", kVersion},
      {"dim", dim()},
      {"classes", classes_},
      {"standardization", {{"mean", ToVector(mean_)}, {"std", ToVector(std_)}}},
      {"unknown",
       {{"rule", "distance to predicted class centroid > its threshold, or top probability < min_confidence"},
        {"min_confidence", detector_.min_confidence},
        {"distance_thresholds", ToVector(detector_.distance_threshold)}}},
      {"weights", {{"file", kWeightsFile}, {"sha256", Sha256Hex(weights)}}},
      {"training_options", OptionsJson(options_)},
      {"metadata", metadata_},
  };
  return {{kJsonFile, j.dump(2) + "\n"}, {kWeightsFile, std::move(weights)}};
}

FruitIdentifier FruitIdentifier::Deserialize(const std::map<std::string, std::string>& files, const std::string& source) {
  const std::string where = source.empty() ? std::string("classifier") : source;
  const auto fail = [&where](const std::string& cause) -> void { throw CorruptionError(where + ": " + cause); };
  const auto json_it = files.find(kJsonFile);
  const auto weights_it = files.find(kWeightsFile);
  if (json_it == files.end()) throw NotFoundError(where + ": " + kJsonFile + " missing");
  if (weights_it == files.end()) throw NotFoundError(where + ": " + kWeightsFile + " missing");

  FruitIdentifier id;
  std::vector<double> thresholds;
  std::string weights_sha;
  try {
    const nlohmann::json j = nlohmann::json::parse(json_it->second);
    if (j.at("format").get<std::string>() != kFormat) fail(std::string(kJsonFile) + ": not a fruitpipe classifier");
    if (j.at("version").get<int>() != kVersion) fail(std::string(kJsonFile) + ": unsupported version");
    const int dim = j.at("dim").get<int>();
    if (dim < 1 || static_cast<std::uint32_t>(dim) > kMaxDim) fail(std::string(kJsonFile) + ": dim out of range");
    id.classes_ = j.at("classes").get<std::vector<std::string>>();
    if (id.classes_.size() < 2 || id.classes_.size() > kMaxClasses || id.classes_.front().empty() ||
        std::adjacent_find(id.classes_.begin(), id.classes_.end(), std::greater_equal<>()) != id.classes_.end()) {
      fail(std::string(kJsonFile) + ": classes must be at least 2 distinct, sorted, non-empty labels");
    }
    const auto mean = j.at("standardization").at("mean").get<std::vector<double>>();
    const auto scale = j.at("standardization").at("std").get<std::vector<double>>();
    if (mean.size() != static_cast<std::size_t>(dim) || scale.size() != static_cast<std::size_t>(dim)) {
      fail(std::string(kJsonFile) + ": standardization size differs from dim");
    }
    id.mean_ = Eigen::Map<const Eigen::VectorXd>(mean.data(), dim);
    id.std_ = Eigen::Map<const Eigen::VectorXd>(scale.data(), dim);
    if (!id.mean_.allFinite() || !id.std_.allFinite() || !(id.std_.minCoeff() > 0.0)) {
      fail(std::string(kJsonFile) + ": invalid standardization values");
    }
    const nlohmann::json& unknown = j.at("unknown");
    id.detector_.min_confidence = unknown.at("min_confidence").get<double>();
    thresholds = unknown.at("distance_thresholds").get<std::vector<double>>();
    if (thresholds.size() != id.classes_.size() ||
        std::any_of(thresholds.begin(), thresholds.end(), [](double t) { return !std::isfinite(t) || t < 0; }) ||
        !(id.detector_.min_confidence >= 0.0 && id.detector_.min_confidence <= 1.0)) {
      fail(std::string(kJsonFile) + ": invalid unknown-detection thresholds");
    }
    if (j.at("weights").at("file").get<std::string>() != kWeightsFile) fail(std::string(kJsonFile) + ": unexpected weights file");
    weights_sha = j.at("weights").at("sha256").get<std::string>();
    id.options_ = OptionsFromJson(j.at("training_options"));
    id.metadata_ = j.at("metadata");
    if (!id.metadata_.is_object()) fail(std::string(kJsonFile) + ": metadata is not an object");
  } catch (const nlohmann::json::exception& e) {
    fail(std::string(kJsonFile) + ": " + e.what());
  }
  id.detector_.distance_threshold = Eigen::Map<const Eigen::VectorXd>(thresholds.data(), thresholds.size());

  const std::string& bytes = weights_it->second;
  if (Sha256Hex(bytes) != weights_sha) fail(std::string(kWeightsFile) + ": sha256 differs from " + kJsonFile);
  pca::RecordReader r(bytes, std::string_view(kWeightsMagic, pca::kMagicSize), kWeightsFile, where);
  if (r.U32() != kWeightsVersion) r.Fail("unsupported version");
  const std::uint32_t dim = r.U32();
  const std::uint32_t classes = r.U32();
  if (dim != static_cast<std::uint32_t>(id.dim()) || classes != id.classes_.size()) {
    r.Fail("shape " + std::to_string(dim) + " × " + std::to_string(classes) + " differs from " + kJsonFile);
  }
  const std::uint64_t expected = 8 * (static_cast<std::uint64_t>(dim + 1) * classes +
                                      static_cast<std::uint64_t>(classes) * dim + dim);
  if (r.remaining() != expected) r.Fail("size mismatch");
  id.model_.weights.resize(dim + 1, classes);
  r.F64s(id.model_.weights.data(), id.model_.weights.size());
  RowMatrix centroids(classes, dim);
  r.F64s(centroids.data(), centroids.size());
  id.detector_.centroids = centroids;
  id.detector_.within_variance.resize(dim);
  r.F64s(id.detector_.within_variance.data(), dim);
  r.ExpectEnd();
  if (!(id.detector_.within_variance.minCoeff() > 0.0)) r.Fail("non-positive variance");
  return id;
}

}  // namespace fruitpipe::classify
