// Reading the ONNX protobuf for the lowering: constant tensors and node attributes, and which
// nodes the chosen output needs (nothing else is looked at, so unsupported operators elsewhere
// in the model do not matter).
#include <algorithm>
#include <cstring>
#include <set>

#include "fruitpipe/model/onednn/onnx_lowering.h"

namespace fruitpipe::model::onednn {

namespace {

const std::set<std::string>& SupportedOps() {
  static const std::set<std::string> ops = {
      "Conv", "BatchNormalization", "Relu", "Clip", "LeakyRelu", "Add", "GlobalAveragePool",
      "ReduceMean", "Flatten", "Reshape", "Gemm", "MatMul", "Identity", "Dropout"};
  return ops;
}

std::int64_t NumElements(const onnx::TensorProto& t) {
  std::int64_t n = 1;
  for (auto d : t.dims()) n *= d;
  return n;
}

// Copies the payload of `t`, stored as raw bytes or in its typed repeated `field`, into `out`;
// false when its size disagrees with t's dims.
template <typename T, typename Field>
bool CopyPayload(const onnx::TensorProto& t, const Field& field, std::vector<T>* out) {
  const std::int64_t n = NumElements(t);
  out->resize(static_cast<std::size_t>(n));
  if (!t.raw_data().empty()) {
    if (t.raw_data().size() != out->size() * sizeof(T)) return false;
    std::memcpy(out->data(), t.raw_data().data(), t.raw_data().size());
  } else {
    if (field.size() != n) return false;
    std::copy(field.begin(), field.end(), out->begin());
  }
  return true;
}

}  // namespace

const onnx::TensorProto& Lowering::RequireConstant(const onnx::NodeProto& node, int index) const {
  const onnx::TensorProto* t = index < node.input_size() ? Constant(node.input(index)) : nullptr;
  if (!t) FailNode(node, "input " + std::to_string(index) + " must be a constant initializer");
  return *t;
}

std::vector<float> Lowering::FloatData(const onnx::TensorProto& t, const onnx::NodeProto& node) const {
  if (t.data_type() != onnx::TensorProto_DataType_FLOAT) {
    FailNode(node, "constant '" + t.name() + "' has data type " + std::to_string(t.data_type()) + ", expected float");
  }
  if (t.data_location() == onnx::TensorProto_DataLocation_EXTERNAL) {
    FailNode(node, "constant '" + t.name() + "' is stored in an external file, which is not supported");
  }
  std::vector<float> out;
  if (!CopyPayload(t, t.float_data(), &out)) FailNode(node, "constant '" + t.name() + "' has a truncated payload");
  return out;
}

std::vector<std::int64_t> Lowering::IntData(const onnx::TensorProto& t, const onnx::NodeProto& node) const {
  if (t.data_type() != onnx::TensorProto_DataType_INT64) {
    FailNode(node, "constant '" + t.name() + "' has data type " + std::to_string(t.data_type()) + ", expected int64");
  }
  std::vector<std::int64_t> out;
  if (!CopyPayload(t, t.int64_data(), &out)) FailNode(node, "constant '" + t.name() + "' has a truncated payload");
  return out;
}

const onnx::AttributeProto* Lowering::Attr(const onnx::NodeProto& node, const std::string& name) const {
  for (const auto& a : node.attribute()) {
    if (a.name() == name) return &a;
  }
  return nullptr;
}

std::int64_t Lowering::IntAttr(const onnx::NodeProto& node, const std::string& name, std::int64_t def) const {
  const auto* a = Attr(node, name);
  return a ? a->i() : def;
}

float Lowering::FloatAttr(const onnx::NodeProto& node, const std::string& name, float def) const {
  const auto* a = Attr(node, name);
  return a ? a->f() : def;
}

std::vector<std::int64_t> Lowering::IntsAttr(const onnx::NodeProto& node, const std::string& name) const {
  const auto* a = Attr(node, name);
  if (!a) return {};
  return {a->ints().begin(), a->ints().end()};
}

std::vector<bool> Lowering::Read(const std::string& input_name, const std::string& output_name, int height, int width) {
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
  return needed;
}

}  // namespace fruitpipe::model::onednn
