// A compact L-BFGS minimiser (Nocedal & Wright, Algorithms 7.4 and 7.5) with a bracketing
// line search for the weak Wolfe conditions. Deterministic: no randomness, the same inputs
// give the same iterates. Used for the softmax regression; about a hundred lines here rather
// than a new dependency (Debian's liblbfgs is a C API over its own vectors, liblbfgspp-dev an
// early 0.1.0 release).
#pragma once

#include <functional>
#include <string>

#include <Eigen/Dense>

namespace fruitpipe::classify {

struct LbfgsOptions {
  int history = 10;                // (s, y) pairs kept
  int max_iterations = 1000;
  double gradient_tolerance = 1e-5;   // stop when max |g_i| <= this
  double value_tolerance = 1e-12;     // or when f decreased by <= this · max(1, |f|)
  int max_line_search = 40;           // function evaluations per line search
};

struct LbfgsResult {
  int iterations = 0;
  int evaluations = 0;
  bool converged = false;  // a tolerance was met (not the iteration limit or a failed search)
  double value = 0.0;
  double gradient_max = 0.0;  // max |g_i| at the result
  std::string stop_reason;    // "gradient", "value", "max_iterations", "line_search"
};

// Returns f(x) and writes ∇f(x) to *grad (already sized like x).
using Objective = std::function<double(const Eigen::VectorXd& x, Eigen::VectorXd* grad)>;

// Minimises f from *x (updated in place to the best point found).
LbfgsResult MinimizeLbfgs(const Objective& f, Eigen::VectorXd* x, const LbfgsOptions& options = {});

}  // namespace fruitpipe::classify
