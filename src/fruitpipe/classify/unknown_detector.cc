#include "fruitpipe/classify/unknown_detector.h"

#include <algorithm>
#include <cmath>

#include "fruitpipe/common/error.h"

namespace fruitpipe::classify {
namespace {

// Floor for a pooled variance: a feature constant within every class would otherwise make
// any deviation from it infinitely far.
constexpr double kMinVariance = 1e-6;

}  // namespace

double Quantile(std::vector<double> values, double q) {
  if (values.empty()) throw InvalidArgumentError("quantile of no values");
  const double pos = std::clamp(q, 0.0, 1.0) * static_cast<double>(values.size() - 1);
  const std::size_t lo = static_cast<std::size_t>(std::floor(pos));
  std::nth_element(values.begin(), values.begin() + lo, values.end());
  const double a = values[lo];
  if (lo + 1 >= values.size()) return a;
  const double b = *std::min_element(values.begin() + lo + 1, values.end());
  return a + (pos - static_cast<double>(lo)) * (b - a);
}

double UnknownDetector::Distance(const double* z, int c) const {
  const Eigen::Map<const Eigen::VectorXd> v(z, centroids.cols());
  const double sq = ((v - centroids.row(c).transpose()).array().square() / within_variance.array()).mean();
  return std::sqrt(sq);
}

UnknownDetector FitUnknownDetector(const RowMatrix& z, const std::vector<int>& labels, int classes,
                                   const UnknownDetectorOptions& options) {
  const Eigen::Index n = z.rows();
  const Eigen::Index dim = z.cols();
  UnknownDetector d;
  d.centroids = Eigen::MatrixXd::Zero(classes, dim);
  Eigen::VectorXi counts = Eigen::VectorXi::Zero(classes);
  for (Eigen::Index i = 0; i < n; ++i) {
    d.centroids.row(labels[i]) += z.row(i);
    ++counts(labels[i]);
  }
  for (int c = 0; c < classes; ++c) {
    if (counts(c) == 0) throw InvalidArgumentError("unknown detector: class " + std::to_string(c) + " has no rows");
    d.centroids.row(c) /= counts(c);
  }
  d.within_variance = Eigen::VectorXd::Zero(dim);
  for (Eigen::Index i = 0; i < n; ++i) {
    d.within_variance += (z.row(i) - d.centroids.row(labels[i])).array().square().matrix().transpose();
  }
  // Unbiased pooled estimate; with one row per class there is nothing to pool.
  d.within_variance /= static_cast<double>(std::max<Eigen::Index>(n - classes, 1));
  d.within_variance = d.within_variance.cwiseMax(kMinVariance);

  std::vector<std::vector<double>> own(classes);
  std::vector<double> all;
  all.reserve(n);
  for (Eigen::Index i = 0; i < n; ++i) {
    const double dist = d.Distance(z.row(i).data(), labels[i]);
    own[labels[i]].push_back(dist);
    all.push_back(dist);
  }
  const double pooled = Quantile(all, options.distance_quantile);
  d.distance_threshold.resize(classes);
  for (int c = 0; c < classes; ++c) {
    const bool enough = static_cast<int>(own[c].size()) >= options.min_class_rows;
    d.distance_threshold(c) = options.distance_margin * (enough ? Quantile(own[c], options.distance_quantile) : pooled);
  }
  return d;
}

}  // namespace fruitpipe::classify
