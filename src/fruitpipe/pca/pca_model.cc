#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "fruitpipe/common/error.h"
#include "fruitpipe/pca/binary_io.h"
#include "fruitpipe/pca/pca.h"
#include "fruitpipe/pca/symmetric_eigen.h"

namespace fruitpipe::pca {
namespace {

constexpr char kModelMagic[] = "FPPCAMOD";
constexpr std::uint32_t kModelVersion = 1;
constexpr std::uint32_t kMaxDim = 1u << 20;
constexpr int kTransformRows = 1024;  // rows converted to double per GEMM in TransformBatch

using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

int RankBound(const PcaStats& stats) {
  return static_cast<int>(std::min<std::int64_t>(stats.dim(), stats.count() - 1));
}

}  // namespace

PcaModel FitPca(const PcaStats& stats, const PcaFitOptions& options) {
  const bool by_k = options.k != 0;
  const bool by_variance = options.variance != 0.0;
  if (by_k == by_variance) {
    throw InvalidArgumentError("PCA fit: set exactly one of k and variance (got k=" + std::to_string(options.k) +
                               ", variance=" + std::to_string(options.variance) + ")");
  }
  if (by_k && options.k < 0) throw InvalidArgumentError("PCA fit: k=" + std::to_string(options.k) + " must be positive");
  if (by_variance && !(options.variance > 0.0 && options.variance <= 1.0)) {
    throw InvalidArgumentError("PCA fit: variance=" + std::to_string(options.variance) + " must be in (0, 1]");
  }
  if (stats.count() < 2) {
    throw InvalidArgumentError("PCA fit: needs at least 2 rows, got " + std::to_string(stats.count()));
  }
  const int dim = stats.dim();
  const int bound = RankBound(stats);
  if (by_k && options.k > bound) {
    throw InvalidArgumentError("PCA fit: k=" + std::to_string(options.k) + " exceeds min(dim=" + std::to_string(dim) +
                               ", rows-1=" + std::to_string(stats.count() - 1) + ")");
  }

  const double n = static_cast<double>(stats.count());
  Eigen::MatrixXd cov = stats.Scatter() / (n - 1.0);
  const double total = cov.trace();
  if (!(total > 0.0)) throw InvalidArgumentError("PCA fit: the rows have zero variance");
  const SymmetricEigen eig(std::move(cov));  // LAPACK reduces it in place: no dim × dim copy
  // Rounding can leave tiny negative eigenvalues.
  const Eigen::VectorXd values = eig.Eigenvalues().cwiseMax(0.0);
  int k = options.k;
  if (by_variance) {
    // A tolerance so that variance=1 selects the full rank despite rounding in the sum.
    const double target = options.variance * total - 1e-12 * total;
    double cumulative = 0.0;
    k = bound;
    for (int i = 0; i < bound; ++i) {
      cumulative += values(i);
      if (cumulative >= target) {
        k = i + 1;
        break;
      }
    }
  }

  PcaModel model;
  model.dim = dim;
  model.k = k;
  model.n = stats.count();
  model.mean = stats.Mean();
  model.total_variance = total;
  model.explained_variance = values.head(k);
  model.explained_variance_ratio = model.explained_variance / total;
  const Eigen::MatrixXd vectors = eig.LeadingEigenvectors(k);
  model.components.resize(k, dim);
  for (int i = 0; i < k; ++i) {
    Eigen::VectorXd v = vectors.col(i);
    Eigen::Index at = 0;
    v.cwiseAbs().maxCoeff(&at);  // first index on ties, so the choice is reproducible
    if (v(at) < 0) v = -v;
    model.components.row(i) = v.transpose();
  }
  return model;
}

void PcaModel::Transform(const float* x, double* out) const {
  const Eigen::VectorXd centered = Eigen::Map<const Eigen::VectorXf>(x, dim).cast<double>() - mean;
  Eigen::Map<Eigen::VectorXd>(out, k).noalias() = components * centered;
}

void PcaModel::TransformBatch(const float* x, int rows, double* out) const {
  Eigen::MatrixXd centered;
  for (int start = 0; start < rows; start += kTransformRows) {
    const int count = std::min(kTransformRows, rows - start);
    centered.noalias() =
        Eigen::Map<const Eigen::MatrixXf>(x + static_cast<std::size_t>(start) * dim, dim, count).cast<double>();
    centered.colwise() -= mean;
    // out rows are row-major k-vectors, i.e. a column-major k × count block.
    Eigen::Map<Eigen::MatrixXd>(out + static_cast<std::size_t>(start) * k, k, count).noalias() =
        components * centered;
  }
}

// Layout (docs/formats/pca.md): magic, u32 version, u32 dim, u32 k, i64 n, f64 total_variance,
// f64 mean[dim], f64 explained_variance[k], f64 explained_variance_ratio[k],
// f64 components[k][dim] (row-major), sha256.
std::string PcaModel::Serialize() const {
  if (dim < 1 || k < 1 || k > dim || mean.size() != dim || components.rows() != k || components.cols() != dim ||
      explained_variance.size() != k || explained_variance_ratio.size() != k) {
    throw InvalidArgumentError("PCA model: inconsistent sizes (dim=" + std::to_string(dim) + ", k=" +
                               std::to_string(k) + "), nothing to serialize");
  }
  RecordWriter w(std::string_view(kModelMagic, kMagicSize));
  w.Reserve(40 + 8 * (static_cast<std::size_t>(dim) + 2 * k + static_cast<std::size_t>(k) * dim));
  w.U32(kModelVersion);
  w.U32(static_cast<std::uint32_t>(dim));
  w.U32(static_cast<std::uint32_t>(k));
  w.I64(n);
  w.F64(total_variance);
  w.F64s(mean.data(), dim);
  w.F64s(explained_variance.data(), k);
  w.F64s(explained_variance_ratio.data(), k);
  const RowMajor rows = components;
  w.F64s(rows.data(), rows.size());
  return w.Finish();
}

PcaModel PcaModel::Deserialize(std::string_view bytes, std::string_view source) {
  RecordReader r(bytes, std::string_view(kModelMagic, kMagicSize), "PCA model", source);
  const std::uint32_t version = r.U32();
  if (version != kModelVersion) r.Fail("unsupported version " + std::to_string(version));
  const std::uint32_t dim = r.U32();
  const std::uint32_t k = r.U32();
  const std::int64_t n = r.I64();
  if (dim == 0 || dim > kMaxDim) r.Fail("dimension " + std::to_string(dim) + " out of range");
  if (k == 0 || k > dim) r.Fail("k=" + std::to_string(k) + " out of range for dimension " + std::to_string(dim));
  if (n < 2) r.Fail("row count " + std::to_string(n) + " below 2");
  const std::uint64_t expected = 8 * (1 + dim + 2 * static_cast<std::uint64_t>(k) + static_cast<std::uint64_t>(k) * dim);
  if (r.remaining() != expected) {
    r.Fail("size mismatch: " + std::to_string(r.remaining()) + " bytes of data for dim=" + std::to_string(dim) +
           " k=" + std::to_string(k) + ", expected " + std::to_string(expected));
  }
  PcaModel m;
  m.dim = static_cast<int>(dim);
  m.k = static_cast<int>(k);
  m.n = n;
  r.F64s(&m.total_variance, 1);
  m.mean.resize(dim);
  m.explained_variance.resize(k);
  m.explained_variance_ratio.resize(k);
  r.F64s(m.mean.data(), dim);
  r.F64s(m.explained_variance.data(), k);
  r.F64s(m.explained_variance_ratio.data(), k);
  RowMajor rows(k, dim);
  r.F64s(rows.data(), rows.size());
  r.ExpectEnd();
  m.components = rows;
  return m;
}

std::string PcaModel::ToJson() const {
  nlohmann::json ratio = nlohmann::json::array();
  nlohmann::json cumulative = nlohmann::json::array();
  double sum = 0.0;
  for (int i = 0; i < k; ++i) {
    sum += explained_variance_ratio(i);
    ratio.push_back(explained_variance_ratio(i));
    cumulative.push_back(sum);
  }
  const nlohmann::json j = {
      {"k", k},
      {"n", n},
      {"dim", dim},
      {"total_variance", total_variance},
      {"explained_variance_ratio", ratio},
      {"cumulative_explained_variance_ratio", cumulative},
      {"total_explained_variance_ratio", sum},
  };
  return j.dump();
}

}  // namespace fruitpipe::pca
