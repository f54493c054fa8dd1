// LoadLinearHead reads both networks with the ONNX lowering the oneDNN engine uses, so the
// backbone comparison sees the same folded weights the features were computed with.
#include "fruitpipe/common/error.h"
#include "fruitpipe/model/featurizer.h"
#include "fruitpipe/model/onednn/onnx_graph.h"

namespace fruitpipe::model {

LinearHead LoadLinearHead(const ModelCard& classifier, const ModelCard& features) {
  VerifyModelFile(classifier);
  VerifyModelFile(features);
  const std::string names = classifier.card_path + " over " + features.card_path;
  const int h = features.input.height, w = features.input.width;
  const onednn::Graph head = onednn::LoadOnnxGraph(classifier.file, classifier.input_name, classifier.output_name, h, w);
  const onednn::Graph body = onednn::LoadOnnxGraph(features.file, features.input_name, features.output_name, h, w);
  if (head.ops.empty() || head.ops.back().kind != onednn::OpKind::kInnerProduct) {
    throw InvalidArgumentError(names + ": the classifier does not end in a linear layer");
  }
  const onednn::Op& last = head.ops.back();
  const auto outputs = static_cast<int>(last.bias.size());
  if (outputs < 1 || last.weights.size() != static_cast<std::size_t>(outputs) * static_cast<std::size_t>(features.dim)) {
    throw InvalidArgumentError(names + ": the classifier's last layer does not read " + std::to_string(features.dim) +
                               " features");
  }
  // Every weighted layer of the feature network must appear, equal, in the classifier.
  std::size_t next = 0;
  for (const onednn::Op& op : body.ops) {
    if (op.weights.empty()) continue;
    while (next < head.ops.size() && head.ops[next].weights.empty()) ++next;
    if (next + 1 >= head.ops.size() || head.ops[next].weights != op.weights || head.ops[next].bias != op.bias) {
      throw InvalidArgumentError(names + ": the classifier's backbone differs from the feature model's (layer " +
                                 op.node + ")");
    }
    ++next;
  }
  LinearHead out;
  out.inputs = features.dim;
  out.outputs = outputs;
  out.weights = last.weights;
  out.bias = last.bias;
  return out;
}

}  // namespace fruitpipe::model
