// The reference backend: OpenCV DNN's ONNX importer. Slower than oneDNN, but an independent
// implementation of every operator, which is what the backend comparison tests need.
#include <cstring>
#include <vector>

#include <opencv2/core/utility.hpp>
#include <opencv2/dnn.hpp>
#include <opencv2/dnn/all_layers.hpp>

#include "fruitpipe/common/error.h"
#include "fruitpipe/model/featurizer.h"

namespace fruitpipe::model {
namespace {

// cv::dnn::PoolingLayer::type values (modules/dnn/src/layers/pooling_layer.cpp: MAX, AVE, ...).
constexpr int kAveragePooling = 1;

// "auto": the output of the last global average pooling, i.e. the pooled feature vector of a
// classification network whether or not its classifier head is still attached.
std::string LastGlobalAveragePool(cv::dnn::Net& net) {
  const std::vector<std::string> names = net.getLayerNames();
  for (auto it = names.rbegin(); it != names.rend(); ++it) {
    const cv::Ptr<cv::dnn::Layer> layer = net.getLayer(net.getLayerId(*it));
    const auto pool = layer.dynamicCast<cv::dnn::PoolingLayer>();
    if (pool && pool->globalPooling && pool->type == kAveragePooling) return *it;
  }
  return "";
}

class OpenCvFeaturizer final : public Featurizer {
 public:
  OpenCvFeaturizer(const ModelCard& card, const FeaturizerOptions& options) : card_(card), spec_(card.input) {
    if (options.precision != "fp32") {
      throw InvalidArgumentError("precision '" + options.precision + "' needs --backend onednn (the opencv backend is fp32 only)");
    }
    if (options.input_size > 0) spec_.width = spec_.height = options.input_size;
    try {
      net_ = cv::dnn::readNetFromONNX(card.file);
    } catch (const cv::Exception& e) {
      throw InvalidArgumentError("model file " + card.file + ": OpenCV DNN cannot load it: " + e.err);
    }
    net_.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
    net_.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
    // Process-wide in OpenCV (its thread pool is global); 0 in OpenCV would mean "no threads".
    // getNumberOfCPUs honours the process's CPU affinity and cgroup quota.
    cv::setNumThreads(options.threads > 0 ? options.threads : cv::getNumberOfCPUs());

    output_ = card.output_name;
    if (output_ == "auto") {
      output_ = LastGlobalAveragePool(net_);
      if (output_.empty()) {
        throw InvalidArgumentError("model card " + card.card_path +
                                   ": output.name is \"auto\" but the model has no GlobalAveragePool");
      }
    } else if (net_.getLayerId(output_) < 0) {
      // Intermediate tensors are reachable through the node that produced them.
      const std::string node = "onnx_node!" + output_;
      if (net_.getLayerId(node) < 0) {
        std::string outputs;
        for (const auto& o : net_.getUnconnectedOutLayersNames()) outputs += (outputs.empty() ? "" : ", ") + o;
        throw InvalidArgumentError("model card " + card.card_path + ": output.name '" + output_ +
                                   "' is not in the model (graph outputs: " + outputs + ")");
      }
      output_ = node;
    }

    // One image through the graph now, so a wrong input name, size or dim fails at startup with
    // the card named, not halfway through a run.
    const std::vector<float> zeros(spec_.TensorSize(), 0.0f);
    try {
      cv::Mat result = Forward(zeros.data(), 1);
      if (result.total() != static_cast<std::size_t>(card.dim)) {
        throw InvalidArgumentError("model card " + card.card_path + ": output '" + card.output_name + "' has " +
                                   std::to_string(result.total()) + " values per image but output.dim is " +
                                   std::to_string(card.dim));
      }
    } catch (const cv::Exception& e) {
      throw InvalidArgumentError("model card " + card.card_path + ": OpenCV DNN cannot run the model on input '" +
                                 card.input_name + "' of " + std::to_string(spec_.width) + "x" +
                                 std::to_string(spec_.height) + ": " + e.err);
    }
  }

  std::string backend_name() const override { return "opencv"; }
  int dim() const override { return card_.dim; }
  const image::PreprocessSpec& input_spec() const override { return spec_; }

  void Run(const float* input, int batch, float* output) override {
    if (batch <= 0) return;
    cv::Mat result;
    try {
      result = Forward(input, batch);
    } catch (const cv::Exception& e) {
      throw Error("model " + card_.file + ": OpenCV DNN forward failed: " + e.err);
    }
    const std::size_t expected = static_cast<std::size_t>(batch) * card_.dim;
    if (result.total() != expected || !result.isContinuous() || result.type() != CV_32F) {
      throw Error("model " + card_.file + ": OpenCV DNN returned " + std::to_string(result.total()) +
                  " values for a batch of " + std::to_string(batch) + ", expected " + std::to_string(expected));
    }
    std::memcpy(output, result.ptr<float>(), expected * sizeof(float));
  }

 private:
  cv::Mat Forward(const float* input, int batch) {
    const int sizes_nchw[4] = {batch, 3, spec_.height, spec_.width};
    const int sizes_nhwc[4] = {batch, spec_.height, spec_.width, 3};
    // Wraps the caller's tensor without copying; setInput keeps only this header.
    const cv::Mat blob(4, spec_.nchw ? sizes_nchw : sizes_nhwc, CV_32F, const_cast<float*>(input));
    net_.setInput(blob, card_.input_name);
    return net_.forward(output_);
  }

  ModelCard card_;
  image::PreprocessSpec spec_;
  cv::dnn::Net net_;
  std::string output_;  // OpenCV layer name whose first output is the feature vector
};

}  // namespace

std::unique_ptr<Featurizer> CreateOpenCvFeaturizer(const ModelCard& card, const FeaturizerOptions& options) {
  return std::make_unique<OpenCvFeaturizer>(card, options);
}

}  // namespace fruitpipe::model
