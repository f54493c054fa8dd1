// The featurizer interface: a batch of preprocessed images in, one feature vector per image
// out. Backends: "opencv" (OpenCV DNN, the reference) and "onednn" (the fast engine).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "fruitpipe/image/preprocess.h"
#include "fruitpipe/model/model_card.h"

namespace fruitpipe::model {

struct FeaturizerOptions {
  std::string backend = "auto";   // auto | opencv | onednn
  int threads = 0;                // 0: all cores available to this process
  int input_size = 0;             // 0: the card's size; else square input of this side
  std::string precision = "fp32"; // fp32 | int8 (onednn only)
  std::string calibration_dir;    // int8: folder of images for activation ranges
};

class Featurizer {
 public:
  virtual ~Featurizer() = default;
  virtual std::string backend_name() const = 0;
  virtual int dim() const = 0;
  // The tensor Run expects per image (the card's spec, with input_size applied).
  virtual const image::PreprocessSpec& input_spec() const = 0;
  // `input` holds `batch` tensors of input_spec().TensorSize() floats; writes batch*dim()
  // floats to `output`. Not thread-safe: one caller at a time per instance.
  virtual void Run(const float* input, int batch, float* output) = 0;
};

// Verifies the model file against the card, then builds the backend.
std::unique_ptr<Featurizer> CreateFeaturizer(const ModelCard& card, const FeaturizerOptions& options);

// Backend constructors, used by CreateFeaturizer and by tests that compare backends.
std::unique_ptr<Featurizer> CreateOpenCvFeaturizer(const ModelCard& card, const FeaturizerOptions& options);
std::unique_ptr<Featurizer> CreateOneDnnFeaturizer(const ModelCard& card, const FeaturizerOptions& options);

// The final linear layer of a classifier network whose layers before it equal the feature
// model's (the shared mobilenet_v2_imagenet beside mobilenet_v2_features): logits =
// weights · features + bias. Throws InvalidArgumentError naming the cards when the classifier
// does not end in one linear layer over `features.dim` inputs, or its backbone differs.
struct LinearHead {
  int inputs = 0;
  int outputs = 0;
  std::vector<float> weights;  // outputs × inputs, row-major
  std::vector<float> bias;     // outputs
};
LinearHead LoadLinearHead(const ModelCard& classifier, const ModelCard& features);

}  // namespace fruitpipe::model
