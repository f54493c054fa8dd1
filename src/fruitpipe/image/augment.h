// Views of a photo: the whole image and fixed crops and mirrors of it. The identifier learns
// from a real photo's views (augmentation) and pools its evidence over the first few views of
// a photo it is asked about (docs/formats/classifier.md, "Views"). Each view is a pure
// function of the pixels: the same photo gives the same views, byte for byte, every time.
#pragma once

#include <opencv2/core.hpp>

namespace fruitpipe::image {

enum class View {
  kWhole = 0,     // the image as it is
  kMirror,        // flipped left-right
  kCenter80,      // the central 80 % box (a zoom)
  kTopLeft70,     // 70 % boxes in the four corners
  kTopRight70,
  kBottomLeft70,
  kBottomRight70,
  kCenter60,      // the central 60 % box
};
inline constexpr int kViewCount = 8;

// A view of `rgb` (CV_8UC3); shares pixels with `rgb` for crops, copies for the mirror.
// Preprocess resizes it to the model's input like any photo.
cv::Mat MakeView(const cv::Mat& rgb, View view);

}  // namespace fruitpipe::image
