#include "fruitpipe/model/onednn/onnx_graph.h"

#include <onnx/onnx_pb.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "fruitpipe/common/error.h"
#include "fruitpipe/model/onednn/onnx_lowering.h"

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
