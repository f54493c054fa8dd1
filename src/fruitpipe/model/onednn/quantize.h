// int8 quantisation of a lowered graph: which values are stored as int8 and with what step,
// and the per-channel scales of int8 convolutions. Internal to the engine (engine.cc builds
// the tables once, the plan builder reads them).
#pragma once

#include <oneapi/dnnl/dnnl.hpp>
#include <vector>

#include "fruitpipe/model/onednn/engine.h"

namespace fruitpipe::model::onednn {

// How a value is stored: real = stored * step. fp32 values have step 1.
struct Quant {
  dnnl::memory::data_type type = dnnl::memory::data_type::f32;
  float step = 1.0f;
  bool is_int8() const { return type != dnnl::memory::data_type::f32; }
};

// Per graph value, its storage given calibration `ranges` (one per value).
std::vector<Quant> QuantizeValues(const Graph& graph, const Ranges& ranges);

// Per op, the steps of its s8 weights (one per output channel) where it is a convolution with
// an int8 input; empty for every other op.
std::vector<std::vector<float>> QuantizeWeights(const Graph& graph, const std::vector<Quant>& quant);

// What an int8 convolution from values of step `in_step` to values of step `out_step` needs,
// given its weights' per-channel `weight_steps`.
struct ConvScales {
  std::vector<float> output;         // s32 accumulator -> stored output, per channel
  std::vector<float> inverse_steps;  // f32 weights -> s8 weights (the reorder's scales)
};
// Also divides `bias` (real values) into the accumulator's units: oneDNN adds the bias to the
// s32 accumulator, before the output scales.
ConvScales QuantizeConv(const std::vector<float>& weight_steps, float in_step, float out_step, std::vector<float>* bias);

}  // namespace fruitpipe::model::onednn
