#include "fruitpipe/classify/logistic_regression.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "fruitpipe/classify/lbfgs.h"
#include "fruitpipe/classify/test_blobs.h"
#include "fruitpipe/common/error.h"

namespace fruitpipe::classify {
namespace {

using testing::MakeBlobs;

Eigen::VectorXd RandomVector(int n, double scale, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  Eigen::VectorXd v(n);
  for (double& x : v) x = scale * normal(rng);
  return v;
}

// Central differences along every coordinate against the analytic gradient.
void ExpectGradientMatches(bool single_precision, double h, double tolerance) {
  const auto b = MakeBlobs(4, 5, 30, 1.0, 1.0, 1);
  SoftmaxOptions o;
  o.l2 = 0.05;
  o.single_precision = single_precision;
  const SoftmaxObjective f(b.x, b.y, 4, o);
  const Eigen::VectorXd theta = RandomVector(f.parameters(), 0.5, 2);
  Eigen::VectorXd grad(f.parameters()), scratch(f.parameters());
  f(theta, &grad);
  for (int i = 0; i < f.parameters(); ++i) {
    Eigen::VectorXd plus = theta, minus = theta;
    plus(i) += h;
    minus(i) -= h;
    const double numeric = (f(plus, &scratch) - f(minus, &scratch)) / (2 * h);
    EXPECT_NEAR(grad(i), numeric, tolerance * std::max(1.0, std::abs(numeric))) << "parameter " << i;
  }
}

TEST(SoftmaxObjectiveTest, GradientMatchesFiniteDifferences) { ExpectGradientMatches(false, 1e-6, 1e-7); }

TEST(SoftmaxObjectiveTest, SinglePrecisionGradientMatchesFiniteDifferences) {
  ExpectGradientMatches(true, 1e-3, 1e-4);
}

TEST(SoftmaxObjectiveTest, ValueAtZeroIsLogClasses) {
  const auto b = MakeBlobs(7, 3, 10, 1.0, 1.0, 3);
  const SoftmaxObjective f(b.x, b.y, 7, SoftmaxOptions{.single_precision = false});
  Eigen::VectorXd grad(f.parameters());
  EXPECT_NEAR(f(Eigen::VectorXd::Zero(f.parameters()), &grad), std::log(7.0), 1e-12);
}

TEST(SoftmaxObjectiveTest, ThreadCountDoesNotChangeTheSums) {
  const auto b = MakeBlobs(5, 6, 1500, 1.0, 1.0, 4);  // 7500 rows: four chunks
  const Eigen::VectorXd theta = RandomVector(7 * 5, 0.3, 5);
  for (bool single : {false, true}) {
    const SoftmaxObjective one(b.x, b.y, 5, SoftmaxOptions{.single_precision = single, .threads = 1});
    const SoftmaxObjective three(b.x, b.y, 5, SoftmaxOptions{.single_precision = single, .threads = 3});
    Eigen::VectorXd g1(35), g3(35);
    EXPECT_EQ(one(theta, &g1), three(theta, &g3));
    EXPECT_EQ(g1, g3);
  }
}

TEST(SoftmaxObjectiveTest, RejectsBadInput) {
  const auto b = MakeBlobs(3, 2, 5, 1.0, 1.0, 6);
  EXPECT_THROW(SoftmaxObjective(b.x, std::vector<int>(14, 0), 3, {}), InvalidArgumentError);
  std::vector<int> y = b.y;
  y[3] = 3;
  EXPECT_THROW(SoftmaxObjective(b.x, y, 3, {}), InvalidArgumentError);
  RowMatrix x = b.x;
  x(2, 1) = NAN;
  EXPECT_THROW(SoftmaxObjective(x, b.y, 3, {}), InvalidArgumentError);
}

TEST(LbfgsTest, MinimizesRosenbrock) {
  const Objective rosenbrock = [](const Eigen::VectorXd& x, Eigen::VectorXd* g) {
    const double a = 1 - x(0), b = x(1) - x(0) * x(0);
    (*g)(0) = -2 * a - 400 * x(0) * b;
    (*g)(1) = 200 * b;
    return a * a + 100 * b * b;
  };
  Eigen::VectorXd x(2);
  x << -1.2, 1.0;
  const LbfgsResult r = MinimizeLbfgs(rosenbrock, &x, {.gradient_tolerance = 1e-8, .value_tolerance = 0});
  EXPECT_TRUE(r.converged) << r.stop_reason;
  EXPECT_EQ(r.stop_reason, "gradient");
  EXPECT_NEAR(x(0), 1.0, 1e-6);
  EXPECT_NEAR(x(1), 1.0, 1e-6);
  EXPECT_LT(r.iterations, 100);
}

TEST(LbfgsTest, SolvesIllConditionedQuadratic) {
  const int n = 50;
  Eigen::VectorXd diag(n);
  for (int i = 0; i < n; ++i) diag(i) = std::pow(10.0, 4.0 * i / (n - 1));  // condition 1e4
  const Eigen::VectorXd target = RandomVector(n, 1.0, 7);
  const Objective quad = [&](const Eigen::VectorXd& x, Eigen::VectorXd* g) {
    const Eigen::VectorXd d = x - target;
    *g = diag.cwiseProduct(d);
    return 0.5 * d.dot(*g);
  };
  Eigen::VectorXd x = Eigen::VectorXd::Zero(n);
  const LbfgsResult r = MinimizeLbfgs(quad, &x, {.gradient_tolerance = 1e-7, .value_tolerance = 0});
  EXPECT_TRUE(r.converged) << r.stop_reason << " after " << r.iterations;
  EXPECT_LT((x - target).cwiseProduct(diag).lpNorm<Eigen::Infinity>(), 1e-7);
  EXPECT_LT((x - target).lpNorm<Eigen::Infinity>(), 1e-7);
}

TEST(TrainSoftmaxTest, SeparableBlobsReach99Percent) {
  const auto train = MakeBlobs(10, 8, 200, 3.0, 1.0, 8);
  const auto test = MakeBlobs(10, 8, 100, 0.0, 1.0, 9, &train.centers);
  LbfgsResult r;
  const SoftmaxModel m = TrainSoftmax(train.x, train.y, 10, {}, &r);
  EXPECT_TRUE(r.converged) << r.stop_reason;
  EXPECT_LE(r.gradient_max, 1e-4);
  int correct = 0;
  Eigen::VectorXd p(10);
  for (int i = 0; i < test.x.rows(); ++i) {
    m.Probabilities(test.x.row(i).data(), p.data());
    EXPECT_NEAR(p.sum(), 1.0, 1e-12);
    Eigen::Index best = 0;
    p.maxCoeff(&best);
    correct += best == test.y[i];
  }
  EXPECT_GT(correct, 0.99 * test.x.rows());
}

TEST(TrainSoftmaxTest, OptimumHasZeroGradientInDoublePrecision) {
  const auto b = MakeBlobs(5, 4, 60, 1.0, 1.0, 10);  // overlapping: a finite, interior optimum
  SoftmaxOptions o{.l2 = 0.01, .single_precision = false};
  o.lbfgs.gradient_tolerance = 1e-9;
  o.lbfgs.value_tolerance = 0;
  LbfgsResult r;
  const SoftmaxModel m = TrainSoftmax(b.x, b.y, 5, o, &r);
  EXPECT_TRUE(r.converged) << r.stop_reason;
  const SoftmaxObjective f(b.x, b.y, 5, o);
  const Eigen::VectorXd theta = m.weights.reshaped();
  Eigen::VectorXd g(theta.size());
  const double best = f(theta, &g);
  EXPECT_LE(g.lpNorm<Eigen::Infinity>(), 1e-9);
  // Any nearby point is worse.
  for (std::uint64_t seed : {11, 12, 13}) {
    EXPECT_GT(f(theta + RandomVector(theta.size(), 1e-3, seed), &g), best);
  }
}

TEST(TrainSoftmaxTest, Deterministic) {
  const auto b = MakeBlobs(6, 5, 100, 1.5, 1.0, 14);
  const SoftmaxModel a = TrainSoftmax(b.x, b.y, 6, {});
  const SoftmaxModel c = TrainSoftmax(b.x, b.y, 6, {});
  EXPECT_EQ(a.weights, c.weights);
}

}  // namespace
}  // namespace fruitpipe::classify
