// Synthetic Gaussian blobs for classifier tests and benchmarks: class c's rows are
// N(center_c, noise² I), centers N(0, spread² I), all from one seeded generator.
#pragma once

#include <random>
#include <string>
#include <vector>

#include "fruitpipe/classify/logistic_regression.h"

namespace fruitpipe::classify::testing {

struct Blobs {
  RowMatrix x;
  std::vector<int> y;
  std::vector<std::string> labels;  // "class-07"
  Eigen::MatrixXd centers;          // classes × dim
};

inline std::string BlobLabel(int c) {
  std::string s = std::to_string(c);
  return "class-" + std::string(s.size() < 3 ? 3 - s.size() : 0, '0') + s;
}

// rows_per_class rows of each class, classes interleaved (row i has class i % classes).
inline Blobs MakeBlobs(int classes, int dim, int rows_per_class, double spread, double noise, std::uint64_t seed,
                       const Eigen::MatrixXd* centers = nullptr, double offset = 0.0) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  Blobs b;
  if (centers != nullptr) {
    b.centers = *centers;
  } else {
    b.centers.resize(classes, dim);
    for (double& v : b.centers.reshaped()) v = spread * normal(rng);
  }
  b.centers.array() += offset;
  const int n = classes * rows_per_class;
  b.x.resize(n, dim);
  for (int i = 0; i < n; ++i) {
    const int c = i % classes;
    for (int j = 0; j < dim; ++j) b.x(i, j) = b.centers(c, j) + noise * normal(rng);
    b.y.push_back(c);
    b.labels.push_back(BlobLabel(c));
  }
  return b;
}

}  // namespace fruitpipe::classify::testing
