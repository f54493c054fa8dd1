// An independent feature extractor used as a test oracle: OpenCV's own image reader and blob
// maker and its ONNX importer, none of fruitpipe's decoding, preprocessing or model code. It
// hard-codes MobileNetV2's recipe (224x224, RGB, pixel/127.5 - 1) instead of reading a card, so
// a mistake in fruitpipe's card handling cannot be mirrored here.
//
// usage: reference_features MODEL.onnx OUTPUT_NAME IMAGE...
// prints one line per image, in argument order: the feature values separated by spaces.
#include <cstdio>

#include <opencv2/dnn.hpp>
#include <opencv2/imgcodecs.hpp>

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s MODEL.onnx OUTPUT_NAME IMAGE...\n", argv[0]);
    return 2;
  }
  try {
    cv::dnn::Net net = cv::dnn::readNetFromONNX(argv[1]);
    for (int i = 3; i < argc; ++i) {
      const cv::Mat bgr = cv::imread(argv[i], cv::IMREAD_COLOR);
      if (bgr.empty()) {
        std::fprintf(stderr, "%s: cannot read image\n", argv[i]);
        return 1;
      }
      // (pixel - 127.5) / 127.5 after a bilinear resize to 224x224, BGR swapped to RGB, NCHW.
      const cv::Mat blob = cv::dnn::blobFromImage(bgr, 1.0 / 127.5, cv::Size(224, 224),
                                                  cv::Scalar(127.5, 127.5, 127.5), /*swapRB=*/true,
                                                  /*crop=*/false, CV_32F);
      net.setInput(blob);
      const cv::Mat out = net.forward(argv[2]);
      const float* f = out.ptr<float>();
      for (std::size_t k = 0; k < out.total(); ++k) std::printf(k ? " %.9g" : "%.9g", f[k]);
      std::printf("\n");
    }
  } catch (const cv::Exception& e) {
    std::fprintf(stderr, "reference_features: %s\n", e.what());
    return 1;
  }
  return 0;
}
