// The ops that end a classifier-style network: global average pooling, Flatten and inner
// products (Gemm/MatMul).
#include <cstdint>

#include "fruitpipe/model/onednn/plan_builder.h"

namespace fruitpipe::model::onednn {

namespace {

using dnnl::memory;
using dt = memory::data_type;
using tag = memory::format_tag;

}  // namespace

void Builder::BuildPool(int i) {
  const Op& op = g_.ops[i];
  const int v = op.inputs[0];
  const Shape& in = g_.values[v].shape;
  const int src = plan_->value_slot[v];
  dnnl::pooling_forward::desc desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::pooling_avg_exclude_padding,
                                   plan_->slots[src].md, memory::desc(ActivationDims(batch_, g_.values[op.output].shape), dt::f32, tag::any),
                                   {1, 1}, {in.h, in.w}, {0, 0}, {0, 0});
  dnnl::pooling_forward::primitive_desc pd(desc, Attr(), impl_.eng);
  const int dst = NewSlot(Slot::kActivation, pd.dst_desc());
  AddStep(dnnl::pooling_forward(pd), pd.scratchpad_desc(), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}}, Describe(op, "global-avg-pool", pd), op.output);
  plan_->value_slot[op.output] = dst;
}

void Builder::BuildFlatten(int i) {
  const Op& op = g_.ops[i];
  const int v = op.inputs[0];
  const Shape& in = g_.values[v].shape;
  if (in.h == 1 && in.w == 1) {  // C x 1 x 1 is already a vector in any layout
    plan_->value_slot[op.output] = plan_->value_slot[v];
    return;
  }
  // Plain NCHW is C*H*W floats per image: the flattened tensor is a view of it.
  const int plain = Get(v, memory::desc(ActivationDims(batch_, in), dt::f32, tag::nchw));
  const int view = NewSlot(Slot::kActivation, memory::desc(ActivationDims(batch_, g_.values[op.output].shape), dt::f32, tag::nchw));
  plan_->slots[view].alias = plain;
  plan_->value_slot[op.output] = view;
}

void Builder::BuildInnerProduct(int i) {
  const Op& op = g_.ops[i];
  const int v = op.inputs[0];
  const int src = plan_->value_slot[v];
  const memory::desc& src_md = plan_->slots[src].md;
  const std::int64_t outs = static_cast<std::int64_t>(op.bias.size());
  const std::int64_t ins = g_.values[v].shape.c;
  // The input may be 4-D (N x C x 1 x 1, any layout) or 2-D: the weights follow.
  const bool four_d = src_md.dims().size() == 4;
  const memory::dims wdims = four_d ? memory::dims{outs, ins, 1, 1} : memory::dims{outs, ins};
  dnnl::post_ops po;
  for (const PostOp& p : op.post_ops) AppendEltwise(&po, p.eltwise, 1.0f);
  dnnl::primitive_attr attr = Attr();
  attr.set_post_ops(po);
  dnnl::inner_product_forward::desc desc(dnnl::prop_kind::forward_inference, src_md, memory::desc(wdims, dt::f32, tag::any),
                                         memory::desc({outs}, dt::f32, tag::x), memory::desc({batch_, outs}, dt::f32, tag::any));
  dnnl::inner_product_forward::primitive_desc pd(desc, attr, impl_.eng);
  const int w = Constant(i, DNNL_ARG_WEIGHTS, pd.weights_desc(), op.weights, wdims, four_d ? tag::oihw : tag::oi, 0, {});
  const int b = Constant(i, DNNL_ARG_BIAS, pd.bias_desc(), op.bias, {outs}, tag::x, 0, {});
  const int in = Get(v, pd.src_desc());
  const int dst = NewSlot(Slot::kActivation, pd.dst_desc());
  AddStep(dnnl::inner_product_forward(pd), pd.scratchpad_desc(),
          {{DNNL_ARG_SRC, in}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_BIAS, b}, {DNNL_ARG_DST, dst}}, Describe(op, "inner-product", pd),
          op.output);
  plan_->value_slot[op.output] = dst;
}

}  // namespace fruitpipe::model::onednn
