#include "fruitpipe/model/onednn/engine.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <atomic>
#include <functional>
#include <exception>
#include <map>
#include <mutex>
#include <thread>
#include <stdexcept>
#include <oneapi/dnnl/dnnl.hpp>
#include <unordered_map>

#include "fruitpipe/common/error.h"

namespace fruitpipe::model::onednn {

namespace {

using dnnl::memory;
using dt = memory::data_type;
using tag = memory::format_tag;

// How a value is stored: real = stored * step. fp32 values have step 1.
struct Quant {
  dt type = dt::f32;
  float step = 1.0f;
  bool is_int8() const { return type != dt::f32; }
};

// One memory of a plan: an activation (in a shared buffer), a constant, or the caller's
// input/output (pointers set per call).
struct Slot {
  enum Kind { kActivation, kConstant, kInput, kOutput };
  Kind kind = kActivation;
  memory::desc md;
  int first = -1;   // first step that touches it
  int last = -1;    // last step that touches it
  int alias = -1;   // kActivation: lives in the buffer of this slot (another view of it)
  memory mem;
};

struct Step {
  dnnl::primitive prim;
  std::vector<std::pair<int, int>> args;  // (DNNL_ARG_*, slot)
  memory::desc scratchpad;                // the primitive's temporary memory (plan-owned)
  std::unordered_map<int, memory> exec_args;
  int value = -1;  // the graph value complete after this step
  std::string description;
};

struct Plan {
  std::vector<Slot> slots;
  std::vector<Step> steps;
  std::vector<int> value_slot;  // graph value -> slot holding it
  int input_slot = -1;
  int output_slot = -1;
  std::vector<void*> buffers;  // activations, then one scratchpad shared by the steps

  Plan() = default;
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
  ~Plan() {
    for (void* b : buffers) std::free(b);
  }
};

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

memory::dims ActivationDims(int batch, const Shape& s) { return {batch, s.c, s.h, s.w}; }

// oneDNN's eltwise for `e` on values stored with `step`.
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

struct EngineImpl {
  Graph graph;
  EngineOptions options;
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{eng};  // plan building (weight reorders), under `mu`
  // fp32 activations in oneDNN's blocked layout for the machine's vector width. Measured on
  // AVX-512 (docs/engine.md): format_tag::any picks NHWC "brgconv" kernels, which cannot run
  // the fused depthwise correctly (wrong results) and interleave reorders with the blocked
  // fused ones; all-blocked with fusion is 25-35% faster. int8 keeps any (NHWC kernels).
  tag blocked = tag::aBcd8b;
  std::vector<Quant> quant;                    // per value
  std::vector<std::vector<float>> weight_steps;  // per op (int8 convolutions)
  // Plans by (runner, images). Runner w >= 0 is one single-threaded worker of the
  // image-parallel split; kTeam is one caller with an OpenMP team of options.threads.
  static constexpr int kTeam = -1;
  std::map<std::pair<int, int>, std::unique_ptr<Plan>> plans;
  std::vector<dnnl::stream> streams;  // per runner: index runner + 1
  // Reordered constants, shared by plans: (op, argument) -> [(layout, memory)].
  std::map<std::pair<int, int>, std::vector<std::pair<memory::desc, memory>>> constants;
  std::mutex mu;  // plans and constants

  EngineImpl(Graph g, const EngineOptions& o, const Ranges& ranges);
  // The plan for `images` on `runner`; builds it with the calling thread's OpenMP settings,
  // which must be the runner's.
  Plan& GetPlan(int runner, int images);
  // Runs `images` images from `input` on `runner`'s stream, one plan execution per chunk.
  void RunChunk(int runner, const float* input, int images, float* output);
  // Calls run(runner, first image, images) for each chunk of a batch: on this thread with an
  // OpenMP team (runner kTeam) or single-threaded (runner 0) when the batch is too small to
  // split, else on options.threads image-parallel workers (runners 0..threads-1).
  void ForEachChunk(int batch, const std::function<void(int, int, int)>& run);
};

namespace {

// Builds one plan: steps in graph order, slots with lifetimes, then buffers.
class Builder {
 public:
  Builder(EngineImpl& impl, int batch) : impl_(impl), g_(impl.graph), batch_(batch), plan_(std::make_unique<Plan>()) {}
  std::unique_ptr<Plan> Build();

 private:
  int NewSlot(Slot::Kind kind, const memory::desc& md) {
    Slot s;
    s.kind = kind;
    s.md = md;
    plan_->slots.push_back(std::move(s));
    return static_cast<int>(plan_->slots.size()) - 1;
  }
  // Every plan primitive takes its scratchpad from the plan: plans run concurrently in
  // different threads (Engine::Run), so nothing may be shared through the library's.
  static dnnl::primitive_attr Attr() {
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    return attr;
  }
  int AddStep(dnnl::primitive prim, const memory::desc& scratchpad, std::vector<std::pair<int, int>> args,
              const std::string& description, int value = -1) {
    const int index = static_cast<int>(plan_->steps.size());
    for (auto [arg, slot] : args) {
      Slot& s = plan_->slots[slot];
      if (s.first < 0) s.first = index;
      s.last = index;
    }
    plan_->steps.push_back(Step{std::move(prim), std::move(args), scratchpad, {}, value, description});
    return index;
  }
  // A slot holding value `v` in layout `md`, reordering (and requantizing) if needed.
  int Get(int v, const memory::desc& md);
  // A step copying value `v` from slot `from` into slot `to`, whose int8 step is `to_step`.
  void Convert(int v, int from, int to, float to_step);
  // A constant in layout `md`, made from plain f32 `data` (dims `user_dims`, format `user_tag`)
  // by a reorder with `scales` (per `mask`) when given; cached across plans.
  int Constant(int op, int arg, const memory::desc& md, const std::vector<float>& data, const memory::dims& user_dims,
               tag user_tag, int mask, const std::vector<float>& scales);
  // The layout asked of a convolution's activations: blocked for fp32 convolutions, oneDNN's
  // choice for int8 ones and for 3-channel images.
  tag ActivationTag(bool int8, std::int64_t channels) const {
    return !int8 && channels > 4 ? impl_.blocked : tag::any;
  }
  std::string Describe(const Op& op, const std::string& kind, const dnnl::primitive_desc_base& pd) const {
    return op.node + " " + kind + " " + pd.impl_info_str() + " " + LayoutName(pd.src_desc()) + " -> " +
           LayoutName(pd.dst_desc());
  }

  void BuildConv(int i);
  bool TryFusedDepthwise(int i);
  void BuildPool(int i);
  void BuildFlatten(int i);
  void BuildInnerProduct(int i);
  void BuildEltwise(int i);
  void BuildAdd(int i);
  void AssignBuffers();

  EngineImpl& impl_;
  const Graph& g_;
  const int batch_;
  std::unique_ptr<Plan> plan_;
  std::vector<std::vector<std::pair<memory::desc, int>>> views_;  // per value: other layouts made
  int skip_ = -1;  // an op already built as part of a fused primitive
};

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

}  // namespace

namespace {

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
    const auto& ws = impl_.weight_steps[i];
    std::vector<float> scales(ws.size());
    inverse_steps.resize(ws.size());
    for (std::size_t o = 0; o < ws.size(); ++o) {
      scales[o] = qs.step * ws[o] / qd.step;
      inverse_steps[o] = 1.0f / ws[o];
      bias[o] /= qs.step * ws[o];  // oneDNN adds the bias to the s32 accumulator
    }
    attr.set_output_scales(1 << 1, scales);
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
    const auto& ws = impl_.weight_steps[i];
    const auto& dws = impl_.weight_steps[i + 1];
    std::vector<float> scales(ws.size());
    inverse_steps.resize(ws.size());
    for (std::size_t o = 0; o < ws.size(); ++o) {
      scales[o] = qs.step * ws[o] / qm.step;
      inverse_steps[o] = 1.0f / ws[o];
      bias[o] /= qs.step * ws[o];
    }
    attr.set_output_scales(1 << 1, scales);
    dw_scales.resize(dws.size());
    dw_inverse_steps.resize(dws.size());
    for (std::size_t c = 0; c < dws.size(); ++c) {
      dw_scales[c] = qm.step * dws[c] / qd.step;
      dw_inverse_steps[c] = 1.0f / dws[c];
      dw_bias[c] /= qm.step * dws[c];
    }
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

void Builder::AssignBuffers() {
  auto& slots = plan_->slots;
  for (Slot& s : slots) {  // a view keeps its base alive as long as itself
    if (s.alias < 0 || s.first < 0) continue;
    Slot& base = slots[s.alias];
    base.first = base.first < 0 ? s.first : std::min(base.first, s.first);
    base.last = std::max(base.last, s.last);
  }
  std::vector<int> order;
  for (int k = 0; k < static_cast<int>(slots.size()); ++k) {
    if (slots[k].kind == Slot::kActivation && slots[k].alias < 0 && slots[k].first >= 0) order.push_back(k);
  }
  std::stable_sort(order.begin(), order.end(), [&](int x, int y) { return slots[x].first < slots[y].first; });
  struct Buffer {
    std::size_t size = 0;
    int busy_until = -1;  // last step reading it
  };
  std::vector<Buffer> buffers;
  std::vector<int> buffer_of(slots.size(), -1);
  for (int k : order) {
    const std::size_t need = slots[k].md.get_size();
    // Best fit among free buffers; else grow the largest free one; else a new buffer.
    int best = -1;
    for (int b = 0; b < static_cast<int>(buffers.size()); ++b) {
      if (buffers[b].busy_until >= slots[k].first) continue;
      const bool fits = buffers[b].size >= need;
      if (best < 0) {
        best = b;
        continue;
      }
      const bool best_fits = buffers[best].size >= need;
      if ((fits && (!best_fits || buffers[b].size < buffers[best].size)) || (!fits && !best_fits && buffers[b].size > buffers[best].size)) {
        best = b;
      }
    }
    if (best < 0) {
      buffers.push_back({});
      best = static_cast<int>(buffers.size()) - 1;
    }
    buffers[best].size = std::max(buffers[best].size, need);
    buffers[best].busy_until = slots[k].last;
    buffer_of[k] = best;
  }
  for (const Buffer& b : buffers) {
    void* p = std::aligned_alloc(64, (b.size + 63) / 64 * 64);
    if (!p) throw std::bad_alloc();
    plan_->buffers.push_back(p);
  }
  for (int k = 0; k < static_cast<int>(slots.size()); ++k) {
    Slot& s = slots[k];
    if (s.kind == Slot::kInput || s.kind == Slot::kOutput) {
      s.mem = memory(s.md, impl_.eng, DNNL_MEMORY_NONE);
    } else if (s.kind == Slot::kActivation) {
      const int owner = s.alias >= 0 ? s.alias : k;
      if (buffer_of[owner] >= 0) s.mem = memory(s.md, impl_.eng, plan_->buffers[buffer_of[owner]]);
    }
  }
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
  AssignBuffers();
  std::size_t scratchpad = 0;
  for (const Step& step : plan_->steps) scratchpad = std::max(scratchpad, step.scratchpad.get_size());
  void* scratch = scratchpad > 0 ? std::aligned_alloc(64, (scratchpad + 63) / 64 * 64) : nullptr;
  if (scratchpad > 0 && !scratch) throw std::bad_alloc();
  if (scratch) plan_->buffers.push_back(scratch);
  for (Step& step : plan_->steps) {
    for (auto [arg, slot] : step.args) step.exec_args[arg] = plan_->slots[slot].mem;
    if (step.scratchpad.get_size() > 0) step.exec_args[DNNL_ARG_SCRATCHPAD] = memory(step.scratchpad, impl_.eng, scratch);
  }
  return std::move(plan_);
}

}  // namespace

EngineImpl::EngineImpl(Graph g, const EngineOptions& o, const Ranges& ranges) : graph(std::move(g)), options(o) {
  if (options.threads <= 0) options.threads = omp_get_num_procs();
  if (options.chunk <= 0) options.chunk = 4;
  for (int r = kTeam; r < options.threads; ++r) streams.emplace_back(eng);
  const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  const auto avx512 = static_cast<unsigned>(dnnl::cpu_isa::avx512_core);
  if ((isa & avx512) == avx512) blocked = tag::aBcd16b;
  quant.assign(graph.values.size(), Quant{});
  weight_steps.resize(graph.ops.size());
  if (!options.int8) return;
  if (ranges.size() != graph.values.size()) {
    throw InvalidArgumentError("model " + graph.model + ": int8 needs activation ranges from calibration images");
  }
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
  for (int i = 0; i < static_cast<int>(graph.ops.size()); ++i) {
    const Op& op = graph.ops[i];
    if (op.kind == OpKind::kConv && quant[op.inputs[0]].is_int8()) weight_steps[i] = WeightSteps(op);
  }
}

Plan& EngineImpl::GetPlan(int runner, int images) {
  std::lock_guard lock(mu);
  auto& plan = plans[{runner, images}];
  if (!plan) plan = Builder(*this, images).Build();
  return *plan;
}

void EngineImpl::RunChunk(int runner, const float* input, int images, float* output) {
  Plan& plan = GetPlan(runner, images);
  dnnl::stream& s = streams[runner + 1];
  plan.slots[plan.input_slot].mem.set_data_handle(const_cast<float*>(input));
  plan.slots[plan.output_slot].mem.set_data_handle(output);
  for (Step& step : plan.steps) step.prim.execute(s, step.exec_args);
  s.wait();
}

void EngineImpl::ForEachChunk(int batch, const std::function<void(int, int, int)>& run) {
  const int chunks = (batch + options.chunk - 1) / options.chunk;
  auto images_of = [&](int c) { return std::min(options.chunk, batch - c * options.chunk); };
  const int workers = options.split_images ? std::min(options.threads, chunks) : 1;
  if (workers <= 1) {
    // Too few images to split (or asked not to): the primitives use every thread instead.
    omp_set_num_threads(options.threads);
    const int runner = options.threads > 1 ? kTeam : 0;
    for (int c = 0; c < chunks; ++c) run(runner, c * options.chunk, images_of(c));
    return;
  }
  // Image-parallel: each worker runs whole chunks single-threaded, taking the next chunk when
  // it is done, so a worker whose core is busy with something else just does fewer chunks
  // instead of stalling an OpenMP team at every primitive (docs/engine.md).
  std::atomic<int> next{0};
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(workers));
  auto work = [&](int w) {
    try {
      omp_set_num_threads(1);
      for (int c = next++; c < chunks; c = next++) run(w, c * options.chunk, images_of(c));
    } catch (...) {
      errors[static_cast<std::size_t>(w)] = std::current_exception();
      next = chunks;
    }
  };
  std::vector<std::thread> helpers;
  for (int w = 1; w < workers; ++w) helpers.emplace_back(work, w);
  work(0);
  for (auto& t : helpers) t.join();
  for (const auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

Engine::Engine(Graph graph, const EngineOptions& options, const Ranges& ranges)
    : impl_(std::make_unique<EngineImpl>(std::move(graph), options, ranges)) {}

Engine::~Engine() = default;

const Graph& Engine::graph() const { return impl_->graph; }
int Engine::threads() const { return impl_->options.threads; }
std::int64_t Engine::input_floats() const { return impl_->graph.values[impl_->graph.input].shape.size(); }
std::int64_t Engine::output_floats() const { return impl_->graph.values[impl_->graph.output].shape.size(); }

void Engine::Run(const float* input, int batch, float* output) {
  EngineImpl& impl = *impl_;
  const std::int64_t in = input_floats(), out = output_floats();
  impl.ForEachChunk(batch, [&](int runner, int start, int images) {
    impl.RunChunk(runner, input + start * in, images, output + start * out);
  });
}

void Engine::MeasureRanges(const float* input, int batch, Ranges* ranges) {
  // Every value must be materialized in f32: no int8, no fused depthwise intermediates.
  if (impl_->options.int8 || impl_->options.fuse_depthwise) {
    throw std::logic_error("MeasureRanges needs an fp32 engine without depthwise fusion");
  }
  EngineImpl& impl = *impl_;
  const Graph& g = impl.graph;
  const std::int64_t in = input_floats(), out = output_floats();
  // Per runner (index runner + 1): its ranges and an output buffer for one chunk.
  const std::size_t runners = impl.streams.size();
  std::vector<Ranges> seen(runners, Ranges(g.values.size(), 0.0f));
  std::vector<std::vector<float>> outputs(runners);
  auto raise = [](float& range, const float* p, std::size_t n) {
    for (std::size_t k = 0; k < n; ++k) range = std::max(range, std::fabs(p[k]));
  };
  // Steps run one at a time, each read before the next: a slot is reused once its value is
  // dead, so every value is readable only right after its step.
  impl.ForEachChunk(batch, [&](int runner, int start, int images) {
    Ranges& r = seen[static_cast<std::size_t>(runner + 1)];
    std::vector<float>& output = outputs[static_cast<std::size_t>(runner + 1)];
    output.resize(static_cast<std::size_t>(images * out));
    const float* chunk_input = input + start * in;
    raise(r[g.input], chunk_input, static_cast<std::size_t>(images * in));
    Plan& plan = impl.GetPlan(runner, images);
    dnnl::stream& s = impl.streams[static_cast<std::size_t>(runner + 1)];
    plan.slots[plan.input_slot].mem.set_data_handle(const_cast<float*>(chunk_input));
    plan.slots[plan.output_slot].mem.set_data_handle(output.data());
    for (Step& step : plan.steps) {
      step.prim.execute(s, step.exec_args);
      s.wait();
      if (step.value < 0) continue;
      const memory& m = step.exec_args.at(DNNL_ARG_DST);
      raise(r[step.value], static_cast<const float*>(m.get_data_handle()), m.get_desc().get_size() / sizeof(float));
    }
  });
  ranges->resize(g.values.size(), 0.0f);
  for (const Ranges& r : seen) {
    for (std::size_t v = 0; v < r.size(); ++v) (*ranges)[v] = std::max((*ranges)[v], r[v]);
  }
}

std::vector<std::string> Engine::Describe(int batch) {
  omp_set_num_threads(1);
  std::vector<std::string> lines;
  for (const Step& step : impl_->GetPlan(0, std::min(batch, impl_->options.chunk)).steps) lines.push_back(step.description);
  return lines;
}

}  // namespace fruitpipe::model::onednn
