// The ONNX model as the oneDNN backend sees it: a topologically ordered list of a few op kinds
// over NCHW activations, with the cheap fusions already done (BatchNormalization folded into
// the convolution before it, Relu/Clip and residual Adds attached to the convolution that
// produces their input as post-ops, Identity/Dropout removed). Internal to the backend;
// nothing here depends on oneDNN, so the lowering is testable on its own.
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace fruitpipe::model::onednn {

// One image's activation: channels x height x width. Vectors (after Flatten/Gemm) are Cx1x1.
struct Shape {
  std::int64_t c = 0;
  std::int64_t h = 1;
  std::int64_t w = 1;
  std::int64_t size() const { return c * h * w; }
};

// y = x for lo <= x <= hi, clamped outside (Relu: [0, inf), Relu6: [0, 6]); LeakyRelu:
// y = x for x >= 0, alpha * x otherwise. Both commute with positive scaling, which the int8
// path relies on.
struct Eltwise {
  enum Kind { kClip, kLeakyRelu };
  Kind kind = kClip;
  float lo = -std::numeric_limits<float>::infinity();
  float hi = std::numeric_limits<float>::infinity();
  float alpha = 0.0f;
  float Apply(float x) const;
};

struct PostOp {
  enum Kind { kEltwise, kSum };
  Kind kind = kEltwise;
  Eltwise eltwise;  // kEltwise
  int addend = -1;  // kSum: the value added to the op's result (a residual connection)
};

enum class OpKind {
  kConv,           // 2-D convolution, any groups; weights O x I/groups x kh x kw
  kInnerProduct,   // Gemm/MatMul with constant weights O x I over a Cx1x1 input
  kGlobalAvgPool,  // GlobalAveragePool, ReduceMean over H and W
  kFlatten,        // Flatten/Reshape to N x (C*H*W)
  kAdd,            // element-wise sum of two activations that could not become a post-op
  kEltwise,        // Relu/Clip/LeakyRelu that could not become a post-op
};

struct Op {
  OpKind kind = OpKind::kConv;
  std::string node;         // the ONNX node name, for messages and profiles
  std::vector<int> inputs;  // value ids of the activations read (not the addend of a kSum)
  int output = -1;

  // kConv and kInnerProduct.
  std::int64_t groups = 1;
  std::array<std::int64_t, 2> kernel{1, 1};
  std::array<std::int64_t, 2> stride{1, 1};
  std::array<std::int64_t, 2> dilation{1, 1};
  std::array<std::int64_t, 4> pads{0, 0, 0, 0};  // top, left, bottom, right
  std::vector<float> weights;
  std::vector<float> bias;  // one per output channel, zeros when the model has none
  std::vector<PostOp> post_ops;

  Eltwise eltwise;  // kEltwise

  bool IsDepthwise(std::int64_t in_channels) const {
    return kind == OpKind::kConv && groups == in_channels && groups > 1 &&
           static_cast<std::int64_t>(bias.size()) == groups;
  }
};

struct Value {
  std::string name;
  Shape shape;
  int producer = -1;           // op index; -1 for the graph input
  std::vector<int> consumers;  // op indices that read it, as input or as a kSum addend
};

struct Graph {
  std::string model;  // the file, for messages
  std::vector<Value> values;
  std::vector<Op> ops;  // topological order; only what the output needs
  int input = -1;
  int output = -1;

  std::int64_t OpFlops(const Op& op) const;  // multiply-adds x 2, per image
  std::int64_t Flops() const;                // the whole graph, per image
};

// Reads `path` and lowers it for a 3-channel (or whatever the model declares) input of
// height x width. `input_name` must be a graph input; `output_name` a tensor of the graph, or
// "auto"/"" for the output of the last global average pooling. Throws InvalidArgumentError
// naming the model and, for an unsupported operator, the operator and its node.
Graph LoadOnnxGraph(const std::string& path, const std::string& input_name,
                    const std::string& output_name, int height, int width);

}  // namespace fruitpipe::model::onednn
