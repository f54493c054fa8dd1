#include "fruitpipe/model/onednn/plan_builder.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "fruitpipe/model/onednn/buffer_plan.h"

namespace fruitpipe::model::onednn {

namespace {

using dnnl::memory;
using dt = memory::data_type;
using tag = memory::format_tag;

std::string DataTypeName(dt type) {
  switch (type) {
    case dt::f32: return "f32";
    case dt::s8: return "s8";
    case dt::u8: return "u8";
    case dt::s32: return "s32";
    default: return "?";
  }
}

// The md's layout in oneDNN's short notation, e.g. "u8:aBcd16b".
std::string LayoutName(const memory::desc& md) {
  const dnnl_memory_desc_t& d = md.data;
  std::string out = DataTypeName(md.data_type()) + ":";
  if (d.format_kind != dnnl_blocked) return out + "?";
  const auto& blk = d.format_desc.blocking;
  // Dimensions from outermost to innermost stride, upper-case where blocked.
  std::vector<int> order(static_cast<std::size_t>(d.ndims));
  for (int i = 0; i < d.ndims; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return blk.strides[a] > blk.strides[b]; });
  std::vector<bool> blocked(static_cast<std::size_t>(d.ndims), false);
  for (int i = 0; i < blk.inner_nblks; ++i) blocked[blk.inner_idxs[i]] = true;
  for (int i : order) out += static_cast<char>((blocked[i] ? 'A' : 'a') + i);
  for (int i = 0; i < blk.inner_nblks; ++i) out += std::to_string(blk.inner_blks[i]) + static_cast<char>('a' + blk.inner_idxs[i]);
  return out;
}

}  // namespace

void AppendEltwise(dnnl::post_ops* po, const Eltwise& e, float step) {
  if (e.kind == Eltwise::kLeakyRelu) {
    po->append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, e.alpha, 0.0f);
  } else if (e.lo == 0.0f && std::isinf(e.hi)) {
    po->append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
  } else if (e.lo == 0.0f) {
    po->append_eltwise(1.0f, dnnl::algorithm::eltwise_bounded_relu, e.hi / step, 0.0f);
  } else {
    const float big = std::numeric_limits<float>::max();
    po->append_eltwise(1.0f, dnnl::algorithm::eltwise_clip, std::isinf(e.lo) ? -big : e.lo / step,
                       std::isinf(e.hi) ? big : e.hi / step);
  }
}

int Builder::NewSlot(Slot::Kind kind, const memory::desc& md) {
  Slot s;
  s.kind = kind;
  s.md = md;
  plan_->slots.push_back(std::move(s));
  return static_cast<int>(plan_->slots.size()) - 1;
}

dnnl::primitive_attr Builder::Attr() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

int Builder::AddStep(dnnl::primitive prim, const memory::desc& scratchpad, std::vector<std::pair<int, int>> args,
                     const std::string& description, int value) {
  const int index = static_cast<int>(plan_->steps.size());
  for (auto [arg, slot] : args) {
    Slot& s = plan_->slots[slot];
    if (s.first < 0) s.first = index;
    s.last = index;
  }
  plan_->steps.push_back(Step{std::move(prim), std::move(args), scratchpad, {}, value, description});
  return index;
}

std::string Builder::Describe(const Op& op, const std::string& kind, const dnnl::primitive_desc_base& pd) const {
  return op.node + " " + kind + " " + pd.impl_info_str() + " " + LayoutName(pd.src_desc()) + " -> " +
         LayoutName(pd.dst_desc());
}

int Builder::Get(int v, const memory::desc& md) {
  const int base = plan_->value_slot[v];
  if (plan_->slots[base].md == md) return base;
  for (const auto& [view_md, slot] : views_[v]) {
    if (view_md == md) return slot;
  }
  const int slot = NewSlot(Slot::kActivation, md);
  Convert(v, base, slot, impl_.quant[v].step);
  views_[v].emplace_back(md, slot);
  return slot;
}

void Builder::Convert(int v, int from, int to, float to_step) {
  const memory::desc& from_md = plan_->slots[from].md;
  const memory::desc& to_md = plan_->slots[to].md;
  // Stored values are real / step; f32 slots hold real values.
  const float from_step = from_md.data_type() == dt::f32 ? 1.0f : impl_.quant[v].step;
  const float scale = from_step / (to_md.data_type() == dt::f32 ? 1.0f : to_step);
  dnnl::primitive_attr attr = Attr();
  if (scale != 1.0f) attr.set_output_scales(0, {scale});
  dnnl::reorder::primitive_desc pd(impl_.eng, from_md, impl_.eng, to_md, attr);
  AddStep(dnnl::reorder(pd), pd.scratchpad_desc(), {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}},
          g_.values[v].name + " reorder " + LayoutName(from_md) + " -> " + LayoutName(to_md));
}

int Builder::Constant(int op, int arg, const memory::desc& md, const std::vector<float>& data,
                      const memory::dims& user_dims, tag user_tag, int mask, const std::vector<float>& scales) {
  auto& cache = impl_.constants[{op, arg}];
  for (const auto& [cached_md, mem] : cache) {
    if (cached_md == md) {
      const int slot = NewSlot(Slot::kConstant, md);
      plan_->slots[slot].mem = mem;
      return slot;
    }
  }
  memory::desc user_md(user_dims, dt::f32, user_tag);
  memory user(user_md, impl_.eng, const_cast<float*>(data.data()));
  memory mem(md, impl_.eng);
  dnnl::primitive_attr attr;
  if (!scales.empty()) attr.set_output_scales(mask, scales);
  dnnl::reorder::primitive_desc pd(impl_.eng, user_md, impl_.eng, md, attr);
  dnnl::reorder(pd).execute(impl_.stream, user, mem);
  impl_.stream.wait();
  cache.emplace_back(md, mem);
  const int slot = NewSlot(Slot::kConstant, md);
  plan_->slots[slot].mem = mem;
  return slot;
}

std::unique_ptr<Plan> Builder::Build() {
  plan_->value_slot.assign(g_.values.size(), -1);
  views_.assign(g_.values.size(), {});
  plan_->input_slot = NewSlot(Slot::kInput, memory::desc(ActivationDims(batch_, g_.values[g_.input].shape), dt::f32, tag::nchw));
  plan_->value_slot[g_.input] = plan_->input_slot;
  for (int i = 0; i < static_cast<int>(g_.ops.size()); ++i) {
    if (i == skip_) continue;
    switch (g_.ops[i].kind) {
      case OpKind::kConv: BuildConv(i); break;
      case OpKind::kInnerProduct: BuildInnerProduct(i); break;
      case OpKind::kGlobalAvgPool: BuildPool(i); break;
      case OpKind::kFlatten: BuildFlatten(i); break;
      case OpKind::kAdd: BuildAdd(i); break;
      case OpKind::kEltwise: BuildEltwise(i); break;
    }
  }
  const int result = plan_->value_slot[g_.output];
  const memory::dims dims = plan_->slots[result].md.dims();
  plan_->output_slot = NewSlot(Slot::kOutput, memory::desc(dims, dt::f32, dims.size() == 2 ? tag::nc : tag::nchw));
  Convert(g_.output, result, plan_->output_slot, 1.0f);
  PlaceBuffers(impl_.eng, plan_.get());
  return std::move(plan_);
}

}  // namespace fruitpipe::model::onednn
