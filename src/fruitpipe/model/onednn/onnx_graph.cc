#include "fruitpipe/model/onednn/onnx_graph.h"

#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <unordered_map>

#include "fruitpipe/common/error.h"

namespace fruitpipe::model::onednn {

float Eltwise::Apply(float x) const {
  if (kind == kLeakyRelu) return x >= 0.0f ? x : alpha * x;
  return std::min(std::max(x, lo), hi);
}

std::int64_t Graph::OpFlops(const Op& op) const {
  const Shape& out = values[op.output].shape;
  if (op.kind == OpKind::kConv || op.kind == OpKind::kInnerProduct) {
    return 2 * out.size() * static_cast<std::int64_t>(op.weights.size() / op.bias.size());
  }
  return 0;
}

std::int64_t Graph::Flops() const {
  std::int64_t total = 0;
  for (const Op& op : ops) total += OpFlops(op);
  return total;
}

namespace {

const std::set<std::string>& SupportedOps() {
  static const std::set<std::string> ops = {
      "Conv", "BatchNormalization", "Relu", "Clip", "LeakyRelu", "Add", "GlobalAveragePool",
      "ReduceMean", "Flatten", "Reshape", "Gemm", "MatMul", "Identity", "Dropout"};
  return ops;
}

class Lowering {
 public:
  Lowering(const onnx::ModelProto& model, std::string path) : model_(model), path_(std::move(path)) {}

  Graph Run(const std::string& input_name, const std::string& output_name, int height, int width);

 private:
  [[noreturn]] void Fail(const std::string& what) const {
    throw InvalidArgumentError("model " + path_ + ": " + what);
  }
  [[noreturn]] void FailNode(const onnx::NodeProto& node, const std::string& what) const {
    Fail("node '" + NodeName(node) + "' (" + node.op_type() + "): " + what);
  }
  static std::string NodeName(const onnx::NodeProto& node) {
    return node.name().empty() ? node.output(0) : node.name();
  }

  const onnx::TensorProto* Constant(const std::string& name) const {
    auto it = constants_.find(name);
    return it == constants_.end() ? nullptr : it->second;
  }
  std::vector<float> FloatData(const onnx::TensorProto& t, const onnx::NodeProto& node) const;
  std::vector<std::int64_t> IntData(const onnx::TensorProto& t, const onnx::NodeProto& node) const;
  static std::int64_t NumElements(const onnx::TensorProto& t) {
    std::int64_t n = 1;
    for (auto d : t.dims()) n *= d;
    return n;
  }

  const onnx::AttributeProto* Attr(const onnx::NodeProto& node, const std::string& name) const {
    for (const auto& a : node.attribute()) {
      if (a.name() == name) return &a;
    }
    return nullptr;
  }
  std::int64_t IntAttr(const onnx::NodeProto& node, const std::string& name, std::int64_t def) const {
    const auto* a = Attr(node, name);
    return a ? a->i() : def;
  }
  float FloatAttr(const onnx::NodeProto& node, const std::string& name, float def) const {
    const auto* a = Attr(node, name);
    return a ? a->f() : def;
  }
  std::vector<std::int64_t> IntsAttr(const onnx::NodeProto& node, const std::string& name) const {
    const auto* a = Attr(node, name);
    if (!a) return {};
    return {a->ints().begin(), a->ints().end()};
  }

  // Identity and Dropout are names for their input.
  std::string Canonical(const std::string& name) const {
    auto it = alias_.find(name);
    return it == alias_.end() ? name : it->second;
  }

  // The value an activation input of `node` refers to.
  int Activation(const onnx::NodeProto& node, int index) const {
    if (index >= node.input_size() || node.input(index).empty()) FailNode(node, "missing input " + std::to_string(index));
    auto it = value_of_.find(Canonical(node.input(index)));
    if (it == value_of_.end()) {
      if (Constant(node.input(index))) FailNode(node, "input '" + node.input(index) + "' must be an activation, not a constant");
      FailNode(node, "input '" + node.input(index) + "' is not produced before this node");
    }
    return it->second;
  }
  const onnx::TensorProto& RequireConstant(const onnx::NodeProto& node, int index) const {
    const onnx::TensorProto* t = index < node.input_size() ? Constant(node.input(index)) : nullptr;
    if (!t) FailNode(node, "input " + std::to_string(index) + " must be a constant initializer");
    return *t;
  }

  int NewValue(const std::string& name, Shape shape) {
    if (shape.c <= 0 || shape.h <= 0 || shape.w <= 0) {
      Fail("tensor '" + name + "' would have shape " + std::to_string(shape.c) + "x" + std::to_string(shape.h) + "x" +
           std::to_string(shape.w) + " for this input size");
    }
    graph_.values.push_back(Value{name, shape, -1, {}});
    const int id = static_cast<int>(graph_.values.size()) - 1;
    value_of_[name] = id;
    return id;
  }
  int AddOp(Op op, const std::string& output_name, Shape shape) {
    op.output = NewValue(output_name, shape);
    graph_.values[op.output].producer = static_cast<int>(graph_.ops.size());
    graph_.ops.push_back(std::move(op));
    return graph_.values.back().producer;
  }
  // The op whose result `value` is, if that result may still grow post-ops: only this node
  // reads it (in the original graph) and it is not the graph output.
  Op* FusableProducer(int value, std::initializer_list<OpKind> kinds) {
    const int producer = graph_.values[value].producer;
    if (producer < 0) return nullptr;
    Op& op = graph_.ops[producer];
    if (std::find(kinds.begin(), kinds.end(), op.kind) == kinds.end()) return nullptr;
    const std::string& name = graph_.values[value].name;
    if (readers_[name] != 1 || name == output_name_) return nullptr;
    return &op;
  }
  // Renames the value `op` produces to `name`: the fused node's output.
  void Retarget(Op& op, const std::string& name) {
    value_of_.erase(graph_.values[op.output].name);
    graph_.values[op.output].name = name;
    value_of_[name] = op.output;
  }

  void LowerConv(const onnx::NodeProto& node);
  void LowerBatchNorm(const onnx::NodeProto& node);
  void LowerEltwise(const onnx::NodeProto& node, Eltwise e);
  void LowerAdd(const onnx::NodeProto& node);
  void LowerGlobalPool(const onnx::NodeProto& node);
  void LowerFlatten(const onnx::NodeProto& node);
  void LowerGemm(const onnx::NodeProto& node);

  const onnx::ModelProto& model_;
  std::string path_;
  std::int64_t opset_ = 1;
  std::string output_name_;
  std::unordered_map<std::string, const onnx::TensorProto*> constants_;
  std::unordered_map<std::string, int> readers_;  // tensor name -> number of reading nodes
  std::unordered_map<std::string, int> value_of_;
  std::unordered_map<std::string, std::string> alias_;
  Graph graph_;
};

std::vector<float> Lowering::FloatData(const onnx::TensorProto& t, const onnx::NodeProto& node) const {
  if (t.data_type() != onnx::TensorProto_DataType_FLOAT) {
    FailNode(node, "constant '" + t.name() + "' has data type " + std::to_string(t.data_type()) + ", expected float");
  }
  if (t.data_location() == onnx::TensorProto_DataLocation_EXTERNAL) {
    FailNode(node, "constant '" + t.name() + "' is stored in an external file, which is not supported");
  }
  const std::int64_t n = NumElements(t);
  std::vector<float> out(static_cast<std::size_t>(n));
  if (!t.raw_data().empty()) {
    if (t.raw_data().size() != out.size() * sizeof(float)) FailNode(node, "constant '" + t.name() + "' has a truncated payload");
    std::memcpy(out.data(), t.raw_data().data(), t.raw_data().size());
  } else {
    if (t.float_data_size() != n) FailNode(node, "constant '" + t.name() + "' has a truncated payload");
    std::copy(t.float_data().begin(), t.float_data().end(), out.begin());
  }
  return out;
}

std::vector<std::int64_t> Lowering::IntData(const onnx::TensorProto& t, const onnx::NodeProto& node) const {
  if (t.data_type() != onnx::TensorProto_DataType_INT64) {
    FailNode(node, "constant '" + t.name() + "' has data type " + std::to_string(t.data_type()) + ", expected int64");
  }
  const std::int64_t n = NumElements(t);
  std::vector<std::int64_t> out(static_cast<std::size_t>(n));
  if (!t.raw_data().empty()) {
    if (t.raw_data().size() != out.size() * sizeof(std::int64_t)) FailNode(node, "constant '" + t.name() + "' has a truncated payload");
    std::memcpy(out.data(), t.raw_data().data(), t.raw_data().size());
  } else {
    if (t.int64_data_size() != n) FailNode(node, "constant '" + t.name() + "' has a truncated payload");
    std::copy(t.int64_data().begin(), t.int64_data().end(), out.begin());
  }
  return out;
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

void Lowering::LowerBatchNorm(const onnx::NodeProto& node) {
  const int x = Activation(node, 0);
  const Shape shape = graph_.values[x].shape;
  const auto scale = FloatData(RequireConstant(node, 1), node);
  const auto shift = FloatData(RequireConstant(node, 2), node);
  const auto mean = FloatData(RequireConstant(node, 3), node);
  const auto var = FloatData(RequireConstant(node, 4), node);
  const std::size_t c = static_cast<std::size_t>(shape.c);
  if (scale.size() != c || shift.size() != c || mean.size() != c || var.size() != c) {
    FailNode(node, "parameters do not match " + std::to_string(c) + " channels");
  }
  const float eps = FloatAttr(node, "epsilon", 1e-5f);
  std::vector<float> mul(c), add(c);
  for (std::size_t i = 0; i < c; ++i) {
    mul[i] = scale[i] / std::sqrt(var[i] + eps);
    add[i] = shift[i] - mean[i] * mul[i];
  }
  // Folded into the convolution before it: w' = w * mul[o], b' = b * mul[o] + add[o].
  if (Op* conv = FusableProducer(x, {OpKind::kConv}); conv && conv->post_ops.empty()) {
    const std::size_t per_out = conv->weights.size() / c;
    for (std::size_t o = 0; o < c; ++o) {
      for (std::size_t k = 0; k < per_out; ++k) conv->weights[o * per_out + k] *= mul[o];
      conv->bias[o] = conv->bias[o] * mul[o] + add[o];
    }
    Retarget(*conv, node.output(0));
    return;
  }
  // Otherwise a per-channel affine map is a depthwise 1x1 convolution.
  Op op;
  op.kind = OpKind::kConv;
  op.node = NodeName(node);
  op.inputs = {x};
  op.groups = shape.c;
  op.weights = mul;
  op.bias = add;
  AddOp(std::move(op), node.output(0), shape);
}

void Lowering::LowerEltwise(const onnx::NodeProto& node, Eltwise e) {
  const int x = Activation(node, 0);
  if (Op* producer = FusableProducer(x, {OpKind::kConv, OpKind::kInnerProduct})) {
    producer->post_ops.push_back(PostOp{PostOp::kEltwise, e, -1});
    Retarget(*producer, node.output(0));
    return;
  }
  Op op;
  op.kind = OpKind::kEltwise;
  op.node = NodeName(node);
  op.inputs = {x};
  op.eltwise = e;
  AddOp(std::move(op), node.output(0), graph_.values[x].shape);
}

void Lowering::LowerAdd(const onnx::NodeProto& node) {
  if (node.input_size() != 2) FailNode(node, "expected 2 inputs");
  // Add of a constant: a bias, when it is one value per output channel of the op before it.
  for (int k = 0; k < 2; ++k) {
    const onnx::TensorProto* c = Constant(node.input(k));
    if (!c) continue;
    const int x = Activation(node, 1 - k);
    const Shape shape = graph_.values[x].shape;
    Op* producer = FusableProducer(x, {OpKind::kConv, OpKind::kInnerProduct});
    const auto data = FloatData(*c, node);
    // Broadcasts per channel: C values on the channel axis (third from the right for an
    // NCHW activation, last for a vector), every other dimension 1.
    const bool vector = producer && producer->kind == OpKind::kInnerProduct;
    const int channel_axis = c->dims_size() - (vector ? 1 : 3);
    bool per_channel = channel_axis >= 0 && static_cast<std::int64_t>(data.size()) == shape.c;
    for (int d = 0; per_channel && d < c->dims_size(); ++d) per_channel = d == channel_axis || c->dims(d) == 1;
    if (!producer || !producer->post_ops.empty() || !per_channel) {
      FailNode(node, "adding a constant is supported only as a per-channel bias right after a Conv, Gemm or MatMul");
    }
    for (std::size_t o = 0; o < data.size(); ++o) producer->bias[o] += data[o];
    Retarget(*producer, node.output(0));
    return;
  }
  const int a = Activation(node, 0);
  const int b = Activation(node, 1);
  const Shape sa = graph_.values[a].shape, sb = graph_.values[b].shape;
  if (sa.c != sb.c || sa.h != sb.h || sa.w != sb.w) FailNode(node, "broadcasting Add is not supported");
  // A residual connection: the convolution producing one addend accumulates into the other,
  // which must exist before that convolution runs. Prefer the later convolution.
  int best = -1, other = -1;
  for (auto [mine, theirs] : {std::pair{a, b}, std::pair{b, a}}) {
    Op* conv = FusableProducer(mine, {OpKind::kConv});
    if (!conv) continue;
    bool has_sum = false;
    for (const PostOp& p : conv->post_ops) has_sum |= p.kind == PostOp::kSum;
    const int producer = graph_.values[mine].producer;
    if (!has_sum && graph_.values[theirs].producer < producer && producer > best) {
      best = producer;
      other = theirs;
    }
  }
  if (best >= 0) {
    Op& conv = graph_.ops[best];
    conv.post_ops.push_back(PostOp{PostOp::kSum, {}, other});
    Retarget(conv, node.output(0));
    return;
  }
  Op op;
  op.kind = OpKind::kAdd;
  op.node = NodeName(node);
  op.inputs = {a, b};
  AddOp(std::move(op), node.output(0), sa);
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

Graph Lowering::Run(const std::string& input_name, const std::string& output_name, int height, int width) {
  graph_.model = path_;
  for (const auto& o : model_.opset_import()) {
    if (o.domain().empty() || o.domain() == "ai.onnx") opset_ = o.version();
  }
  const onnx::GraphProto& g = model_.graph();
  for (const auto& t : g.initializer()) constants_[t.name()] = &t;
  for (const auto& node : g.node()) {
    if (node.op_type() == "Constant" && node.output_size() == 1 && node.attribute_size() == 1 && node.attribute(0).has_t()) {
      constants_[node.output(0)] = &node.attribute(0).t();
    }
  }

  output_name_ = output_name;
  if (output_name_.empty() || output_name_ == "auto") {
    output_name_.clear();
    for (const auto& node : g.node()) {
      if (node.op_type() == "GlobalAveragePool" || node.op_type() == "ReduceMean") output_name_ = node.output(0);
    }
    if (output_name_.empty()) Fail("has no GlobalAveragePool to take features from; name the output in the model card");
  }

  // Only the nodes the output depends on.
  std::unordered_map<std::string, int> producer_node;
  for (int i = 0; i < g.node_size(); ++i) {
    for (const auto& out : g.node(i).output()) producer_node[out] = i;
  }
  if (!producer_node.count(output_name_)) Fail("has no tensor '" + output_name_ + "' (the card's output)");
  std::vector<bool> needed(static_cast<std::size_t>(g.node_size()), false);
  std::vector<std::string> pending{output_name_};
  while (!pending.empty()) {
    const std::string name = pending.back();
    pending.pop_back();
    auto it = producer_node.find(name);
    if (it == producer_node.end() || needed[it->second]) continue;
    needed[it->second] = true;
    for (const auto& in : g.node(it->second).input()) pending.push_back(in);
  }
  for (int i = 0; i < g.node_size(); ++i) {
    const auto& node = g.node(i);
    const bool default_domain = node.domain().empty() || node.domain() == "ai.onnx";
    if (needed[i] && node.op_type() != "Constant" && (!default_domain || !SupportedOps().count(node.op_type()))) {
      throw InvalidArgumentError("model " + path_ + ": operator '" + node.op_type() + "' (node " + NodeName(node) +
                                 ") is not supported by the onednn backend; use --backend opencv");
    }
  }
  for (int i = 0; i < g.node_size(); ++i) {
    const auto& node = g.node(i);
    if (needed[i] && (node.op_type() == "Identity" || node.op_type() == "Dropout")) {
      alias_[node.output(0)] = Canonical(node.input(0));
    }
  }
  output_name_ = Canonical(output_name_);
  for (int i = 0; i < g.node_size(); ++i) {
    const auto& node = g.node(i);
    if (!needed[i] || alias_.count(node.output(0))) continue;
    for (const auto& in : node.input()) ++readers_[Canonical(in)];
  }

  const onnx::ValueInfoProto* input = nullptr;
  for (const auto& in : g.input()) {
    if (in.name() == input_name && !constants_.count(in.name())) input = &in;
  }
  if (!input) Fail("has no input '" + input_name + "' (the card's input)");
  const auto& dims = input->type().tensor_type().shape().dim();
  if (dims.size() != 4 || dims[1].dim_value() <= 0) Fail("input '" + input_name + "' is not an NCHW tensor with a known channel count");
  graph_.input = NewValue(input_name, Shape{dims[1].dim_value(), height, width});

  for (int i = 0; i < g.node_size(); ++i) {
    const auto& node = g.node(i);
    if (!needed[i] || alias_.count(node.output(0))) continue;
    const std::string& type = node.op_type();
    if (type == "Constant") continue;
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

}  // namespace

Graph LoadOnnxGraph(const std::string& path, const std::string& input_name, const std::string& output_name, int height,
                    int width) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw NotFoundError("model " + path + ": cannot open the file");
  std::stringstream bytes;
  bytes << in.rdbuf();
  onnx::ModelProto model;
  if (!model.ParseFromString(bytes.str())) throw InvalidArgumentError("model " + path + ": not an ONNX model (protobuf parse failed)");
  return Lowering(model, path).Run(input_name, output_name, height, width);
}

}  // namespace fruitpipe::model::onednn
