// The "onednn" backend: the ONNX graph lowered to oneDNN primitives (see engine.h), fp32 or
// int8 with activation ranges calibrated on a folder of images.
#include <algorithm>
#include <filesystem>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "fruitpipe/common/error.h"
#include "fruitpipe/model/featurizer.h"
#include "fruitpipe/model/onednn/engine.h"

namespace fruitpipe::model {

namespace {

namespace fs = std::filesystem;

// Enough images to see each activation's range on a spread of classes; calibration runs
// them through an unfused fp32 engine on every thread (about 4 ms each at 224 on 2 cores).
constexpr std::size_t kMaxCalibrationImages = 128;

class OneDnnFeaturizer : public Featurizer {
 public:
  OneDnnFeaturizer(std::unique_ptr<onednn::Engine> engine, const image::PreprocessSpec& spec, bool int8)
      : engine_(std::move(engine)), spec_(spec), int8_(int8) {}

  std::string backend_name() const override { return int8_ ? "onednn-int8" : "onednn"; }
  int dim() const override { return static_cast<int>(engine_->output_floats()); }
  const image::PreprocessSpec& input_spec() const override { return spec_; }
  void Run(const float* input, int batch, float* output) override { engine_->Run(input, batch, output); }

 private:
  std::unique_ptr<onednn::Engine> engine_;
  image::PreprocessSpec spec_;
  bool int8_;
};

// Preprocessed tensors of up to kMaxCalibrationImages images under `dir`, taken evenly from
// its sorted listing so that every class folder contributes.
std::vector<float> CalibrationTensors(const std::string& dir, const image::PreprocessSpec& spec, int* count) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw InvalidArgumentError("calibration folder " + dir + ": not a directory");
  std::vector<fs::path> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir, ec)) {
    std::string ext = entry.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (entry.is_regular_file() && (ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp" || ext == ".webp")) {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  const std::size_t take = std::min(files.size(), kMaxCalibrationImages);
  std::vector<float> tensors;
  *count = 0;
  for (std::size_t k = 0; k < take; ++k) {
    const fs::path& file = files[k * files.size() / take];
    cv::Mat bgr = cv::imread(file.string(), cv::IMREAD_COLOR);
    if (bgr.empty()) continue;  // an unreadable file says nothing about activation ranges
    cv::Mat rgb;
    cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
    tensors.resize(tensors.size() + spec.TensorSize());
    image::Preprocess(rgb, spec, tensors.data() + tensors.size() - spec.TensorSize());
    ++*count;
  }
  if (*count == 0) throw InvalidArgumentError("calibration folder " + dir + ": no readable images");
  return tensors;
}

}  // namespace

std::unique_ptr<Featurizer> CreateOneDnnFeaturizer(const ModelCard& card, const FeaturizerOptions& options) {
  image::PreprocessSpec spec = card.input;
  if (options.input_size > 0) spec.width = spec.height = options.input_size;
  if (!spec.nchw) throw InvalidArgumentError("model " + card.file + ": the onednn backend needs an NCHW input, the card says NHWC");
  if (options.precision != "fp32" && options.precision != "int8") {
    throw InvalidArgumentError("precision '" + options.precision + "' is not supported by the onednn backend (fp32 or int8)");
  }
  onednn::Graph graph = onednn::LoadOnnxGraph(card.file, card.input_name, card.output_name, spec.height, spec.width);
  const auto& in = graph.values[graph.input].shape;
  const auto& out = graph.values[graph.output].shape;
  if (in.c != 3) throw InvalidArgumentError("model " + card.file + ": input has " + std::to_string(in.c) + " channels, expected 3 (RGB)");
  if (out.size() != card.dim) {
    throw InvalidArgumentError("model " + card.file + ": output '" + graph.values[graph.output].name + "' has " +
                               std::to_string(out.size()) + " values per image, the card says dim " + std::to_string(card.dim));
  }
  onednn::EngineOptions engine_options;
  engine_options.threads = options.threads;
  if (options.precision == "fp32") {
    return std::make_unique<OneDnnFeaturizer>(std::make_unique<onednn::Engine>(std::move(graph), engine_options), spec, false);
  }
  if (options.calibration_dir.empty()) {
    throw InvalidArgumentError("model " + card.file + ": precision int8 needs a folder of calibration images");
  }
  int count = 0;
  const std::vector<float> images = CalibrationTensors(options.calibration_dir, spec, &count);
  onednn::Ranges ranges;
  onednn::EngineOptions calibration_options = engine_options;
  calibration_options.fuse_depthwise = false;  // every intermediate tensor must be observable
  onednn::Engine(graph, calibration_options).MeasureRanges(images.data(), count, &ranges);
  engine_options.int8 = true;
  return std::make_unique<OneDnnFeaturizer>(std::make_unique<onednn::Engine>(std::move(graph), engine_options, ranges), spec, true);
}

}  // namespace fruitpipe::model
