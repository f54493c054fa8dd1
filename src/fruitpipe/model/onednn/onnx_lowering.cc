// Lowering node by node: the graph's values and ops, the operators that become ops of their own
// (Conv, GlobalAveragePool/ReduceMean, Flatten/Reshape, Gemm/MatMul), and the dispatch to the
// fusions of onnx_fusion.cc.
#include <algorithm>
#include <array>
#include <limits>

#include "fruitpipe/model/onednn/onnx_lowering.h"

namespace fruitpipe::model::onednn {

int Lowering::Activation(const onnx::NodeProto& node, int index) const {
  if (index >= node.input_size() || node.input(index).empty()) FailNode(node, "missing input " + std::to_string(index));
  auto it = value_of_.find(Canonical(node.input(index)));
  if (it == value_of_.end()) {
    if (Constant(node.input(index))) FailNode(node, "input '" + node.input(index) + "' must be an activation, not a constant");
    FailNode(node, "input '" + node.input(index) + "' is not produced before this node");
  }
  return it->second;
}

int Lowering::NewValue(const std::string& name, Shape shape) {
  if (shape.c <= 0 || shape.h <= 0 || shape.w <= 0) {
    Fail("tensor '" + name + "' would have shape " + std::to_string(shape.c) + "x" + std::to_string(shape.h) + "x" +
         std::to_string(shape.w) + " for this input size");
  }
  graph_.values.push_back(Value{name, shape, -1, {}});
  const int id = static_cast<int>(graph_.values.size()) - 1;
  value_of_[name] = id;
  return id;
}

int Lowering::AddOp(Op op, const std::string& output_name, Shape shape) {
  op.output = NewValue(output_name, shape);
  graph_.values[op.output].producer = static_cast<int>(graph_.ops.size());
  graph_.ops.push_back(std::move(op));
  return graph_.values.back().producer;
}

void Lowering::LowerConv(const onnx::NodeProto& node) {
  const int x = Activation(node, 0);
  const Shape in = graph_.values[x].shape;
  const onnx::TensorProto& w = RequireConstant(node, 1);
  if (w.dims_size() != 4) FailNode(node, "only 2-D convolutions are supported");
  Op op;
  op.kind = OpKind::kConv;
  op.node = NodeName(node);
  op.inputs = {x};
  op.groups = IntAttr(node, "group", 1);
  const std::int64_t out_c = w.dims(0);
  if (op.groups <= 0 || w.dims(1) * op.groups != in.c || out_c % op.groups != 0) {
    FailNode(node, "weights " + std::to_string(w.dims(0)) + "x" + std::to_string(w.dims(1)) + " with group " +
                       std::to_string(op.groups) + " do not fit " + std::to_string(in.c) + " input channels");
  }
  op.kernel = {w.dims(2), w.dims(3)};
  if (auto ks = IntsAttr(node, "kernel_shape"); !ks.empty() && (ks.size() != 2 || ks[0] != op.kernel[0] || ks[1] != op.kernel[1])) {
    FailNode(node, "kernel_shape disagrees with the weights");
  }
  if (auto s = IntsAttr(node, "strides"); !s.empty()) {
    if (s.size() != 2) FailNode(node, "strides must have 2 values");
    op.stride = {s[0], s[1]};
  }
  if (auto d = IntsAttr(node, "dilations"); !d.empty()) {
    if (d.size() != 2) FailNode(node, "dilations must have 2 values");
    op.dilation = {d[0], d[1]};
  }
  if (op.stride[0] <= 0 || op.stride[1] <= 0 || op.dilation[0] <= 0 || op.dilation[1] <= 0) {
    FailNode(node, "strides and dilations must be positive");
  }
  const std::array<std::int64_t, 2> extent{(op.kernel[0] - 1) * op.dilation[0] + 1, (op.kernel[1] - 1) * op.dilation[1] + 1};
  const std::array<std::int64_t, 2> size{in.h, in.w};
  const auto* auto_pad = Attr(node, "auto_pad");
  const std::string pad_mode = auto_pad ? auto_pad->s() : "NOTSET";
  if (pad_mode == "SAME_UPPER" || pad_mode == "SAME_LOWER") {
    for (int i = 0; i < 2; ++i) {
      const std::int64_t out = (size[i] + op.stride[i] - 1) / op.stride[i];
      const std::int64_t total = std::max<std::int64_t>(0, (out - 1) * op.stride[i] + extent[i] - size[i]);
      const std::int64_t small = total / 2;
      op.pads[i] = pad_mode == "SAME_UPPER" ? small : total - small;
      op.pads[i + 2] = total - op.pads[i];
    }
  } else if (pad_mode == "NOTSET") {
    if (auto p = IntsAttr(node, "pads"); !p.empty()) {
      if (p.size() != 4) FailNode(node, "pads must have 4 values");
      op.pads = {p[0], p[1], p[2], p[3]};  // ONNX order: h_begin, w_begin, h_end, w_end
      if (*std::min_element(p.begin(), p.end()) < 0) FailNode(node, "negative pads are not supported");
    }
  } else if (pad_mode != "VALID") {
    FailNode(node, "auto_pad '" + pad_mode + "' is not supported");
  }
  Shape out{out_c, 0, 0};
  out.h = (in.h + op.pads[0] + op.pads[2] - extent[0]) / op.stride[0] + 1;
  out.w = (in.w + op.pads[1] + op.pads[3] - extent[1]) / op.stride[1] + 1;
  op.weights = FloatData(w, node);
  op.bias.assign(static_cast<std::size_t>(out_c), 0.0f);
  if (node.input_size() > 2 && !node.input(2).empty()) {
    op.bias = FloatData(RequireConstant(node, 2), node);
    if (static_cast<std::int64_t>(op.bias.size()) != out_c) FailNode(node, "bias size differs from the output channels");
  }
  AddOp(std::move(op), node.output(0), out);
}

void Lowering::LowerGlobalPool(const onnx::NodeProto& node) {
  const int x = Activation(node, 0);
  const Shape in = graph_.values[x].shape;
  if (node.op_type() == "ReduceMean") {
    auto axes = IntsAttr(node, "axes");
    for (auto& a : axes) a = a < 0 ? a + 4 : a;
    std::sort(axes.begin(), axes.end());
    if (axes != std::vector<std::int64_t>{2, 3}) FailNode(node, "only ReduceMean over the spatial axes (2, 3) is supported");
  }
  Op op;
  op.kind = OpKind::kGlobalAvgPool;
  op.node = NodeName(node);
  op.inputs = {x};
  AddOp(std::move(op), node.output(0), Shape{in.c, 1, 1});
}

void Lowering::LowerFlatten(const onnx::NodeProto& node) {
  const int x = Activation(node, 0);
  const Shape in = graph_.values[x].shape;
  if (node.op_type() == "Flatten") {
    if (IntAttr(node, "axis", 1) != 1) FailNode(node, "only Flatten with axis 1 is supported");
  } else {
    const auto shape = IntData(RequireConstant(node, 1), node);
    // [N, C*H*W] with the batch kept (0, -1, or 1 for models exported with batch 1).
    const bool ok = shape.size() == 2 && (shape[0] == 0 || shape[0] == -1 || shape[0] == 1) &&
                    (shape[1] == in.size() || (shape[1] == -1 && shape[0] != -1));
    if (!ok) FailNode(node, "only a Reshape to [batch, " + std::to_string(in.size()) + "] is supported");
  }
  Op op;
  op.kind = OpKind::kFlatten;
  op.node = NodeName(node);
  op.inputs = {x};
  AddOp(std::move(op), node.output(0), Shape{in.size(), 1, 1});
}

void Lowering::LowerGemm(const onnx::NodeProto& node) {
  const int x = Activation(node, 0);
  const Shape in = graph_.values[x].shape;
  if (in.h != 1 || in.w != 1) FailNode(node, "the input must be a flattened vector");
  const onnx::TensorProto& b = RequireConstant(node, 1);
  if (b.dims_size() != 2) FailNode(node, "the weights must be a 2-D constant");
  const bool gemm = node.op_type() == "Gemm";
  if (gemm && IntAttr(node, "transA", 0) != 0) FailNode(node, "transA is not supported");
  const bool trans_b = gemm && IntAttr(node, "transB", 0) != 0;
  const float alpha = gemm ? FloatAttr(node, "alpha", 1.0f) : 1.0f;
  const float beta = gemm ? FloatAttr(node, "beta", 1.0f) : 1.0f;
  const std::int64_t k = trans_b ? b.dims(1) : b.dims(0);
  const std::int64_t n = trans_b ? b.dims(0) : b.dims(1);
  if (k != in.c) FailNode(node, "weights expect " + std::to_string(k) + " inputs, got " + std::to_string(in.c));
  const auto data = FloatData(b, node);
  Op op;
  op.kind = OpKind::kInnerProduct;
  op.node = NodeName(node);
  op.inputs = {x};
  op.weights.resize(static_cast<std::size_t>(n * k));
  for (std::int64_t o = 0; o < n; ++o) {
    for (std::int64_t i = 0; i < k; ++i) {
      op.weights[o * k + i] = alpha * (trans_b ? data[o * k + i] : data[i * n + o]);
    }
  }
  op.bias.assign(static_cast<std::size_t>(n), 0.0f);
  if (gemm && node.input_size() > 2 && !node.input(2).empty()) {
    const auto c = FloatData(RequireConstant(node, 2), node);
    if (c.size() == 1) {
      for (auto& v : op.bias) v = beta * c[0];
    } else if (static_cast<std::int64_t>(c.size()) == n) {
      for (std::int64_t o = 0; o < n; ++o) op.bias[o] = beta * c[o];
    } else {
      FailNode(node, "bias C must have 1 or " + std::to_string(n) + " values");
    }
  }
  AddOp(std::move(op), node.output(0), Shape{n, 1, 1});
}

void Lowering::LowerNode(const onnx::NodeProto& node) {
  const std::string& type = node.op_type();
  if (type == "Conv") {
    LowerConv(node);
  } else if (type == "BatchNormalization") {
    LowerBatchNorm(node);
  } else if (type == "Relu") {
    LowerEltwise(node, Eltwise{Eltwise::kClip, 0.0f, std::numeric_limits<float>::infinity(), 0.0f});
  } else if (type == "Clip") {
    Eltwise e;
    if (opset_ < 11) {
      e.lo = FloatAttr(node, "min", -std::numeric_limits<float>::max());
      e.hi = FloatAttr(node, "max", std::numeric_limits<float>::max());
    } else {
      if (node.input_size() > 1 && !node.input(1).empty()) e.lo = FloatData(RequireConstant(node, 1), node).at(0);
      if (node.input_size() > 2 && !node.input(2).empty()) e.hi = FloatData(RequireConstant(node, 2), node).at(0);
    }
    LowerEltwise(node, e);
  } else if (type == "LeakyRelu") {
    LowerEltwise(node, Eltwise{Eltwise::kLeakyRelu, 0.0f, 0.0f, FloatAttr(node, "alpha", 0.01f)});
  } else if (type == "Add") {
    LowerAdd(node);
  } else if (type == "GlobalAveragePool" || type == "ReduceMean") {
    LowerGlobalPool(node);
  } else if (type == "Flatten" || type == "Reshape") {
    LowerFlatten(node);
  } else {
    LowerGemm(node);  // Gemm, MatMul
  }
}

Graph Lowering::Run(const std::string& input_name, const std::string& output_name, int height, int width) {
  const std::vector<bool> needed = Read(input_name, output_name, height, width);
  const onnx::GraphProto& g = model_.graph();
  for (int i = 0; i < g.node_size(); ++i) {
    const auto& node = g.node(i);
    if (!needed[i] || alias_.count(node.output(0)) || node.op_type() == "Constant") continue;
    LowerNode(node);
  }
  auto it = value_of_.find(output_name_);
  if (it == value_of_.end() || it->second == graph_.input) Fail("output '" + output_name_ + "' is not computed by any operator");
  graph_.output = it->second;
  for (int i = 0; i < static_cast<int>(graph_.ops.size()); ++i) {
    const Op& op = graph_.ops[i];
    for (int in : op.inputs) graph_.values[in].consumers.push_back(i);
    for (const PostOp& p : op.post_ops) {
      if (p.kind == PostOp::kSum) graph_.values[p.addend].consumers.push_back(i);
    }
  }
  return std::move(graph_);
}

}  // namespace fruitpipe::model::onednn
