// PCA from sufficient statistics (see docs/formats/pca.md). Statistics are additive and
// subtractable, so shards are processed independently, new shards are added incrementally,
// and erased rows are subtracted without reprocessing the corpus.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <Eigen/Dense>

namespace fruitpipe::pca {

class PcaStats {
 public:
  PcaStats() = default;
  explicit PcaStats(int dim);

  int dim() const { return dim_; }
  std::int64_t count() const { return n_; }
  const Eigen::VectorXd& sum() const { return sum_; }
  // Σ x xᵀ; only the upper triangle is maintained, Symmetric() returns the full matrix.
  Eigen::MatrixXd Symmetric() const;

  void Add(const float* x);              // one row
  void AddBatch(const float* x, int rows);  // rows × dim, row-major (rank-k update)
  void Subtract(const float* x);
  void Merge(const PcaStats& other);     // other must have the same dim (or be empty)
  void Unmerge(const PcaStats& other);

  std::string Serialize() const;                   // binary, checksummed
  static PcaStats Deserialize(std::string_view bytes);  // throws CorruptionError

 private:
  int dim_ = 0;
  std::int64_t n_ = 0;
  Eigen::VectorXd sum_;
  Eigen::MatrixXd sxx_;  // upper triangle valid
};

struct PcaFitOptions {
  int k = 0;               // > 0: exactly k components
  double variance = 0.0;   // in (0, 1]: smallest k reaching this explained variance
};

struct PcaModel {
  int dim = 0;
  int k = 0;
  std::int64_t n = 0;
  Eigen::VectorXd mean;                  // dim
  Eigen::MatrixXd components;            // k × dim, rows are unit principal axes
  Eigen::VectorXd explained_variance;    // k (sample variance, divided by n-1)
  Eigen::VectorXd explained_variance_ratio;  // k
  double total_variance = 0.0;

  // out has k values: components · (x - mean)
  void Transform(const float* x, double* out) const;
  std::string Serialize() const;                    // binary, checksummed
  static PcaModel Deserialize(std::string_view bytes);
  std::string ToJson() const;                       // summary for humans/run.json (no matrix)
};

// Eigendecomposition of the covariance; components sorted by decreasing variance with a
// deterministic sign (largest-magnitude coordinate positive). Throws when n < 2.
PcaModel FitPca(const PcaStats& stats, const PcaFitOptions& options);

}  // namespace fruitpipe::pca
