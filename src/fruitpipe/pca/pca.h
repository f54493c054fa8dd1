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

// n, Σ(x-a) and Σ(x-a)(x-a)ᵀ in double about a shift a, the first row the statistics saw.
// Accumulating about a point inside the data instead of the origin keeps the covariance
// (ΣxxT - n·μμᵀ) from cancelling catastrophically when the mean is large next to the spread.
// Merge/Unmerge re-express the other side's statistics about this side's shift, exactly.
class PcaStats {
 public:
  PcaStats() = default;
  explicit PcaStats(int dim);

  int dim() const { return dim_; }
  std::int64_t count() const { return n_; }
  const Eigen::VectorXd& shift() const { return shift_; }
  Eigen::VectorXd Sum() const;        // Σx
  Eigen::VectorXd Mean() const;       // Σx / n; throws when empty
  // Σ x xᵀ (full matrix). For the covariance use Scatter(), which does not cancel.
  Eigen::MatrixXd Symmetric() const;
  // Σ (x-μ)(x-μ)ᵀ, full matrix; throws when empty.
  Eigen::MatrixXd Scatter() const;

  void Add(const float* x);                 // one row of dim values
  void AddBatch(const float* x, int rows);  // rows × dim, row-major (rank-k update)
  // Removes a row that was added before (erasure). Throws InvalidArgumentError when empty.
  void Subtract(const float* x);
  // Adds another shard's statistics; other must have the same dim (or either side be empty).
  // Floating-point addition is not associative: merge shards in a fixed order (ascending
  // shard index, see MergeInOrder) for results that are bit-identical across runs.
  void Merge(const PcaStats& other);
  // Removes statistics merged before (e.g. all rows of one subject). Throws
  // InvalidArgumentError when other holds more rows than this.
  void Unmerge(const PcaStats& other);

  std::string Serialize() const;  // binary, checksummed
  // Throws CorruptionError naming `source` (a file or key, for the message) on any mismatch.
  static PcaStats Deserialize(std::string_view bytes, std::string_view source = {});

 private:
  void CheckRows(const float* x, int rows, const char* op) const;
  void AdoptShiftIfEmpty(const float* row);
  // Adds sign·other, re-expressed about this->shift_ (same dim, both non-empty).
  void Combine(const PcaStats& other, double sign);
  void ResetIfEmpty();

  int dim_ = 0;
  std::int64_t n_ = 0;
  Eigen::VectorXd shift_;  // a; zero while empty
  Eigen::VectorXd sum_;    // Σ(x-a)
  Eigen::MatrixXd sxx_;    // Σ(x-a)(x-a)ᵀ, upper triangle valid
};

// Empty PcaStats, then Merge of each part in the order given. Pass shards sorted by index.
PcaStats MergeInOrder(const std::vector<PcaStats>& parts);

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
  double total_variance = 0.0;           // trace of the covariance (all dim directions)

  // out has k values: components · (x - mean)
  void Transform(const float* x, double* out) const;
  // rows × dim row-major in, rows × k row-major out (one GEMM).
  void TransformBatch(const float* x, int rows, double* out) const;
  std::string Serialize() const;  // binary, checksummed
  static PcaModel Deserialize(std::string_view bytes, std::string_view source = {});
  std::string ToJson() const;  // summary for humans/run.json (no matrix)
};

// Eigendecomposition of the covariance; components sorted by decreasing variance with a
// deterministic sign (largest-magnitude coordinate positive). Exactly one of options.k and
// options.variance must be set. Throws InvalidArgumentError when n < 2, when the data has
// zero variance, or when k exceeds min(dim, n-1) (the most components the data can carry).
PcaModel FitPca(const PcaStats& stats, const PcaFitOptions& options);

}  // namespace fruitpipe::pca
