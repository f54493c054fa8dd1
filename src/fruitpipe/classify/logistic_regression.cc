#include "fruitpipe/classify/logistic_regression.h"

#include <algorithm>
#include <cmath>
#include <atomic>
#include <exception>
#include <mutex>
#include <string>
#include <thread>

#include "fruitpipe/common/error.h"

namespace fruitpipe::classify {
namespace {

// Large enough for GEMM efficiency, small enough that a chunk's logits stay in cache and
// that 60,000 rows give every thread several chunks.
constexpr int kChunkRows = 2048;

template <typename T>
using Rows = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// One chunk's weighted cross-entropy sum and gradient of that sum, in T, returned in double.
template <typename T>
void ChunkTerms(const Rows<T>& x, Eigen::Index begin, Eigen::Index count, const int* labels, const double* row_weights,
                const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>& w,
                const Eigen::Matrix<T, 1, Eigen::Dynamic>& b, double* loss, Eigen::MatrixXd* grad) {
  const auto xc = x.middleRows(begin, count);
  Rows<T> z(count, w.cols());
  z.noalias() = xc * w;
  z.rowwise() += b;
  const Eigen::Matrix<T, Eigen::Dynamic, 1> top = z.rowwise().maxCoeff();
  z.colwise() -= top;  // exp never overflows; the largest term is 1
  double sum = 0.0;
  for (Eigen::Index i = 0; i < count; ++i) sum -= row_weights[i] * static_cast<double>(z(i, labels[i]));
  z = z.array().exp();
  const Eigen::Matrix<T, Eigen::Dynamic, 1> norm = z.rowwise().sum();
  for (Eigen::Index i = 0; i < count; ++i) sum += row_weights[i] * std::log(static_cast<double>(norm(i)));
  z.array().colwise() /= norm.array();  // probabilities P
  for (Eigen::Index i = 0; i < count; ++i) {
    z(i, labels[i]) -= T(1);  // P - Y, weighted
    z.row(i) *= static_cast<T>(row_weights[i]);
  }
  *loss = sum;
  grad->resize(w.rows() + 1, w.cols());
  grad->topRows(w.rows()) = (xc.transpose() * z).template cast<double>();
  grad->row(w.rows()) = z.colwise().sum().template cast<double>();
}

}  // namespace

struct SoftmaxObjective::Data {
  Rows<float> xf;
  RowMatrix xd;
  std::vector<int> labels;
  std::vector<double> weights;  // one per row
  double weight_sum = 0.0;
  bool single = true;
};

SoftmaxObjective::SoftmaxObjective(const RowMatrix& x, const std::vector<int>& labels, int classes,
                                   const SoftmaxOptions& options, const std::vector<double>& row_weights)
    : dim_(static_cast<int>(x.cols())),
      classes_(classes),
      l2_(options.l2),
      threads_(options.threads),
      data_(std::make_unique<Data>()) {
  if (x.rows() == 0) throw InvalidArgumentError("softmax regression: no training rows");
  if (static_cast<std::size_t>(x.rows()) != labels.size()) {
    throw InvalidArgumentError("softmax regression: " + std::to_string(x.rows()) + " rows but " +
                               std::to_string(labels.size()) + " labels");
  }
  if (classes < 1) throw InvalidArgumentError("softmax regression: no classes");
  for (int y : labels) {
    if (y < 0 || y >= classes) throw InvalidArgumentError("softmax regression: label " + std::to_string(y) + " out of range");
  }
  if (!(options.l2 >= 0.0)) throw InvalidArgumentError("softmax regression: l2 must be non-negative");
  if (!x.allFinite()) throw InvalidArgumentError("softmax regression: features contain a non-finite value");
  if (!row_weights.empty() && row_weights.size() != labels.size()) {
    throw InvalidArgumentError("softmax regression: " + std::to_string(labels.size()) + " rows but " +
                               std::to_string(row_weights.size()) + " row weights");
  }
  data_->weights = row_weights.empty() ? std::vector<double>(labels.size(), 1.0) : row_weights;
  for (double w : data_->weights) {
    if (!(w >= 0.0) || !std::isfinite(w)) throw InvalidArgumentError("softmax regression: row weights must be finite and >= 0");
    data_->weight_sum += w;
  }
  if (!(data_->weight_sum > 0.0)) throw InvalidArgumentError("softmax regression: row weights sum to zero");
  data_->labels = labels;
  data_->single = options.single_precision;
  if (data_->single) {
    data_->xf = x.cast<float>();
  } else {
    data_->xd = x;
  }
}

SoftmaxObjective::~SoftmaxObjective() = default;

double SoftmaxObjective::operator()(const Eigen::VectorXd& theta, Eigen::VectorXd* grad) const {
  const Eigen::Map<const Eigen::MatrixXd> params(theta.data(), dim_ + 1, classes_);
  const Eigen::Index n = static_cast<Eigen::Index>(data_->labels.size());
  const int chunks = static_cast<int>((n + kChunkRows - 1) / kChunkRows);
  std::vector<double> losses(chunks);
  std::vector<Eigen::MatrixXd> grads(chunks);
  const auto run = [&](auto tag, const auto& x) {
    using T = decltype(tag);
    const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic> w = params.topRows(dim_).template cast<T>();
    const Eigen::Matrix<T, 1, Eigen::Dynamic> b = params.row(dim_).template cast<T>();
    // Threads take chunks from a counter; each chunk's result has its own slot.
    std::atomic<int> next{0};
    std::mutex failure_mutex;
    std::exception_ptr failure;
    const auto work = [&] {
      try {
        for (int c = next++; c < chunks; c = next++) {
          const Eigen::Index begin = static_cast<Eigen::Index>(c) * kChunkRows;
          const Eigen::Index count = std::min<Eigen::Index>(kChunkRows, n - begin);
          ChunkTerms<T>(x, begin, count, data_->labels.data() + begin, data_->weights.data() + begin, w, b, &losses[c], &grads[c]);
        }
      } catch (...) {
        const std::lock_guard lock(failure_mutex);
        if (!failure) failure = std::current_exception();
        next = chunks;
      }
    };
    const int hardware = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    const int threads = std::min(chunks, threads_ > 0 ? threads_ : hardware);
    {
      std::vector<std::jthread> helpers;
      for (int t = 1; t < threads; ++t) helpers.emplace_back(work);
      work();
    }  // joins the helpers
    if (failure) std::rethrow_exception(failure);
  };
  if (data_->single) {
    run(float{}, data_->xf);
  } else {
    run(double{}, data_->xd);
  }
  // Chunk order, not thread order: the same sums whatever the thread count.
  double loss = 0.0;
  Eigen::Map<Eigen::MatrixXd> g(grad->data(), dim_ + 1, classes_);
  g.setZero();
  for (int c = 0; c < chunks; ++c) {
    loss += losses[c];
    g += grads[c];
  }
  const double inv_n = 1.0 / data_->weight_sum;
  g *= inv_n;
  g.topRows(dim_) += l2_ * params.topRows(dim_);
  return loss * inv_n + 0.5 * l2_ * params.topRows(dim_).squaredNorm();
}

void SoftmaxModel::Probabilities(const double* x, double* out) const {
  const int d = dim();
  Eigen::Map<Eigen::VectorXd> p(out, classes());
  p.noalias() = weights.topRows(d).transpose() * Eigen::Map<const Eigen::VectorXd>(x, d);
  p += weights.row(d).transpose();
  p = (p.array() - p.maxCoeff()).exp();
  p /= p.sum();
}

SoftmaxModel TrainSoftmax(const RowMatrix& x, const std::vector<int>& labels, int classes,
                          const SoftmaxOptions& options, LbfgsResult* result, const std::vector<double>& row_weights) {
  const SoftmaxObjective objective(x, labels, classes, options, row_weights);
  Eigen::VectorXd theta = Eigen::VectorXd::Zero(objective.parameters());
  const LbfgsResult r = MinimizeLbfgs(
      [&objective](const Eigen::VectorXd& t, Eigen::VectorXd* g) { return objective(t, g); }, &theta, options.lbfgs);
  if (result != nullptr) *result = r;
  SoftmaxModel model;
  model.weights = Eigen::Map<const Eigen::MatrixXd>(theta.data(), x.cols() + 1, classes);
  return model;
}

}  // namespace fruitpipe::classify
