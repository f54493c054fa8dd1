// Convolutions: one primitive per Conv (in the preferred layout, else oneDNN's choice), or a
// 1x1 convolution and the depthwise 3x3 after it as one primitive (EngineOptions::fuse_depthwise).
#include <algorithm>
#include <array>
#include <string>

#include "fruitpipe/model/onednn/plan_builder.h"

namespace fruitpipe::model::onednn {

namespace {

using dnnl::memory;
using dt = memory::data_type;
using tag = memory::format_tag;

}  // namespace

void Builder::BuildConv(int i) {
  if (impl_.options.fuse_depthwise && TryFusedDepthwise(i)) return;
  const Op& op = g_.ops[i];
  const int v = op.inputs[0];
  const Shape& in = g_.values[v].shape;
  const Shape& out = g_.values[op.output].shape;
  const Quant& qs = impl_.quant[v];
  const Quant& qd = impl_.quant[op.output];
  const bool int8 = qs.is_int8();

  const bool grouped = op.groups > 1;
  const memory::dims wdims = grouped ? memory::dims{op.groups, out.c / op.groups, in.c / op.groups, op.kernel[0], op.kernel[1]}
                                     : memory::dims{out.c, in.c, op.kernel[0], op.kernel[1]};
  memory::desc dst_md(ActivationDims(batch_, out), qd.type, ActivationTag(int8, out.c));

  // A residual sum accumulates into the destination: take over the addend's buffer when
  // this is its last reader, else copy the addend in first.
  int addend = -1;
  for (const PostOp& p : op.post_ops) {
    if (p.kind == PostOp::kSum) addend = p.addend;
  }
  int in_place = -1;
  if (addend >= 0) {
    const int slot = plan_->value_slot[addend];
    const Slot& s = plan_->slots[slot];
    const auto& readers = g_.values[addend].consumers;
    if (addend != g_.output && *std::max_element(readers.begin(), readers.end()) == i && s.kind == Slot::kActivation &&
        s.md.data_type() == qd.type) {
      in_place = slot;
      dst_md = s.md;
    }
  }
  const float sum_scale = in_place >= 0 ? impl_.quant[addend].step / qd.step : 1.0f;

  dnnl::post_ops po;
  for (const PostOp& p : op.post_ops) {
    if (p.kind == PostOp::kSum) {
      po.append_sum(sum_scale);
    } else {
      AppendEltwise(&po, p.eltwise, qd.step);
    }
  }
  dnnl::primitive_attr attr = Attr();
  attr.set_post_ops(po);
  std::vector<float> bias = op.bias;
  std::vector<float> inverse_steps;
  if (int8) {
    ConvScales scales = QuantizeConv(impl_.weight_steps[i], qs.step, qd.step, &bias);
    attr.set_output_scales(1 << 1, scales.output);
    inverse_steps = std::move(scales.inverse_steps);
  }
  auto create = [&](const memory::desc& src_md, const memory::desc& dst) {
    dnnl::convolution_forward::desc desc(
        dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src_md,
        memory::desc(wdims, int8 ? dt::s8 : dt::f32, tag::any), memory::desc({out.c}, dt::f32, tag::x), dst,
        {op.stride[0], op.stride[1]}, {op.dilation[0] - 1, op.dilation[1] - 1}, {op.pads[0], op.pads[1]},
        {op.pads[2], op.pads[3]});
    return dnnl::convolution_forward::primitive_desc(desc, attr, impl_.eng);
  };
  auto pd = create(memory::desc(ActivationDims(batch_, in), qs.type, ActivationTag(int8, in.c)), dst_md);
  // No optimized kernel for the preferred layout (another ISA, an odd shape): oneDNN's choice.
  if (std::string(pd.impl_info_str()).rfind("ref", 0) == 0) {
    pd = create(memory::desc(ActivationDims(batch_, in), qs.type, tag::any),
                in_place >= 0 ? dst_md : memory::desc(ActivationDims(batch_, out), qd.type, tag::any));
  }

  const int src = Get(v, pd.src_desc());
  const int w = Constant(i, DNNL_ARG_WEIGHTS, pd.weights_desc(), op.weights, wdims, grouped ? tag::goihw : tag::oihw,
                         grouped ? 3 : 1, inverse_steps);
  const int b = Constant(i, DNNL_ARG_BIAS, pd.bias_desc(), bias, {out.c}, tag::x, 0, {});
  int dst = in_place;
  if (dst < 0) {
    dst = NewSlot(Slot::kActivation, pd.dst_desc());
    if (addend >= 0) Convert(addend, plan_->value_slot[addend], dst, qd.step);
  }
  AddStep(dnnl::convolution_forward(pd), pd.scratchpad_desc(), {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_BIAS, b}, {DNNL_ARG_DST, dst}},
          Describe(op, grouped ? "conv(groups=" + std::to_string(op.groups) + ")" : "conv", pd), op.output);
  plan_->value_slot[op.output] = dst;
}

bool Builder::TryFusedDepthwise(int i) {
  if (i + 1 >= static_cast<int>(g_.ops.size())) return false;
  const Op& op = g_.ops[i];
  const Op& dw = g_.ops[i + 1];
  const int mid = op.output;
  const std::array<std::int64_t, 2> one{1, 1}, three{3, 3};
  if (op.groups != 1 || op.kernel != one || op.stride != one || op.pads != std::array<std::int64_t, 4>{0, 0, 0, 0}) return false;
  if (dw.kind != OpKind::kConv || dw.inputs[0] != mid || g_.values[mid].consumers.size() != 1 || mid == g_.output) return false;
  const Shape& ms = g_.values[mid].shape;
  const Shape& os = g_.values[dw.output].shape;
  const std::int64_t s = dw.stride[0];
  // oneDNN's fused depthwise has one left/top padding and output ceil(input / stride); the
  // right/bottom padding then only ever reads zeros, as in the ONNX node.
  if (!dw.IsDepthwise(ms.c) || dw.kernel != three || dw.dilation != one || dw.stride[1] != s || (s != 1 && s != 2) ||
      dw.pads[0] != dw.pads[1] || os.h != (ms.h + s - 1) / s || os.w != (ms.w + s - 1) / s) {
    return false;
  }
  for (const Op* o : {&op, &dw}) {
    for (const PostOp& p : o->post_ops) {
      if (p.kind != PostOp::kEltwise) return false;
    }
  }
  const int v = op.inputs[0];
  const Shape& in = g_.values[v].shape;
  const Quant& qs = impl_.quant[v];
  const Quant& qm = impl_.quant[mid];
  const Quant& qd = impl_.quant[dw.output];
  const bool int8 = qs.is_int8();

  dnnl::post_ops po;
  for (const PostOp& p : op.post_ops) AppendEltwise(&po, p.eltwise, qm.step);
  std::vector<float> bias = op.bias, dw_bias = dw.bias;
  std::vector<float> inverse_steps, dw_inverse_steps, dw_scales{1.0f};
  dnnl::primitive_attr attr = Attr();
  if (int8) {
    ConvScales scales = QuantizeConv(impl_.weight_steps[i], qs.step, qm.step, &bias);
    attr.set_output_scales(1 << 1, scales.output);
    inverse_steps = std::move(scales.inverse_steps);
    ConvScales dw_quant = QuantizeConv(impl_.weight_steps[i + 1], qm.step, qd.step, &dw_bias);
    dw_scales = std::move(dw_quant.output);
    dw_inverse_steps = std::move(dw_quant.inverse_steps);
  }
  po.append_dw(int8 ? dt::s8 : dt::f32, dt::f32, qd.type, 3, s, dw.pads[0], int8 ? 1 << 1 : 0, dw_scales);
  for (const PostOp& p : dw.post_ops) AppendEltwise(&po, p.eltwise, qd.step);
  attr.set_post_ops(po);

  const memory::dims wdims{ms.c, in.c, 1, 1};
  dnnl::convolution_forward::desc desc(
      dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
      memory::desc(ActivationDims(batch_, in), qs.type, ActivationTag(int8, in.c)),
      memory::desc(wdims, int8 ? dt::s8 : dt::f32, tag::any), memory::desc({ms.c}, dt::f32, tag::x),
      memory::desc(ActivationDims(batch_, ms), qm.type, ActivationTag(int8, ms.c)), {1, 1}, {0, 0}, {0, 0}, {0, 0});
  dnnl::convolution_forward::primitive_desc pd;
  try {
    pd = dnnl::convolution_forward::primitive_desc(desc, attr, impl_.eng);
  } catch (const dnnl::error&) {
    return false;  // no implementation for this combination: run the two separately
  }
  const std::string impl = pd.impl_info_str();
  if (impl.find("ref") != std::string::npos || impl.find("gemm") != std::string::npos) return false;

  const int dw_w_arg = DNNL_ARG_ATTR_POST_OP_DW | DNNL_ARG_WEIGHTS;
  const int dw_b_arg = DNNL_ARG_ATTR_POST_OP_DW | DNNL_ARG_BIAS;
  const int src = Get(v, pd.src_desc());
  const int w = Constant(i, DNNL_ARG_WEIGHTS, pd.weights_desc(), op.weights, wdims, tag::oihw, 1, inverse_steps);
  const int b = Constant(i, DNNL_ARG_BIAS, pd.bias_desc(), bias, {ms.c}, tag::x, 0, {});
  const int dww = Constant(i, dw_w_arg, pd.query_md(dnnl::query::exec_arg_md, dw_w_arg), dw.weights, {ms.c, 1, 1, 3, 3},
                           tag::goihw, 1, dw_inverse_steps);
  const int dwb = Constant(i, dw_b_arg, pd.query_md(dnnl::query::exec_arg_md, dw_b_arg), dw_bias, {ms.c}, tag::x, 0, {});
  const memory::desc dst_md = pd.dst_desc();
  if (dst_md.dims() != ActivationDims(batch_, os)) return false;
  const int dst = NewSlot(Slot::kActivation, dst_md);
  AddStep(dnnl::convolution_forward(pd), pd.scratchpad_desc(),
          {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_BIAS, b}, {dw_w_arg, dww}, {dw_b_arg, dwb}, {DNNL_ARG_DST, dst}},
          Describe(op, "conv+" + dw.node + "(depthwise fused)", pd), dw.output);
  plan_->value_slot[dw.output] = dst;
  skip_ = i + 1;
  return true;
}

}  // namespace fruitpipe::model::onednn
