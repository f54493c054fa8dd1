#include "fruitpipe/pca/symmetric_eigen.h"

#include <limits>
#include <string>

#include <gtest/gtest.h>

#include "fruitpipe/common/error.h"

namespace fruitpipe::pca {
namespace {

Eigen::MatrixXd RandomSymmetric(int n, unsigned seed) {
  std::srand(seed);
  const Eigen::MatrixXd x = Eigen::MatrixXd::Random(n + 7, n);
  return x.transpose() * x;
}

// Checks A·V = V·diag(λ), VᵀV = I and λ against Eigen's full solver, for the leading k.
void ExpectLeadingPairs(const Eigen::MatrixXd& a, int k) {
  const SymmetricEigen eig(a);
  const Eigen::VectorXd values = eig.Eigenvalues();
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> reference(a);
  const Eigen::VectorXd expected = reference.eigenvalues().reverse();
  const double scale = expected.cwiseAbs().maxCoeff();
  ASSERT_EQ(values.size(), a.rows());
  EXPECT_LT((values - expected).cwiseAbs().maxCoeff(), 1e-10 * scale);
  for (int i = 1; i < values.size(); ++i) EXPECT_GE(values(i - 1), values(i));

  const Eigen::MatrixXd v = eig.LeadingEigenvectors(k);
  ASSERT_EQ(v.rows(), a.rows());
  ASSERT_EQ(v.cols(), k);
  const Eigen::MatrixXd residual = a * v - v * values.head(k).asDiagonal();
  EXPECT_LT(residual.cwiseAbs().maxCoeff(), 1e-9 * scale);
  EXPECT_LT((v.transpose() * v - Eigen::MatrixXd::Identity(k, k)).cwiseAbs().maxCoeff(), 1e-10);
}

TEST(SymmetricEigenTest, LeadingPairsOfRandomMatrices) {
  for (int n : {1, 2, 3, 17, 64, 200}) {
    for (int k : {1, (n + 1) / 2, n}) {
      SCOPED_TRACE("n=" + std::to_string(n) + " k=" + std::to_string(k));
      ExpectLeadingPairs(RandomSymmetric(n, 100u + static_cast<unsigned>(n)), k);
    }
  }
}

TEST(SymmetricEigenTest, RepeatedEigenvaluesGiveOrthonormalVectors) {
  // Rank-2 matrix plus a multiple of the identity: eigenvalue 3 repeated n-2 times.
  const int n = 40;
  Eigen::MatrixXd u = Eigen::MatrixXd::Random(n, 2);
  const Eigen::MatrixXd a = 3.0 * Eigen::MatrixXd::Identity(n, n) + u * u.transpose();
  ExpectLeadingPairs(a, 10);
  const Eigen::VectorXd values = SymmetricEigen(a).Eigenvalues();
  for (int i = 2; i < n; ++i) EXPECT_NEAR(values(i), 3.0, 1e-12);
}

TEST(SymmetricEigenTest, ReadsOnlyTheUpperTriangle) {
  Eigen::MatrixXd a = RandomSymmetric(30, 7);
  const Eigen::VectorXd expected = SymmetricEigen(a).Eigenvalues();
  a.triangularView<Eigen::StrictlyLower>().setConstant(1e6);
  EXPECT_EQ(SymmetricEigen(a).Eigenvalues(), expected);
}

TEST(SymmetricEigenTest, RejectsBadShapesAndCounts) {
  EXPECT_THROW(SymmetricEigen(Eigen::MatrixXd(0, 0)), InvalidArgumentError);
  EXPECT_THROW(SymmetricEigen(Eigen::MatrixXd::Zero(3, 4)), InvalidArgumentError);
  const SymmetricEigen eig(RandomSymmetric(5, 1));
  EXPECT_THROW(eig.LeadingEigenvectors(0), InvalidArgumentError);
  EXPECT_THROW(eig.LeadingEigenvectors(6), InvalidArgumentError);
}

TEST(SymmetricEigenTest, NonFiniteInputIsAnError) {
  Eigen::MatrixXd a = RandomSymmetric(8, 3);
  a(2, 5) = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THROW(SymmetricEigen{a}, InvalidArgumentError);
}

}  // namespace
}  // namespace fruitpipe::pca
