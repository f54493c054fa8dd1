#include "fruitpipe/classify/lbfgs.h"

#include <cmath>
#include <deque>
#include <limits>
#include <vector>

namespace fruitpipe::classify {
namespace {

constexpr double kArmijo = 1e-4;    // sufficient decrease (c1)
constexpr double kCurvature = 0.9;  // weak Wolfe curvature (c2), the usual choice for quasi-Newton

struct Pair {
  Eigen::VectorXd s, y;
  double rho;  // 1 / sᵀy
};

// d = -H g by the two-loop recursion, H0 = (sᵀy / yᵀy) I from the newest pair.
void Direction(const std::deque<Pair>& history, const Eigen::VectorXd& g, Eigen::VectorXd* d) {
  *d = -g;
  std::vector<double> alpha(history.size());
  for (std::size_t i = history.size(); i-- > 0;) {
    alpha[i] = history[i].rho * history[i].s.dot(*d);
    *d -= alpha[i] * history[i].y;
  }
  if (!history.empty()) {
    const Pair& last = history.back();
    *d *= 1.0 / (last.rho * last.y.squaredNorm());
  }
  for (std::size_t i = 0; i < history.size(); ++i) {
    const double beta = history[i].rho * history[i].y.dot(*d);
    *d += (alpha[i] - beta) * history[i].s;
  }
}

}  // namespace

LbfgsResult MinimizeLbfgs(const Objective& f, Eigen::VectorXd* x_io, const LbfgsOptions& options) {
  Eigen::VectorXd& x = *x_io;
  LbfgsResult r;
  Eigen::VectorXd g(x.size()), d(x.size()), x_new(x.size()), g_new(x.size());
  double fx = f(x, &g);
  r.evaluations = 1;
  std::deque<Pair> history;
  r.stop_reason = "max_iterations";
  if (g.lpNorm<Eigen::Infinity>() <= options.gradient_tolerance) {
    r.converged = true;
    r.stop_reason = "gradient";
  }
  while (!r.converged && r.iterations < options.max_iterations) {
    Direction(history, g, &d);
    double slope = d.dot(g);
    if (!(slope < 0.0)) {  // rounding made H lose positive definiteness: restart from -g
      history.clear();
      d = -g;
      slope = -g.squaredNorm();
    }
    // The first step has no curvature information: a unit-length move.
    double step = history.empty() ? std::min(1.0, 1.0 / d.norm()) : 1.0;
    double lo = 0.0, hi = std::numeric_limits<double>::infinity();
    double f_new = 0.0;
    bool found = false;
    for (int ls = 0; ls < options.max_line_search; ++ls) {
      x_new = x + step * d;
      f_new = f(x_new, &g_new);
      ++r.evaluations;
      if (!std::isfinite(f_new) || f_new > fx + kArmijo * step * slope) {
        hi = step;
      } else if (g_new.dot(d) < kCurvature * slope) {
        lo = step;
      } else {
        found = true;
        break;
      }
      step = std::isinf(hi) ? 2.0 * step : 0.5 * (lo + hi);
    }
    if (!found) {
      if (lo == 0.0) {  // no step decreased f: we are at the limit of floating point
        r.stop_reason = "line_search";
        break;
      }
      x_new = x + lo * d;  // decreases f, only curvature was not reached
      f_new = f(x_new, &g_new);
      ++r.evaluations;
    }
    Pair p{x_new - x, g_new - g, 0.0};
    const double sy = p.s.dot(p.y);
    const double f_old = fx;
    x.swap(x_new);
    g.swap(g_new);
    fx = f_new;
    ++r.iterations;
    if (sy > std::numeric_limits<double>::epsilon() * p.y.squaredNorm()) {
      p.rho = 1.0 / sy;
      history.push_back(std::move(p));
      if (static_cast<int>(history.size()) > options.history) history.pop_front();
    }
    if (g.lpNorm<Eigen::Infinity>() <= options.gradient_tolerance) {
      r.converged = true;
      r.stop_reason = "gradient";
    } else if (f_old - fx <= options.value_tolerance * std::max(1.0, std::abs(fx))) {
      r.converged = true;
      r.stop_reason = "value";
    }
  }
  r.value = fx;
  r.gradient_max = g.lpNorm<Eigen::Infinity>();
  return r;
}

}  // namespace fruitpipe::classify
