#include "fruitpipe/pca/symmetric_eigen.h"

#include <algorithm>
#include <string>
#include <vector>

#include <lapacke.h>
#include <omp.h>

#include "fruitpipe/common/error.h"

namespace fruitpipe::pca {
namespace {

void Check(lapack_int info, const char* routine) {
  if (info != 0) {
    throw Error(std::string("symmetric eigendecomposition: LAPACK ") + routine + " failed (info " +
                std::to_string(info) + ")");
  }
}

// OpenBLAS's OpenMP build runs each call on omp_get_max_threads() threads of the caller. The
// eigensolver stays on one: on an idle 2-core machine a second thread saves 0.05 s of 0.22 s
// (1280 features, k = 290), but with the other core busy the team stalls at each of dsytrd's
// ~n parallel regions (a 0.3 s decomposition took 5 s beside a compile; docs/engine.md on
// oversubscription).
class OneBlasThread {
 public:
  OneBlasThread() : saved_(omp_get_max_threads()) { omp_set_num_threads(1); }
  ~OneBlasThread() { omp_set_num_threads(saved_); }
  OneBlasThread(const OneBlasThread&) = delete;
  OneBlasThread& operator=(const OneBlasThread&) = delete;

 private:
  int saved_;
};

}  // namespace

SymmetricEigen::SymmetricEigen(Eigen::MatrixXd a) : reflectors_(std::move(a)) {
  const lapack_int n = static_cast<lapack_int>(reflectors_.rows());
  if (n < 1 || reflectors_.cols() != n) {
    throw InvalidArgumentError("symmetric eigendecomposition: needs a non-empty square matrix, got " +
                               std::to_string(reflectors_.rows()) + " × " + std::to_string(reflectors_.cols()));
  }
  if (!reflectors_.allFinite()) throw InvalidArgumentError("symmetric eigendecomposition: the matrix has non-finite values");
  diagonal_.resize(n);
  off_diagonal_.resize(std::max<lapack_int>(1, n - 1));
  tau_.resize(std::max<lapack_int>(1, n - 1));
  const OneBlasThread one_thread;
  Check(LAPACKE_dsytrd(LAPACK_COL_MAJOR, 'U', n, reflectors_.data(), n, diagonal_.data(), off_diagonal_.data(),
                       tau_.data()),
        "dsytrd");
}

Eigen::VectorXd SymmetricEigen::Eigenvalues() const {
  const lapack_int n = size();
  Eigen::VectorXd values = diagonal_;  // dsterf overwrites both inputs
  Eigen::VectorXd off = off_diagonal_;
  const OneBlasThread one_thread;
  Check(LAPACKE_dsterf(n, values.data(), off.data()), "dsterf");
  return values.reverse();  // dsterf sorts ascending
}

Eigen::MatrixXd SymmetricEigen::LeadingEigenvectors(int k) const {
  const lapack_int n = size();
  if (k < 1 || k > n) {
    throw InvalidArgumentError("symmetric eigendecomposition: asked for " + std::to_string(k) +
                               " eigenvectors of a " + std::to_string(n) + " × " + std::to_string(n) + " matrix");
  }
  // dstemr wants the off-diagonal in an n-long array (the last entry is workspace).
  Eigen::VectorXd d = diagonal_;
  Eigen::VectorXd e = Eigen::VectorXd::Zero(n);
  e.head(n - 1) = off_diagonal_.head(n - 1);
  Eigen::VectorXd values(n);
  Eigen::MatrixXd vectors(n, k);
  std::vector<lapack_int> support(2 * static_cast<std::size_t>(k));
  lapack_int found = 0;
  lapack_logical try_high_accuracy = 1;
  const OneBlasThread one_thread;
  // Eigenvalues il..iu in ascending order: the k largest are n-k+1..n.
  Check(LAPACKE_dstemr(LAPACK_COL_MAJOR, 'V', 'I', n, d.data(), e.data(), 0.0, 0.0, n - k + 1, n, &found,
                       values.data(), vectors.data(), n, k, support.data(), &try_high_accuracy),
        "dstemr");
  if (found != k) {
    throw Error("symmetric eigendecomposition: LAPACK dstemr found " + std::to_string(found) + " of " +
                std::to_string(k) + " eigenvectors");
  }
  // vectors holds eigenvectors of T; Q·vectors are those of the original matrix.
  if (n > 1) {
    Check(LAPACKE_dormtr(LAPACK_COL_MAJOR, 'L', 'U', 'N', n, k, reflectors_.data(), n, tau_.data(),
                         vectors.data(), n),
          "dormtr");
  }
  return vectors.rowwise().reverse();
}

}  // namespace fruitpipe::pca
