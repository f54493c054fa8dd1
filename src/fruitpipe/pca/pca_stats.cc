#include <algorithm>
#include <string>

#include "fruitpipe/common/error.h"
#include "fruitpipe/pca/binary_io.h"
#include "fruitpipe/pca/pca.h"

namespace fruitpipe::pca {
namespace {

constexpr char kStatsMagic[] = "FPPCASTA";
constexpr std::uint32_t kStatsVersion = 1;
// Far above any feature extractor, low enough that size arithmetic cannot overflow.
constexpr std::uint32_t kMaxDim = 1u << 20;
// Rows converted to double at a time: bounds the temporary to 1024 × dim doubles while
// keeping the rank-k update large enough to run at GEMM speed.
constexpr int kBatchRows = 1024;

using FloatCols = Eigen::Map<const Eigen::MatrixXf>;  // a row-major rows × dim block, seen as dim × rows

std::uint64_t PackedSize(std::uint64_t dim) { return dim * (dim + 1) / 2; }

}  // namespace

PcaStats::PcaStats(int dim) : dim_(dim) {
  if (dim < 1 || static_cast<std::uint32_t>(dim) > kMaxDim) {
    throw InvalidArgumentError("PCA statistics: dimension " + std::to_string(dim) + " out of range");
  }
  shift_ = Eigen::VectorXd::Zero(dim);
  sum_ = Eigen::VectorXd::Zero(dim);
  sxx_ = Eigen::MatrixXd::Zero(dim, dim);
}

Eigen::VectorXd PcaStats::Sum() const { return sum_ + static_cast<double>(n_) * shift_; }

Eigen::VectorXd PcaStats::Mean() const {
  if (n_ == 0) throw InvalidArgumentError("PCA statistics: mean of zero rows");
  return shift_ + sum_ / static_cast<double>(n_);
}

Eigen::MatrixXd PcaStats::Symmetric() const {
  // Σxxᵀ = S + a sᵀ + s aᵀ + n a aᵀ with s = Σ(x-a), S = Σ(x-a)(x-a)ᵀ.
  Eigen::MatrixXd m = sxx_;
  m.selfadjointView<Eigen::Upper>().rankUpdate(shift_, sum_, 1.0);
  m.selfadjointView<Eigen::Upper>().rankUpdate(shift_, static_cast<double>(n_));
  return m.selfadjointView<Eigen::Upper>();
}

Eigen::MatrixXd PcaStats::Scatter() const {
  if (n_ == 0) throw InvalidArgumentError("PCA statistics: scatter of zero rows");
  // Σ(x-μ)(x-μ)ᵀ = S - s sᵀ / n; s is small because a lies inside the data.
  Eigen::MatrixXd m = sxx_;
  m.selfadjointView<Eigen::Upper>().rankUpdate(sum_, -1.0 / static_cast<double>(n_));
  return m.selfadjointView<Eigen::Upper>();
}

void PcaStats::CheckRows(const float* x, int rows, const char* op) const {
  if (dim_ == 0) throw InvalidArgumentError(std::string("PCA statistics: ") + op + " on statistics without a dimension");
  if (rows < 0) throw InvalidArgumentError(std::string("PCA statistics: ") + op + " with a negative row count");
  // A NaN or infinity could never be subtracted again: refuse it before it is summed.
  const FloatCols cols(x, dim_, rows);
  if (!cols.allFinite()) {
    for (int r = 0; r < rows; ++r) {
      if (!cols.col(r).allFinite()) {
        throw InvalidArgumentError(std::string("PCA statistics: ") + op + ": row " + std::to_string(r) +
                                   " has a non-finite value");
      }
    }
  }
}

void PcaStats::AdoptShiftIfEmpty(const float* row) {
  if (n_ == 0) shift_ = Eigen::Map<const Eigen::VectorXf>(row, dim_).cast<double>();
}

void PcaStats::Add(const float* x) {
  CheckRows(x, 1, "Add");
  AdoptShiftIfEmpty(x);
  const Eigen::VectorXd y = Eigen::Map<const Eigen::VectorXf>(x, dim_).cast<double>() - shift_;
  sum_ += y;
  sxx_.selfadjointView<Eigen::Upper>().rankUpdate(y);
  ++n_;
}

void PcaStats::AddBatch(const float* x, int rows) {
  CheckRows(x, rows, "AddBatch");
  if (rows == 0) return;
  AdoptShiftIfEmpty(x);
  Eigen::MatrixXd y;
  for (int start = 0; start < rows; start += kBatchRows) {
    const int count = std::min(kBatchRows, rows - start);
    y.noalias() = FloatCols(x + static_cast<std::size_t>(start) * dim_, dim_, count).cast<double>();
    y.colwise() -= shift_;
    sum_ += y.rowwise().sum();
    sxx_.selfadjointView<Eigen::Upper>().rankUpdate(y);  // S += Y Yᵀ, upper triangle only
  }
  n_ += rows;
}

void PcaStats::Subtract(const float* x) {
  CheckRows(x, 1, "Subtract");
  if (n_ == 0) throw InvalidArgumentError("PCA statistics: Subtract from statistics with zero rows");
  const Eigen::VectorXd y = Eigen::Map<const Eigen::VectorXf>(x, dim_).cast<double>() - shift_;
  sum_ -= y;
  sxx_.selfadjointView<Eigen::Upper>().rankUpdate(y, -1.0);
  --n_;
  ResetIfEmpty();
}

void PcaStats::Combine(const PcaStats& other, double sign) {
  // other holds s_b = Σ(x-b), S_b = Σ(x-b)(x-b)ᵀ. With d = b - a:
  //   Σ(x-a) = s_b + n_b d,   Σ(x-a)(x-a)ᵀ = S_b + d s_bᵀ + s_b dᵀ + n_b d dᵀ.
  const Eigen::VectorXd d = other.shift_ - shift_;
  const double nb = static_cast<double>(other.n_);
  sum_ += sign * (other.sum_ + nb * d);
  if (sign > 0) {
    sxx_.triangularView<Eigen::Upper>() += other.sxx_;
  } else {
    sxx_.triangularView<Eigen::Upper>() -= other.sxx_;
  }
  sxx_.selfadjointView<Eigen::Upper>().rankUpdate(d, other.sum_, sign);
  sxx_.selfadjointView<Eigen::Upper>().rankUpdate(d, sign * nb);
}

void PcaStats::Merge(const PcaStats& other) {
  if (other.dim_ != 0 && dim_ != 0 && other.dim_ != dim_) {
    throw InvalidArgumentError("PCA statistics: Merge of dimension " + std::to_string(other.dim_) + " into " +
                               std::to_string(dim_));
  }
  if (other.n_ == 0) {
    if (dim_ == 0 && other.dim_ != 0) *this = PcaStats(other.dim_);
    return;
  }
  if (n_ == 0) {
    *this = other;  // adopts other's shift, so merging into empty is exact
    return;
  }
  Combine(other, 1.0);
  n_ += other.n_;
}

void PcaStats::Unmerge(const PcaStats& other) {
  if (other.n_ == 0) return;
  if (other.dim_ != dim_) {
    throw InvalidArgumentError("PCA statistics: Unmerge of dimension " + std::to_string(other.dim_) + " from " +
                               std::to_string(dim_));
  }
  if (other.n_ > n_) {
    throw InvalidArgumentError("PCA statistics: Unmerge of " + std::to_string(other.n_) + " rows from " +
                               std::to_string(n_));
  }
  Combine(other, -1.0);
  n_ -= other.n_;
  ResetIfEmpty();
}

void PcaStats::ResetIfEmpty() {
  // With every row removed the statistics are exactly empty, whatever rounding left behind;
  // the next row added becomes the new shift.
  if (n_ != 0) return;
  shift_.setZero();
  sum_.setZero();
  sxx_.setZero();
}

PcaStats MergeInOrder(const std::vector<PcaStats>& parts) {
  PcaStats total;
  for (const PcaStats& p : parts) total.Merge(p);
  return total;
}

// Layout (docs/formats/pca.md): magic, u32 version, u32 dim, i64 n, f64 shift[dim],
// f64 sum[dim], f64 scatter[dim(dim+1)/2] (upper triangle, LAPACK packed column order), sha256.
std::string PcaStats::Serialize() const {
  RecordWriter w(std::string_view(kStatsMagic, kMagicSize));
  w.Reserve(32 + 8 * (2 * static_cast<std::size_t>(dim_) + PackedSize(dim_)));
  w.U32(kStatsVersion);
  w.U32(static_cast<std::uint32_t>(dim_));
  w.I64(n_);
  if (dim_ == 0) return w.Finish();
  w.F64s(shift_.data(), dim_);
  w.F64s(sum_.data(), dim_);
  for (int j = 0; j < dim_; ++j) w.F64s(sxx_.col(j).data(), j + 1);  // rows 0..j of column j
  return w.Finish();
}

PcaStats PcaStats::Deserialize(std::string_view bytes, std::string_view source) {
  RecordReader r(bytes, std::string_view(kStatsMagic, kMagicSize), "PCA statistics", source);
  const std::uint32_t version = r.U32();
  if (version != kStatsVersion) r.Fail("unsupported version " + std::to_string(version));
  const std::uint32_t dim = r.U32();
  const std::int64_t n = r.I64();
  if (dim > kMaxDim) r.Fail("dimension " + std::to_string(dim) + " out of range");
  if (n < 0) r.Fail("negative row count");
  if (dim == 0) {
    if (n != 0) r.Fail("rows without a dimension");
    r.ExpectEnd();
    return PcaStats();
  }
  const std::uint64_t expected = 8 * (2 * static_cast<std::uint64_t>(dim) + PackedSize(dim));
  if (r.remaining() != expected) {
    r.Fail("size mismatch: " + std::to_string(r.remaining()) + " bytes of data for dimension " +
           std::to_string(dim) + ", expected " + std::to_string(expected));
  }
  PcaStats s(static_cast<int>(dim));
  s.n_ = n;
  r.F64s(s.shift_.data(), dim);
  r.F64s(s.sum_.data(), dim);
  for (std::uint32_t j = 0; j < dim; ++j) r.F64s(s.sxx_.col(j).data(), j + 1);
  r.ExpectEnd();
  if (n == 0 && (!s.shift_.isZero(0) || !s.sum_.isZero(0) || !s.sxx_.isZero(0))) {
    r.Fail("non-zero sums for zero rows");
  }
  return s;
}

}  // namespace fruitpipe::pca
