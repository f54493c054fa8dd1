// Multinomial logistic regression (softmax) with an L2 penalty on the weights (not the
// biases), trained full-batch with L-BFGS from zero weights: no randomness anywhere.
//
// The objective is evaluated over fixed 2048-row chunks on several threads (each chunk's
// GEMMs single-threaded) and the chunk sums are added in chunk order, so the result does not
// depend on the number of threads.
#pragma once

#include <memory>
#include <vector>

#include <Eigen/Dense>

#include "fruitpipe/classify/lbfgs.h"

namespace fruitpipe::classify {

using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

struct SoftmaxOptions {
  double l2 = 1e-3;  // λ in weighted-mean cross-entropy + λ/2 ‖W‖²; features are expected standardized
  // float GEMMs and exponentials (about 2× faster); sums, weights and the optimiser stay double.
  bool single_precision = true;
  int threads = 0;  // 0: std::thread::hardware_concurrency()
  LbfgsOptions lbfgs{.history = 10, .max_iterations = 500, .gradient_tolerance = 1e-5, .value_tolerance = 1e-10};
};

// Parameters θ are a (dim+1) × classes column-major matrix: rows 0..dim-1 weights, row dim
// the biases. Labels are class indices in [0, classes).
class SoftmaxObjective {
 public:
  // row_weights: one non-negative weight per row (empty: all 1); the cross-entropy is their
  // weighted mean, so scaling every weight changes nothing.
  SoftmaxObjective(const RowMatrix& x, const std::vector<int>& labels, int classes, const SoftmaxOptions& options,
                   const std::vector<double>& row_weights = {});
  ~SoftmaxObjective();
  SoftmaxObjective(const SoftmaxObjective&) = delete;
  SoftmaxObjective& operator=(const SoftmaxObjective&) = delete;

  int parameters() const { return (dim_ + 1) * classes_; }
  // Weighted-mean cross-entropy + λ/2 ‖W‖²; writes the gradient.
  double operator()(const Eigen::VectorXd& theta, Eigen::VectorXd* grad) const;

 private:
  struct Data;
  int dim_;
  int classes_;
  double l2_;
  int threads_;
  std::unique_ptr<Data> data_;  // features in the chosen precision
};

struct SoftmaxModel {
  Eigen::MatrixXd weights;  // (dim+1) × classes, last row the biases

  int dim() const { return static_cast<int>(weights.rows()) - 1; }
  int classes() const { return static_cast<int>(weights.cols()); }
  // Class probabilities for one row of dim features; out has classes() values.
  void Probabilities(const double* x, double* out) const;
};

SoftmaxModel TrainSoftmax(const RowMatrix& x, const std::vector<int>& labels, int classes,
                          const SoftmaxOptions& options, LbfgsResult* result = nullptr,
                          const std::vector<double>& row_weights = {});

}  // namespace fruitpipe::classify
