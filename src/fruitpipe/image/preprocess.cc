#include "fruitpipe/image/preprocess.h"

#include <opencv2/imgproc.hpp>

#include "fruitpipe/common/error.h"

namespace fruitpipe::image {

void Preprocess(const cv::Mat& rgb, const PreprocessSpec& spec, float* out) {
  if (rgb.type() != CV_8UC3 || rgb.empty()) {
    throw InvalidArgumentError("preprocess: expected a non-empty 8-bit RGB image, got OpenCV type " +
                               std::to_string(rgb.type()));
  }
  if (spec.width <= 0 || spec.height <= 0) {
    throw InvalidArgumentError("preprocess: target size " + std::to_string(spec.width) + "x" +
                               std::to_string(spec.height) + " is empty");
  }
  cv::Mat resized;
  const cv::Mat* src = &rgb;
  if (rgb.cols != spec.width || rgb.rows != spec.height) {
    cv::resize(rgb, resized, cv::Size(spec.width, spec.height), 0, 0, spec.interpolation);
    src = &resized;
  }

  // An 8-bit input has 256 possible values per channel, so normalisation is a table lookup:
  // one load per output float, and exactly the spec's formula evaluated once per value.
  float lut[3][256];
  int source_channel[3];
  for (int c = 0; c < 3; ++c) {
    source_channel[c] = spec.rgb ? c : 2 - c;
    for (int v = 0; v < 256; ++v) {
      lut[c][v] = (static_cast<float>(v) - spec.mean[c]) * spec.scale / spec.std[c];
    }
  }

  const std::size_t plane = static_cast<std::size_t>(spec.width) * spec.height;
  for (int y = 0; y < spec.height; ++y) {
    const std::uint8_t* p = src->ptr<std::uint8_t>(y);
    const std::size_t row = static_cast<std::size_t>(y) * spec.width;
    if (spec.nchw) {
      for (int c = 0; c < 3; ++c) {
        const float* table = lut[c];
        const std::uint8_t* q = p + source_channel[c];
        float* dst = out + c * plane + row;
        for (int x = 0; x < spec.width; ++x) dst[x] = table[q[3 * x]];
      }
    } else {
      float* dst = out + row * 3;
      for (int x = 0; x < spec.width; ++x) {
        for (int c = 0; c < 3; ++c) dst[3 * x + c] = lut[c][p[3 * x + source_channel[c]]];
      }
    }
  }
}

}  // namespace fruitpipe::image
