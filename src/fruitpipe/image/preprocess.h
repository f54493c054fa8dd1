// Turning a decoded RGB image into the model's input tensor, exactly as the model card says.
#pragma once

#include <array>
#include <string>

#include <opencv2/core.hpp>

namespace fruitpipe::image {

// value = (pixel - mean[c]) * scale / std[c], channel order and layout as given.
struct PreprocessSpec {
  int width = 224;
  int height = 224;
  bool rgb = true;             // false: BGR channel order
  bool nchw = true;            // false: NHWC
  float scale = 1.0f / 127.5f;
  std::array<float, 3> mean{127.5f, 127.5f, 127.5f};
  std::array<float, 3> std{1.0f, 1.0f, 1.0f};
  int interpolation = 1;       // cv::INTER_LINEAR (what Keras/PIL bilinear resize approximates)

  std::size_t TensorSize() const { return static_cast<std::size_t>(3) * width * height; }
};

// Resizes `rgb` (CV_8UC3, RGB) to the spec's size and writes TensorSize() floats to `out`.
void Preprocess(const cv::Mat& rgb, const PreprocessSpec& spec, float* out);

}  // namespace fruitpipe::image
