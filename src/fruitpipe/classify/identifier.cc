#include "fruitpipe/classify/identifier.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

#include "fruitpipe/common/error.h"
#include "fruitpipe/common/hash.h"
#include "fruitpipe/pca/binary_io.h"

namespace fruitpipe::classify {
namespace {

constexpr char kFormat[] = "fruitpipe-classifier";
constexpr int kVersion = 2;
constexpr char kWeightsMagic[] = "FPCLSWTS";
constexpr std::uint32_t kWeightsVersion = 2;
constexpr char kPriorMagic[] = "FPIMGNET";
constexpr std::uint32_t kPriorVersion = 1;
constexpr int kImagenetClasses = 1000;
constexpr std::uint32_t kMaxDim = 1u << 20;
constexpr std::uint32_t kMaxClasses = 1u << 20;
constexpr int kTopLabels = 5;
constexpr double kTiny = 1e-12;  // floor under a probability before its logarithm

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
      {"class_balance", o.class_balance},
      {"prior_weight", o.prior_weight},
      {"predict_views", o.predict_views},
      {"max_known_flagged", o.max_known_flagged},
      {"lbfgs", {{"history", l.history}, {"max_iterations", l.max_iterations},
                 {"gradient_tolerance", l.gradient_tolerance}, {"value_tolerance", l.value_tolerance}}},
      {"unknown", {{"distance_quantile", u.distance_quantile}, {"distance_margin", u.distance_margin},
                   {"min_class_rows", u.min_class_rows}, {"max_min_confidence", u.max_min_confidence}}},
  };
}

IdentifierOptions OptionsFromJson(const nlohmann::json& j) {
  IdentifierOptions o;
  o.holdout_every = j.at("holdout_every").get<int>();
  o.regression.l2 = j.at("l2").get<double>();
  o.regression.single_precision = j.at("single_precision").get<bool>();
  o.class_balance = j.at("class_balance").get<double>();
  o.prior_weight = j.at("prior_weight").get<double>();
  o.predict_views = j.at("predict_views").get<int>();
  o.max_known_flagged = j.at("max_known_flagged").get<double>();
  const nlohmann::json& l = j.at("lbfgs");
  o.regression.lbfgs.history = l.at("history").get<int>();
  o.regression.lbfgs.max_iterations = l.at("max_iterations").get<int>();
  o.regression.lbfgs.gradient_tolerance = l.at("gradient_tolerance").get<double>();
  o.regression.lbfgs.value_tolerance = l.at("value_tolerance").get<double>();
  const nlohmann::json& u = j.at("unknown");
  o.unknown.distance_quantile = u.at("distance_quantile").get<double>();
  o.unknown.distance_margin = u.at("distance_margin").get<double>();
  o.unknown.min_class_rows = u.at("min_class_rows").get<int>();
  o.unknown.max_min_confidence = u.at("max_min_confidence").get<double>();
  return o;
}

std::string JoinReason(const std::string& a, const char* b) { return a.empty() ? b : a + "," + b; }

}  // namespace

void TrainingSet::Add(const float* row, const std::string& label, int row_domain, bool is_negative, int row_photo,
                      int row_view) {
  features.insert(features.end(), row, row + dim);
  labels.push_back(label);
  domain.push_back(row_domain);
  negative.push_back(is_negative ? 1 : 0);
  photo.push_back(row_photo);
  view.push_back(row_view);
}

FruitIdentifier FruitIdentifier::Train(const TrainingSet& set, const Taxonomy& taxonomy, const ImagenetPrior& prior,
                                       const IdentifierOptions& options) {
  const int rows = set.rows();
  const int dim = set.dim;
  if (rows < 1 || dim < 1) {
    throw InvalidArgumentError("identifier training: empty feature matrix (" + std::to_string(rows) + " × " +
                               std::to_string(dim) + ")");
  }
  const auto n = static_cast<std::size_t>(rows);
  if (set.features.size() != n * static_cast<std::size_t>(dim) || set.domain.size() != n || set.negative.size() != n ||
      set.photo.size() != n || set.view.size() != n) {
    throw InvalidArgumentError("identifier training: the training set's columns differ in length");
  }
  if (options.holdout_every < 0 || options.holdout_every == 1) {
    throw InvalidArgumentError("identifier training: holdout_every=" + std::to_string(options.holdout_every) +
                               " must be 0 or at least 2");
  }
  if (options.predict_views < 1) throw InvalidArgumentError("identifier training: predict_views must be at least 1");
  if (!prior.empty() && (prior.head.rows() != dim + 1 || prior.head.cols() != kImagenetClasses)) {
    throw InvalidArgumentError("identifier training: the ImageNet head is " + std::to_string(prior.head.rows()) + " × " +
                               std::to_string(prior.head.cols()) + ", expected " + std::to_string(dim + 1) + " × 1000");
  }
  const Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> x(set.features.data(),
                                                                                                   rows, dim);
  if (!x.allFinite()) throw InvalidArgumentError("identifier training: features contain a non-finite value");

  FruitIdentifier id;
  id.options_ = options;
  id.taxonomy_ = taxonomy;
  for (int i = 0; i < rows; ++i) {
    if (!set.negative[i]) id.classes_.push_back(set.labels[i]);
  }
  std::sort(id.classes_.begin(), id.classes_.end());
  id.classes_.erase(std::unique(id.classes_.begin(), id.classes_.end()), id.classes_.end());
  if (!id.classes_.empty() && id.classes_.front().empty()) {
    throw InvalidArgumentError("identifier training: a row has an empty label");
  }
  if (id.classes_.size() < 2) {
    throw InvalidArgumentError("identifier training: needs at least 2 classes, got " +
                               std::to_string(id.classes_.size()));
  }
  const int classes = static_cast<int>(id.classes_.size());
  id.has_negative_ = std::any_of(set.negative.begin(), set.negative.end(), [](char c) { return c != 0; });
  const int columns = classes + (id.has_negative_ ? 1 : 0);
  for (const auto& c : id.classes_) {
    id.species_.push_back(taxonomy.SpeciesOf(c));
    id.imagenet_class_.push_back(prior.empty() ? -1 : taxonomy.ImagenetClassOf(c));
  }
  if (options.prior_weight > 0) id.prior_ = prior;

  // Deterministic hold-out by photo: the last 1/holdout_every of each (domain, class)'s photos
  // in input order (a run lists a folder's files in name order), one block, so that
  // consecutive shots of the same fruit do not land on both sides.
  std::vector<int> y(n);
  std::map<std::pair<int, std::string>, int> photos_of, seen;
  std::map<int, std::pair<int, std::string>> group_of;  // photo -> (domain, class)
  for (int i = 0; i < rows; ++i) {
    y[i] = set.negative[i] ? classes
                           : static_cast<int>(std::lower_bound(id.classes_.begin(), id.classes_.end(), set.labels[i]) -
                                              id.classes_.begin());
    const std::pair<int, std::string> group{set.domain[i], set.negative[i] ? std::string() : set.labels[i]};
    if (group_of.emplace(set.photo[i], group).second) ++photos_of[group];
  }
  std::map<int, bool> held_photo;
  for (int i = 0; i < rows; ++i) {
    if (held_photo.count(set.photo[i])) continue;
    const auto& group = group_of[set.photo[i]];
    const int k = seen[group]++;
    const int count = photos_of[group];
    held_photo[set.photo[i]] = options.holdout_every > 0 && k >= count - count / options.holdout_every;
  }
  std::vector<int> fit_rows;
  for (int i = 0; i < rows; ++i) {
    if (!held_photo[set.photo[i]]) fit_rows.push_back(i);
  }
  if (fit_rows.empty()) throw InvalidArgumentError("identifier training: every photo was held out");

  // Row weights: within a domain a class weighs count^(1 - class_balance); every domain weighs
  // the same in total, so a few real photos count as much as a large catalogue.
  std::map<std::pair<int, int>, double> class_rows;
  std::set<int> domains;
  for (int i : fit_rows) {
    class_rows[{set.domain[i], y[i]}] += 1.0;
    domains.insert(set.domain[i]);
  }
  std::map<int, double> domain_mass;
  for (const auto& [key, count] : class_rows) domain_mass[key.first] += std::pow(count, 1.0 - options.class_balance);
  std::vector<double> weights;
  weights.reserve(fit_rows.size());
  const double per_domain = static_cast<double>(fit_rows.size()) / static_cast<double>(domains.size());
  for (int i : fit_rows) {
    const double count = class_rows[{set.domain[i], y[i]}];
    weights.push_back(per_domain * std::pow(count, -options.class_balance) / domain_mass[set.domain[i]]);
  }

  // Standardization from the fit rows; a constant feature keeps scale 1.
  id.mean_ = Eigen::VectorXd::Zero(dim);
  for (int i : fit_rows) id.mean_ += x.row(i).transpose().cast<double>();
  id.mean_ /= static_cast<double>(fit_rows.size());
  id.std_ = Eigen::VectorXd::Zero(dim);
  for (int i : fit_rows) id.std_ += (x.row(i).transpose().cast<double>() - id.mean_).array().square().matrix();
  id.std_ = (id.std_ / static_cast<double>(fit_rows.size())).cwiseSqrt();
  for (int j = 0; j < dim; ++j) {
    if (!(id.std_(j) > 1e-12 * std::max(1.0, std::abs(id.mean_(j))))) id.std_(j) = 1.0;
  }
  RowMatrix z_fit(static_cast<Eigen::Index>(fit_rows.size()), dim);
  std::vector<int> y_fit(fit_rows.size());
  for (std::size_t r = 0; r < fit_rows.size(); ++r) {
    z_fit.row(static_cast<Eigen::Index>(r)) =
        (x.row(fit_rows[r]).cast<double>() - id.mean_.transpose()).cwiseQuotient(id.std_.transpose());
    y_fit[r] = y[fit_rows[r]];
  }

  LbfgsResult fit;
  id.model_ = TrainSoftmax(z_fit, y_fit, columns, options.regression, &fit, weights);

  // The distance rule knows the known classes only.
  std::vector<Eigen::Index> known_fit;
  for (std::size_t r = 0; r < y_fit.size(); ++r) {
    if (y_fit[r] < classes) known_fit.push_back(static_cast<Eigen::Index>(r));
  }
  const RowMatrix z_known = z_fit(known_fit, Eigen::all);
  std::vector<int> y_known;
  for (Eigen::Index r : known_fit) y_known.push_back(y_fit[static_cast<std::size_t>(r)]);
  id.detector_ = FitUnknownDetector(z_known, y_known, classes, options.unknown);

  RowMatrix logits = z_known * id.model_.weights.topRows(dim);
  logits.rowwise() += id.model_.weights.row(dim);
  int fit_correct = 0;
  for (Eigen::Index r = 0; r < logits.rows(); ++r) {
    Eigen::Index best = 0;
    logits.row(r).leftCols(classes).maxCoeff(&best);
    fit_correct += best == y_known[static_cast<std::size_t>(r)];
  }

  // Calibration: each held-out photo predicted from its views as Predict sees them (the
  // fit photos when nothing is held out: optimistic).
  std::map<int, std::vector<int>> photo_views;  // photo -> rows, by view
  for (int i = 0; i < rows; ++i) {
    if ((held_photo[set.photo[i]] || options.holdout_every == 0) && set.view[i] < options.predict_views) {
      photo_views[set.photo[i]].push_back(i);
    }
  }
  struct Held {
    int domain;
    bool negative;
    bool correct;
    bool flagged_by_others;  // distance or no-fruit rule
    double species_confidence;
  };
  std::vector<Held> held;
  std::vector<float> views;
  for (auto& [photo, members] : photo_views) {
    std::sort(members.begin(), members.end(), [&](int a, int b) { return set.view[a] < set.view[b]; });
    views.clear();
    for (int i : members) views.insert(views.end(), x.row(i).data(), x.row(i).data() + dim);
    const Prediction p = id.PredictImpl(views.data(), static_cast<int>(members.size()));  // min_confidence is 0
    const int first = members.front();
    held.push_back({set.domain[first], set.negative[first] != 0, !set.negative[first] && p.label == set.labels[first],
                    p.unknown, p.species_confidence});
  }
  // The highest threshold (≤ the cap) flagging at most max_known_flagged of every domain's
  // held-out known photos; candidates are the photos' own species confidences.
  std::vector<double> candidates = {options.unknown.max_min_confidence};
  for (const Held& h : held) {
    if (!h.negative && h.species_confidence < options.unknown.max_min_confidence) candidates.push_back(h.species_confidence);
  }
  std::sort(candidates.rbegin(), candidates.rend());
  const auto flagged_share = [&](double threshold, int domain, bool negative) {
    int total = 0, flagged = 0;
    for (const Held& h : held) {
      if (h.domain != domain || h.negative != negative) continue;
      ++total;
      flagged += h.flagged_by_others || h.species_confidence < threshold;
    }
    return total == 0 ? -1.0 : static_cast<double>(flagged) / total;
  };
  id.detector_.min_confidence = 0.0;
  for (double t : candidates) {
    bool ok = true;
    for (int d : domains) ok = ok && flagged_share(t, d, false) <= options.max_known_flagged;
    if (ok) {
      id.detector_.min_confidence = t;
      break;
    }
  }

  nlohmann::json per_domain_json = nlohmann::json::array();
  std::set<int> all_domains(set.domain.begin(), set.domain.end());
  for (int d : all_domains) {
    int photos = 0, correct = 0;
    for (const Held& h : held) {
      if (h.domain == d && !h.negative) {
        ++photos;
        correct += h.correct;
      }
    }
    nlohmann::json j = {{"domain", d}, {"known_photos", photos}};
    j["accuracy"] = photos == 0 ? nlohmann::json(nullptr) : nlohmann::json(static_cast<double>(correct) / photos);
    const double known_flagged = flagged_share(id.detector_.min_confidence, d, false);
    const double negative_flagged = flagged_share(id.detector_.min_confidence, d, true);
    j["known_flagged"] = known_flagged < 0 ? nlohmann::json(nullptr) : nlohmann::json(known_flagged);
    j["negative_flagged"] = negative_flagged < 0 ? nlohmann::json(nullptr) : nlohmann::json(negative_flagged);
    per_domain_json.push_back(j);
  }

  id.metadata_ = {
      {"training_rows", rows},
      {"fit_rows", fit_rows.size()},
      {"calibration_photos", held.size()},
      {"dim", dim},
      {"classes", classes},
      {"negative_class", id.has_negative_},
      {"imagenet_prior", !id.prior_.empty()},
      {"train_accuracy", static_cast<double>(fit_correct) / static_cast<double>(std::max<std::size_t>(1, known_fit.size()))},
      {"calibration", per_domain_json},
      {"optimizer",
       {{"iterations", fit.iterations}, {"evaluations", fit.evaluations}, {"converged", fit.converged},
        {"stop_reason", fit.stop_reason}, {"loss", fit.value}, {"gradient_max", fit.gradient_max}}},
  };
  return id;
}

void FruitIdentifier::ViewProbabilities(const float* features, Eigen::VectorXd* known, double* negative) const {
  const Eigen::VectorXd z = (Eigen::Map<const Eigen::VectorXf>(features, dim()).cast<double>() - mean_).cwiseQuotient(std_);
  Eigen::VectorXd p(model_.classes());
  model_.Probabilities(z.data(), p.data());
  *known = p.head(static_cast<Eigen::Index>(classes_.size()));
  *negative = has_negative_ ? p(static_cast<Eigen::Index>(classes_.size())) : 0.0;
}

void FruitIdentifier::PriorDistribution(const float* features, Eigen::VectorXd* q) const {
  const int d = dim();
  Eigen::VectorXf logits = prior_.head.topRows(d).transpose() * Eigen::Map<const Eigen::VectorXf>(features, d);
  logits += prior_.head.row(d).transpose();
  Eigen::VectorXd p = (logits.cast<double>().array() - static_cast<double>(logits.maxCoeff())).exp();
  p /= p.sum();
  // A class shares its ImageNet class's probability with the classes mapped to the same one;
  // the unmapped classes share what ImageNet gives to none of the mapped classes.
  std::map<int, int> share;
  for (int c : imagenet_class_) ++share[c];
  double rest = 1.0;
  for (const auto& [c, count] : share) {
    if (c >= 0) rest -= p(c);
  }
  q->resize(static_cast<Eigen::Index>(classes_.size()));
  for (std::size_t i = 0; i < classes_.size(); ++i) {
    const int c = imagenet_class_[i];
    (*q)(static_cast<Eigen::Index>(i)) = (c >= 0 ? p(c) : std::max(rest, 0.0)) / share[c];
  }
}

Prediction FruitIdentifier::PredictImpl(const float* features, int views) const {
  const int d = dim();
  const auto k = static_cast<Eigen::Index>(classes_.size());
  Eigen::VectorXd known = Eigen::VectorXd::Zero(k), q = Eigen::VectorXd::Zero(k), z_mean = Eigen::VectorXd::Zero(d);
  Eigen::VectorXd view_known, view_q;
  double no_fruit = 0.0;
  for (int v = 0; v < views; ++v) {
    const float* f = features + static_cast<std::size_t>(v) * static_cast<std::size_t>(d);
    double view_negative = 0.0;
    ViewProbabilities(f, &view_known, &view_negative);
    known += view_known;
    no_fruit += view_negative;
    z_mean += (Eigen::Map<const Eigen::VectorXf>(f, d).cast<double>() - mean_).cwiseQuotient(std_);
    if (!prior_.empty()) {
      PriorDistribution(f, &view_q);
      q += view_q;
    }
  }
  known /= views;
  no_fruit /= views;
  z_mean /= views;
  Eigen::VectorXd fused = known;
  if (!prior_.empty()) {
    // log p + α log q, renormalised to the known classes' share of the mass.
    q /= views;
    for (Eigen::Index c = 0; c < k; ++c) fused(c) = known(c) * std::pow(std::max(q(c), kTiny), options_.prior_weight);
    const double mass = known.sum();
    const double total = fused.sum();
    if (total > 0) fused *= mass / total;
  }
  return Decide(fused, no_fruit, z_mean);
}

Prediction FruitIdentifier::Decide(const Eigen::VectorXd& fused, double no_fruit, const Eigen::VectorXd& z_mean) const {
  const std::vector<int> order = RankClasses(fused, kTopLabels);
  Prediction out;
  const int best = order.front();
  out.label = classes_[best];
  out.confidence = fused(best);
  std::map<std::string, double> by_species;  // ordered: ties go to the first name
  for (std::size_t c = 0; c < classes_.size(); ++c) by_species[species_[c]] += fused(static_cast<Eigen::Index>(c));
  for (const auto& [name, p] : by_species) {
    if (p > out.species_confidence) {
      out.species = name;
      out.species_confidence = p;
    }
  }
  out.no_fruit_probability = no_fruit;
  out.distance = detector_.Distance(z_mean.data(), best);
  out.distance_threshold = detector_.distance_threshold(best);
  if (out.distance > out.distance_threshold) out.unknown_reason = "far_from_class";
  if (out.species_confidence < detector_.min_confidence) out.unknown_reason = JoinReason(out.unknown_reason, "low_confidence");
  if (has_negative_ && no_fruit > out.species_confidence) out.unknown_reason = JoinReason(out.unknown_reason, "no_known_fruit");
  out.unknown = !out.unknown_reason.empty();
  out.variety_uncertain = !out.unknown && out.confidence < detector_.min_confidence;
  for (int c : order) out.top.push_back({classes_[c], fused(c)});
  return out;
}

Prediction FruitIdentifier::Predict(const float* features, int views) const {
  if (views < 1) throw InvalidArgumentError("identifier: no view to predict from");
  const Eigen::Map<const Eigen::VectorXf> all(features, static_cast<Eigen::Index>(views) * dim());
  if (!all.allFinite()) throw InvalidArgumentError("identifier: features contain a non-finite value");
  return PredictImpl(features, views);
}

// classifier.weights: magic, u32 version, u32 dim, u32 classes, u32 columns (classes, plus 1
// with a negative class), f64 weights[columns][dim+1] (each column's dim weights then its
// bias), f64 centroids[classes][dim], f64 within_variance[dim], sha256 of everything before.
// imagenet_head.weights: magic, u32 version, u32 dim, u32 1000, f32 head[1000][dim+1], sha256.
std::map<std::string, std::string> FruitIdentifier::Serialize() const {
  const int classes = static_cast<int>(classes_.size());
  pca::RecordWriter w(std::string_view(kWeightsMagic, pca::kMagicSize));
  w.U32(kWeightsVersion);
  w.U32(static_cast<std::uint32_t>(dim()));
  w.U32(static_cast<std::uint32_t>(classes));
  w.U32(static_cast<std::uint32_t>(model_.classes()));
  w.F64s(model_.weights.data(), model_.weights.size());  // column-major: one class after another
  const RowMatrix centroids = detector_.centroids;
  w.F64s(centroids.data(), centroids.size());
  w.F64s(detector_.within_variance.data(), dim());
  std::string weights = w.Finish();
  std::map<std::string, std::string> files;

  nlohmann::json j = {
      {"format", kFormat},
      {"version", kVersion},
      {"dim", dim()},
      {"classes", classes_},
      {"species", species_},
      {"negative_class", has_negative_},
      {"standardization", {{"mean", ToVector(mean_)}, {"std", ToVector(std_)}}},
      {"unknown",
       {{"rule", "distance to the predicted class centroid > its threshold, or species probability < min_confidence, "
                 "or the no-known-fruit class more probable than the species"},
        {"min_confidence", detector_.min_confidence},
        {"distance_thresholds", ToVector(detector_.distance_threshold)}}},
      {"weights", {{"file", kWeightsFile}, {"sha256", Sha256Hex(weights)}}},
      {"taxonomy", {{"file", kTaxonomyFile}, {"sha256", Sha256Hex(taxonomy_.text())}}},
      {"training_options", OptionsJson(options_)},
      {"metadata", metadata_},
  };
  if (!prior_.empty()) {
    pca::RecordWriter pw(std::string_view(kPriorMagic, pca::kMagicSize));
    pw.U32(kPriorVersion);
    pw.U32(static_cast<std::uint32_t>(dim()));
    pw.U32(kImagenetClasses);
    pw.F32s(prior_.head.data(), prior_.head.size());
    std::string head = pw.Finish();
    j["imagenet_prior"] = {{"file", kPriorFile}, {"sha256", Sha256Hex(head)}, {"imagenet_class", imagenet_class_}};
    files[kPriorFile] = std::move(head);
  }
  files[kJsonFile] = j.dump(2) + "\n";
  files[kWeightsFile] = std::move(weights);
  files[kTaxonomyFile] = taxonomy_.text();
  return files;
}

FruitIdentifier FruitIdentifier::Deserialize(const std::map<std::string, std::string>& files, const std::string& source) {
  const std::string where = source.empty() ? std::string("classifier") : source;
  const auto fail = [&where](const std::string& cause) -> void { throw CorruptionError(where + ": " + cause); };
  const auto get = [&](const char* name) -> const std::string& {
    const auto it = files.find(name);
    if (it == files.end()) throw NotFoundError(where + ": " + name + " missing");
    return it->second;
  };
  const std::string& json_text = get(kJsonFile);
  const std::string& weight_bytes = get(kWeightsFile);

  FruitIdentifier id;
  std::vector<double> thresholds;
  std::string weights_sha, prior_sha;
  try {
    const nlohmann::json j = nlohmann::json::parse(json_text);
    if (j.at("format").get<std::string>() != kFormat) fail(std::string(kJsonFile) + ": not a fruitpipe classifier");
    if (j.at("version").get<int>() != kVersion) {
      fail(std::string(kJsonFile) + ": version " + j.at("version").dump() + " is not " + std::to_string(kVersion) +
           " (retrain with fruitpipe train)");
    }
    const int dim = j.at("dim").get<int>();
    if (dim < 1 || static_cast<std::uint32_t>(dim) > kMaxDim) fail(std::string(kJsonFile) + ": dim out of range");
    id.classes_ = j.at("classes").get<std::vector<std::string>>();
    if (id.classes_.size() < 2 || id.classes_.size() > kMaxClasses || id.classes_.front().empty() ||
        std::adjacent_find(id.classes_.begin(), id.classes_.end(), std::greater_equal<>()) != id.classes_.end()) {
      fail(std::string(kJsonFile) + ": classes must be at least 2 distinct, sorted, non-empty labels");
    }
    id.species_ = j.at("species").get<std::vector<std::string>>();
    if (id.species_.size() != id.classes_.size()) fail(std::string(kJsonFile) + ": one species per class expected");
    id.has_negative_ = j.at("negative_class").get<bool>();
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
    const std::string& taxonomy_text = get(kTaxonomyFile);
    if (Sha256Hex(taxonomy_text) != j.at("taxonomy").at("sha256").get<std::string>()) {
      fail(std::string(kTaxonomyFile) + ": sha256 differs from " + kJsonFile);
    }
    id.taxonomy_ = Taxonomy::Parse(taxonomy_text, where + "/" + kTaxonomyFile);
    id.imagenet_class_.assign(id.classes_.size(), -1);
    if (j.contains("imagenet_prior")) {
      prior_sha = j["imagenet_prior"].at("sha256").get<std::string>();
      id.imagenet_class_ = j["imagenet_prior"].at("imagenet_class").get<std::vector<int>>();
      if (id.imagenet_class_.size() != id.classes_.size() ||
          std::any_of(id.imagenet_class_.begin(), id.imagenet_class_.end(),
                      [](int c) { return c < -1 || c >= kImagenetClasses; })) {
        fail(std::string(kJsonFile) + ": invalid imagenet_class list");
      }
    }
    id.options_ = OptionsFromJson(j.at("training_options"));
    id.metadata_ = j.at("metadata");
    if (!id.metadata_.is_object()) fail(std::string(kJsonFile) + ": metadata is not an object");
  } catch (const nlohmann::json::exception& e) {
    fail(std::string(kJsonFile) + ": " + e.what());
  } catch (const InvalidArgumentError& e) {
    fail(e.what());
  }
  id.detector_.distance_threshold = Eigen::Map<const Eigen::VectorXd>(thresholds.data(), static_cast<Eigen::Index>(thresholds.size()));

  if (Sha256Hex(weight_bytes) != weights_sha) fail(std::string(kWeightsFile) + ": sha256 differs from " + kJsonFile);
  pca::RecordReader r(weight_bytes, std::string_view(kWeightsMagic, pca::kMagicSize), kWeightsFile, where);
  if (r.U32() != kWeightsVersion) r.Fail("unsupported version");
  const std::uint32_t dim = r.U32();
  const std::uint32_t classes = r.U32();
  const std::uint32_t columns = r.U32();
  if (dim != static_cast<std::uint32_t>(id.dim()) || classes != id.classes_.size() ||
      columns != classes + (id.has_negative_ ? 1u : 0u)) {
    r.Fail("shape " + std::to_string(dim) + " × " + std::to_string(columns) + " differs from " + kJsonFile);
  }
  const std::uint64_t expected = 8 * (static_cast<std::uint64_t>(dim + 1) * columns +
                                      static_cast<std::uint64_t>(classes) * dim + dim);
  if (r.remaining() != expected) r.Fail("size mismatch");
  id.model_.weights.resize(dim + 1, columns);
  r.F64s(id.model_.weights.data(), id.model_.weights.size());
  RowMatrix centroids(classes, dim);
  r.F64s(centroids.data(), centroids.size());
  id.detector_.centroids = centroids;
  id.detector_.within_variance.resize(dim);
  r.F64s(id.detector_.within_variance.data(), dim);
  r.ExpectEnd();
  if (!(id.detector_.within_variance.minCoeff() > 0.0)) r.Fail("non-positive variance");

  if (!prior_sha.empty()) {
    const std::string& head = get(kPriorFile);
    if (Sha256Hex(head) != prior_sha) fail(std::string(kPriorFile) + ": sha256 differs from " + kJsonFile);
    pca::RecordReader pr(head, std::string_view(kPriorMagic, pca::kMagicSize), kPriorFile, where);
    if (pr.U32() != kPriorVersion) pr.Fail("unsupported version");
    if (pr.U32() != dim || pr.U32() != static_cast<std::uint32_t>(kImagenetClasses)) pr.Fail("shape differs from the classifier");
    if (pr.remaining() != 4ull * (dim + 1) * kImagenetClasses) pr.Fail("size mismatch");
    id.prior_.head.resize(dim + 1, kImagenetClasses);
    pr.F32s(id.prior_.head.data(), id.prior_.head.size());
    pr.ExpectEnd();
  }
  return id;
}

}  // namespace fruitpipe::classify
