#include "fruitpipe/model/onednn/quantize.h"

#include <algorithm>
#include <cmath>

#include "fruitpipe/common/error.h"

namespace fruitpipe::model::onednn {

namespace {

using dt = dnnl::memory::data_type;

// Per output channel steps for s8 weights: the largest |w| of the channel maps to 127.
std::vector<float> WeightSteps(const Op& op) {
  const std::size_t outs = op.bias.size();
  const std::size_t per = op.weights.size() / outs;
  std::vector<float> steps(outs);
  for (std::size_t o = 0; o < outs; ++o) {
    float m = 0.0f;
    for (std::size_t k = 0; k < per; ++k) m = std::max(m, std::fabs(op.weights[o * per + k]));
    steps[o] = m > 0.0f ? m / 127.0f : 1.0f;
  }
  return steps;
}

}  // namespace

std::vector<Quant> QuantizeValues(const Graph& graph, const Ranges& ranges) {
  if (ranges.size() != graph.values.size()) {
    throw InvalidArgumentError("model " + graph.model + ": int8 needs activation ranges from calibration images");
  }
  std::vector<Quant> quant(graph.values.size());
  // A value is stored as int8 when a convolution with int8 input produces it (or it is the
  // input) and only convolutions read it; everything else stays f32.
  for (int v = 0; v < static_cast<int>(graph.values.size()); ++v) {
    const Value& val = graph.values[v];
    bool ok = v != graph.output && !val.consumers.empty();
    for (int c : val.consumers) ok = ok && graph.ops[c].kind == OpKind::kConv;
    bool non_negative = false;
    if (val.producer >= 0) {
      const Op& p = graph.ops[val.producer];
      ok = ok && p.kind == OpKind::kConv && quant[p.inputs[0]].is_int8();
      non_negative = !p.post_ops.empty() && p.post_ops.back().kind == PostOp::kEltwise &&
                     p.post_ops.back().eltwise.kind == Eltwise::kClip && p.post_ops.back().eltwise.lo >= 0.0f;
    }
    if (!ok) continue;
    quant[v].type = non_negative ? dt::u8 : dt::s8;
    quant[v].step = std::max(ranges[v], 1e-6f) / (non_negative ? 255.0f : 127.0f);
  }
  return quant;
}

std::vector<std::vector<float>> QuantizeWeights(const Graph& graph, const std::vector<Quant>& quant) {
  std::vector<std::vector<float>> steps(graph.ops.size());
  for (int i = 0; i < static_cast<int>(graph.ops.size()); ++i) {
    const Op& op = graph.ops[i];
    if (op.kind == OpKind::kConv && quant[op.inputs[0]].is_int8()) steps[i] = WeightSteps(op);
  }
  return steps;
}

ConvScales QuantizeConv(const std::vector<float>& weight_steps, float in_step, float out_step, std::vector<float>* bias) {
  ConvScales scales;
  scales.output.resize(weight_steps.size());
  scales.inverse_steps.resize(weight_steps.size());
  for (std::size_t o = 0; o < weight_steps.size(); ++o) {
    scales.output[o] = in_step * weight_steps[o] / out_step;
    scales.inverse_steps[o] = 1.0f / weight_steps[o];
    (*bias)[o] /= in_step * weight_steps[o];
  }
  return scales;
}

}  // namespace fruitpipe::model::onednn
