// Lowering a parsed ONNX model to the Graph of onnx_graph.h (LoadOnnxGraph's work). Internal to
// the backend. Its parts: onnx_reading.cc reads the protobuf (constants, attributes, the nodes
// the output needs); onnx_lowering.cc turns each node into ops; onnx_fusion.cc folds a node
// into the op producing its input where it can (BatchNormalization, eltwise and Add).
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "fruitpipe/common/error.h"
#include "fruitpipe/model/onednn/onnx_graph.h"

namespace fruitpipe::model::onednn {

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

  // Reading the model (onnx_reading.cc).

  // Collects the constants, resolves the output, checks that every operator it needs is
  // supported, counts readers and adds the input value. Returns, per node, whether the output
  // depends on it.
  std::vector<bool> Read(const std::string& input_name, const std::string& output_name, int height, int width);
  const onnx::TensorProto* Constant(const std::string& name) const {
    auto it = constants_.find(name);
    return it == constants_.end() ? nullptr : it->second;
  }
  const onnx::TensorProto& RequireConstant(const onnx::NodeProto& node, int index) const;
  std::vector<float> FloatData(const onnx::TensorProto& t, const onnx::NodeProto& node) const;
  std::vector<std::int64_t> IntData(const onnx::TensorProto& t, const onnx::NodeProto& node) const;
  const onnx::AttributeProto* Attr(const onnx::NodeProto& node, const std::string& name) const;
  std::int64_t IntAttr(const onnx::NodeProto& node, const std::string& name, std::int64_t def) const;
  float FloatAttr(const onnx::NodeProto& node, const std::string& name, float def) const;
  std::vector<std::int64_t> IntsAttr(const onnx::NodeProto& node, const std::string& name) const;
  // Identity and Dropout are names for their input.
  std::string Canonical(const std::string& name) const {
    auto it = alias_.find(name);
    return it == alias_.end() ? name : it->second;
  }

  // Building the graph (onnx_lowering.cc).

  // The value an activation input of `node` refers to.
  int Activation(const onnx::NodeProto& node, int index) const;
  int NewValue(const std::string& name, Shape shape);
  int AddOp(Op op, const std::string& output_name, Shape shape);
  void LowerNode(const onnx::NodeProto& node);
  void LowerConv(const onnx::NodeProto& node);
  void LowerGlobalPool(const onnx::NodeProto& node);
  void LowerFlatten(const onnx::NodeProto& node);
  void LowerGemm(const onnx::NodeProto& node);

  // Fusing into the op before (onnx_fusion.cc).

  // The op whose result `value` is, if that result may still grow post-ops: only this node
  // reads it (in the original graph) and it is not the graph output.
  Op* FusableProducer(int value, std::initializer_list<OpKind> kinds);
  // Renames the value `op` produces to `name`: the fused node's output.
  void Retarget(Op& op, const std::string& name);
  void LowerBatchNorm(const onnx::NodeProto& node);
  void LowerEltwise(const onnx::NodeProto& node, Eltwise e);
  void LowerAdd(const onnx::NodeProto& node);

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

}  // namespace fruitpipe::model::onednn
