// Element-wise ops as primitives of their own: the Relu/Clip/LeakyRelu and Add nodes that
// lowering could not fold into the op before them as a post-op or bias (onnx_fusion.cc).
#include "fruitpipe/model/onednn/plan_builder.h"

namespace fruitpipe::model::onednn {

namespace {

using dnnl::memory;

}  // namespace

void Builder::BuildEltwise(int i) {
  const Op& op = g_.ops[i];
  const int src = plan_->value_slot[op.inputs[0]];
  dnnl::post_ops po;
  AppendEltwise(&po, op.eltwise, 1.0f);
  float scale, alpha, beta;
  dnnl::algorithm alg;
  po.get_params_eltwise(0, scale, alg, alpha, beta);
  dnnl::eltwise_forward::desc desc(dnnl::prop_kind::forward_inference, alg, plan_->slots[src].md, alpha, beta);
  dnnl::eltwise_forward::primitive_desc pd(desc, Attr(), impl_.eng);
  const int dst = NewSlot(Slot::kActivation, pd.dst_desc());
  AddStep(dnnl::eltwise_forward(pd), pd.scratchpad_desc(), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}}, Describe(op, "eltwise", pd), op.output);
  plan_->value_slot[op.output] = dst;
}

void Builder::BuildAdd(int i) {
  const Op& op = g_.ops[i];
  const int a = plan_->value_slot[op.inputs[0]];
  const memory::desc& md = plan_->slots[a].md;
  const int b = Get(op.inputs[1], md);
  dnnl::binary::desc desc(dnnl::algorithm::binary_add, md, md, md);
  dnnl::binary::primitive_desc pd(desc, Attr(), impl_.eng);
  const int dst = NewSlot(Slot::kActivation, pd.dst_desc());
  AddStep(dnnl::binary(pd), pd.scratchpad_desc(), {{DNNL_ARG_SRC_0, a}, {DNNL_ARG_SRC_1, b}, {DNNL_ARG_DST, dst}}, Describe(op, "add", pd), op.output);
  plan_->value_slot[op.output] = dst;
}

}  // namespace fruitpipe::model::onednn
