// Unknown-fruit detection by distance: a prediction is accepted only when the input lies
// near the predicted class (docs/formats/classifier.md).
//
// Distance: d(z, c) = sqrt(mean_j (z_j - μ_cj)² / v_j) in standardized feature space, with μ_c
// the class centroid and v the pooled within-class variance per feature (a Mahalanobis
// distance with a shared diagonal covariance); about 1 for a typical member of the class.
// The input is unknown when d(z, predicted) > distance_threshold[predicted] (reason
// "far_from_class"); FruitIdentifier adds its confidence and no-known-fruit rules.
#pragma once

#include <string>
#include <vector>

#include <Eigen/Dense>

#include "fruitpipe/classify/logistic_regression.h"

namespace fruitpipe::classify {

struct UnknownDetectorOptions {
  double distance_quantile = 0.99;  // of a class's own training distances ...
  double distance_margin = 1.25;    // ... times this is the class's threshold
  int min_class_rows = 10;          // fewer rows: the quantile over all classes' rows is used
  // The highest min_confidence calibration may choose. Held-out blocks of a real-photo folder
  // are near-copies of its training photos (shots of the same shelf), so calibration alone is
  // optimistic; at 0.5, 18 % of realworld-dev/Validation was flagged, at 0.3 8 %.
  double max_min_confidence = 0.3;
};

struct UnknownDetector {
  Eigen::MatrixXd centroids;           // classes × dim
  Eigen::VectorXd within_variance;     // dim
  Eigen::VectorXd distance_threshold;  // classes
  double min_confidence = 0.0;

  double Distance(const double* z, int c) const;
};

// Centroids, pooled variances and per-class distance thresholds from standardized rows.
// min_confidence is left at 0: FruitIdentifier::Train calibrates it on held-out photos.
UnknownDetector FitUnknownDetector(const RowMatrix& z, const std::vector<int>& labels, int classes,
                                   const UnknownDetectorOptions& options);

// Linear interpolation between order statistics (numpy's default); values is reordered.
double Quantile(std::vector<double> values, double q);

}  // namespace fruitpipe::classify
