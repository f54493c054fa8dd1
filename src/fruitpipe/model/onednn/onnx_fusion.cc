// The fusions that need no oneDNN, done as each node is lowered: BatchNormalization folded
// into the convolution before it, Relu/Clip/LeakyRelu as post-ops, Add of a constant as a bias
// and residual Adds as sum post-ops; otherwise the node becomes an op of its own.
#include <algorithm>
#include <cmath>

#include "fruitpipe/model/onednn/onnx_lowering.h"

namespace fruitpipe::model::onednn {

Op* Lowering::FusableProducer(int value, std::initializer_list<OpKind> kinds) {
  const int producer = graph_.values[value].producer;
  if (producer < 0) return nullptr;
  Op& op = graph_.ops[producer];
  if (std::find(kinds.begin(), kinds.end(), op.kind) == kinds.end()) return nullptr;
  const std::string& name = graph_.values[value].name;
  if (readers_[name] != 1 || name == output_name_) return nullptr;
  return &op;
}

void Lowering::Retarget(Op& op, const std::string& name) {
  value_of_.erase(graph_.values[op.output].name);
  graph_.values[op.output].name = name;
  value_of_[name] = op.output;
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

}  // namespace fruitpipe::model::onednn
