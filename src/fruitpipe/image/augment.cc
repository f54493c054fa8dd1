#include "fruitpipe/image/augment.h"

#include <algorithm>
#include <cmath>

#include <opencv2/core.hpp>

#include "fruitpipe/common/error.h"

namespace fruitpipe::image {
namespace {

// The box [x0, x1) × [y0, y1) in fractions of the width and height, at least one pixel.
cv::Mat Box(const cv::Mat& rgb, double x0, double y0, double x1, double y1) {
  const auto at = [](double f, int size) { return std::clamp(static_cast<int>(std::lround(f * size)), 0, size); };
  const int left = at(x0, rgb.cols), top = at(y0, rgb.rows);
  const int right = std::max(left + 1, at(x1, rgb.cols)), bottom = std::max(top + 1, at(y1, rgb.rows));
  return rgb(cv::Rect(left, top, std::min(right, rgb.cols) - left, std::min(bottom, rgb.rows) - top));
}

}  // namespace

cv::Mat MakeView(const cv::Mat& rgb, View view) {
  if (rgb.empty()) throw InvalidArgumentError("view of an empty image");
  switch (view) {
    case View::kWhole: return rgb;
    case View::kMirror: {
      cv::Mat out;
      cv::flip(rgb, out, 1);
      return out;
    }
    case View::kCenter80: return Box(rgb, 0.1, 0.1, 0.9, 0.9);
    case View::kTopLeft70: return Box(rgb, 0.0, 0.0, 0.7, 0.7);
    case View::kTopRight70: return Box(rgb, 0.3, 0.0, 1.0, 0.7);
    case View::kBottomLeft70: return Box(rgb, 0.0, 0.3, 0.7, 1.0);
    case View::kBottomRight70: return Box(rgb, 0.3, 0.3, 1.0, 1.0);
    case View::kCenter60: return Box(rgb, 0.2, 0.2, 0.8, 0.8);
  }
  throw InvalidArgumentError("unknown view " + std::to_string(static_cast<int>(view)));
}

}  // namespace fruitpipe::image
