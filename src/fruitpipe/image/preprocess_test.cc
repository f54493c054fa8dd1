#include "fruitpipe/image/preprocess.h"

#include <vector>

#include <gtest/gtest.h>
#include <opencv2/imgproc.hpp>

#include "fruitpipe/common/error.h"

namespace fruitpipe::image {
namespace {

PreprocessSpec Small(int w, int h) {
  PreprocessSpec spec;
  spec.width = w;
  spec.height = h;
  return spec;
}

TEST(PreprocessTest, ConstantColourGivesExactValues) {
  const cv::Mat rgb(40, 50, CV_8UC3, cv::Scalar(10, 128, 255));
  const PreprocessSpec spec = Small(8, 6);  // MobileNetV2: pixel/127.5 - 1, NCHW, RGB
  std::vector<float> out(spec.TensorSize(), -99.0f);
  Preprocess(rgb, spec, out.data());
  const float expected[3] = {(10 - 127.5f) / 127.5f, (128 - 127.5f) / 127.5f, (255 - 127.5f) / 127.5f};
  for (int c = 0; c < 3; ++c) {
    for (int i = 0; i < 48; ++i) ASSERT_FLOAT_EQ(out[c * 48 + i], expected[c]) << "channel " << c << " at " << i;
  }
  EXPECT_FLOAT_EQ(out[0], -0.92156863f);
  EXPECT_FLOAT_EQ(out[2 * 48], 1.0f);
}

TEST(PreprocessTest, MeanStdAndScalePerChannel) {
  const cv::Mat rgb(4, 4, CV_8UC3, cv::Scalar(100, 50, 200));
  PreprocessSpec spec = Small(4, 4);
  spec.scale = 1.0f / 255.0f;
  spec.mean = {255 * 0.485f, 255 * 0.456f, 255 * 0.406f};  // torchvision ImageNet statistics
  spec.std = {0.229f, 0.224f, 0.225f};
  std::vector<float> out(spec.TensorSize());
  Preprocess(rgb, spec, out.data());
  EXPECT_NEAR(out[0], (100 / 255.0 - 0.485) / 0.229, 1e-5);
  EXPECT_NEAR(out[16], (50 / 255.0 - 0.456) / 0.224, 1e-5);
  EXPECT_NEAR(out[32], (200 / 255.0 - 0.406) / 0.225, 1e-5);
}

TEST(PreprocessTest, ChannelOrderAndLayout) {
  const cv::Mat rgb(2, 3, CV_8UC3, cv::Scalar(1, 2, 3));  // R=1 G=2 B=3
  PreprocessSpec spec = Small(3, 2);
  spec.scale = 1.0f;
  spec.mean = {0, 0, 0};
  std::vector<float> out(spec.TensorSize());

  Preprocess(rgb, spec, out.data());
  EXPECT_EQ(out, std::vector<float>({1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3}));

  spec.rgb = false;  // Caffe-style BGR models: plane 0 is blue
  Preprocess(rgb, spec, out.data());
  EXPECT_EQ(out, std::vector<float>({3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1}));

  spec.nchw = false;  // NHWC interleaves, still in BGR order
  Preprocess(rgb, spec, out.data());
  EXPECT_EQ(out, std::vector<float>({3, 2, 1, 3, 2, 1, 3, 2, 1, 3, 2, 1, 3, 2, 1, 3, 2, 1}));

  spec.mean = {3, 2, 1};  // mean/std are indexed by the model's channel order, here B,G,R
  Preprocess(rgb, spec, out.data());
  EXPECT_EQ(out, std::vector<float>(18, 0.0f));
}

TEST(PreprocessTest, ResizesBilinearlyAndPlacesPixels) {
  cv::Mat rgb(100, 100, CV_8UC3);
  cv::RNG(3).fill(rgb, cv::RNG::UNIFORM, 0, 256);
  PreprocessSpec spec = Small(224, 224);
  spec.scale = 1.0f;
  spec.mean = {0, 0, 0};
  std::vector<float> out(spec.TensorSize());
  Preprocess(rgb, spec, out.data());
  cv::Mat expected;
  cv::resize(rgb, expected, cv::Size(224, 224), 0, 0, cv::INTER_LINEAR);
  for (int y : {0, 17, 223}) {
    for (int x : {0, 100, 223}) {
      const cv::Vec3b p = expected.at<cv::Vec3b>(y, x);
      for (int c = 0; c < 3; ++c) EXPECT_EQ(out[c * 224 * 224 + y * 224 + x], p[c]) << y << "," << x;
    }
  }
}

TEST(PreprocessTest, AcceptsRegionsOfLargerImages) {
  cv::Mat big(10, 10, CV_8UC3, cv::Scalar(0, 0, 0));
  big(cv::Rect(2, 3, 4, 5)).setTo(cv::Scalar(9, 9, 9));
  PreprocessSpec spec = Small(4, 5);  // same size: no resize, rows read with their stride
  spec.scale = 1.0f;
  spec.mean = {0, 0, 0};
  std::vector<float> out(spec.TensorSize());
  Preprocess(big(cv::Rect(2, 3, 4, 5)), spec, out.data());
  EXPECT_EQ(out, std::vector<float>(60, 9.0f));
}

TEST(PreprocessTest, RejectsWrongPixelType) {
  const cv::Mat gray(4, 4, CV_8UC1);
  std::vector<float> out(3 * 16);
  EXPECT_THROW(Preprocess(gray, Small(4, 4), out.data()), InvalidArgumentError);
  EXPECT_THROW(Preprocess(cv::Mat(), Small(4, 4), out.data()), InvalidArgumentError);
}

}  // namespace
}  // namespace fruitpipe::image
