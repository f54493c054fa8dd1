// Runs a lowered ONNX graph with oneDNN primitives on the CPU. Internal to the backend; the
// featurizer wraps it. Primitives are built per batch size (a "plan") on first use and kept:
// layouts chosen by oneDNN (format_tag::any), weights reordered once per layout, activation
// buffers shared between tensors whose lifetimes do not overlap.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fruitpipe/model/onednn/onnx_graph.h"

namespace fruitpipe::model::onednn {

struct EngineOptions {
  int threads = 0;      // cores to use; 0: every core this process may use
  bool int8 = false;    // needs activation ranges (see MeasureRanges)
  // A 1x1 convolution and the depthwise 3x3 after it run as one primitive, so the expanded
  // tensor between them is never written to memory (used where oneDNN has a JIT kernel).
  bool fuse_depthwise = true;
  // Images per execution of the primitives; larger batches run in chunks of this size, which
  // keeps the activations of a chunk in cache (see docs/engine.md for the measurement).
  int chunk = 4;
  // With several threads and at least that many chunks, each thread runs whole chunks on
  // its own (single-threaded primitives); otherwise the primitives of one chunk use an
  // OpenMP team of `threads`. See docs/engine.md for why (oversubscription).
  bool split_images = true;
};

// Per graph value, the largest |x| seen on calibration images (Graph::values order).
using Ranges = std::vector<float>;

struct EngineImpl;

class Engine {
 public:
  // `ranges` must be given (from an fp32 engine's MeasureRanges) when options.int8 is set.
  Engine(Graph graph, const EngineOptions& options, const Ranges& ranges = {});
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const Graph& graph() const;
  int threads() const;
  std::int64_t input_floats() const;   // per image
  std::int64_t output_floats() const;  // per image

  // `input`: batch NCHW images; `output`: batch x output_floats(). Any batch >= 1. One call
  // at a time per engine.
  void Run(const float* input, int batch, float* output);

  // fp32 engines with fuse_depthwise off only: runs the images (split over threads like Run)
  // and raises `ranges` (sized on first use) to the largest |x| each value reaches.
  void MeasureRanges(const float* input, int batch, Ranges* ranges);

  // One line per primitive of the single-threaded plan for a chunk of `batch` images: node,
  // primitive kind, oneDNN implementation, layouts. For tests and docs.
  std::vector<std::string> Describe(int batch);

 private:
  std::unique_ptr<EngineImpl> impl_;
};

}  // namespace fruitpipe::model::onednn
