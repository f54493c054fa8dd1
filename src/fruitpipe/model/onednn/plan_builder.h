// Builds one plan of the engine (engine_internal.h) for a chunk size. Internal to the backend.
// The core (slots, steps, reorders, constants) is plan_builder.cc; the primitives per op kind
// are conv_primitives.cc (Conv, with the fused 1x1 + depthwise pair), head_primitives.cc
// (GlobalAvgPool, Flatten, InnerProduct) and eltwise_primitives.cc (the Eltwise and Add ops
// that lowering could not fold into a post-op); buffers are placed by buffer_plan.h.
#pragma once

#include <cstdint>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <utility>
#include <vector>

#include "fruitpipe/model/onednn/engine_internal.h"

namespace fruitpipe::model::onednn {

inline dnnl::memory::dims ActivationDims(int batch, const Shape& s) { return {batch, s.c, s.h, s.w}; }

// oneDNN's eltwise for `e` on values stored with `step`.
void AppendEltwise(dnnl::post_ops* po, const Eltwise& e, float step);

// Builds one plan: steps in graph order, slots with lifetimes, then buffers.
class Builder {
 public:
  Builder(EngineImpl& impl, int batch) : impl_(impl), g_(impl.graph), batch_(batch), plan_(std::make_unique<Plan>()) {}
  std::unique_ptr<Plan> Build();

 private:
  int NewSlot(Slot::Kind kind, const dnnl::memory::desc& md);
  // Every plan primitive takes its scratchpad from the plan: plans run concurrently in
  // different threads (Engine::Run), so nothing may be shared through the library's.
  static dnnl::primitive_attr Attr();
  int AddStep(dnnl::primitive prim, const dnnl::memory::desc& scratchpad, std::vector<std::pair<int, int>> args,
              const std::string& description, int value = -1);
  // A slot holding value `v` in layout `md`, reordering (and requantizing) if needed.
  int Get(int v, const dnnl::memory::desc& md);
  // A step copying value `v` from slot `from` into slot `to`, whose int8 step is `to_step`.
  void Convert(int v, int from, int to, float to_step);
  // A constant in layout `md`, made from plain f32 `data` (dims `user_dims`, format `user_tag`)
  // by a reorder with `scales` (per `mask`) when given; cached across plans.
  int Constant(int op, int arg, const dnnl::memory::desc& md, const std::vector<float>& data,
               const dnnl::memory::dims& user_dims, dnnl::memory::format_tag user_tag, int mask,
               const std::vector<float>& scales);
  // The layout asked of a convolution's activations: blocked for fp32 convolutions, oneDNN's
  // choice for int8 ones and for 3-channel images.
  dnnl::memory::format_tag ActivationTag(bool int8, std::int64_t channels) const {
    return !int8 && channels > 4 ? impl_.blocked : dnnl::memory::format_tag::any;
  }
  // The step's line for Engine::Describe.
  std::string Describe(const Op& op, const std::string& kind, const dnnl::primitive_desc_base& pd) const;

  void BuildConv(int i);
  bool TryFusedDepthwise(int i);
  void BuildPool(int i);
  void BuildFlatten(int i);
  void BuildInnerProduct(int i);
  void BuildEltwise(int i);
  void BuildAdd(int i);

  EngineImpl& impl_;
  const Graph& g_;
  const int batch_;
  std::unique_ptr<Plan> plan_;
  std::vector<std::vector<std::pair<dnnl::memory::desc, int>>> views_;  // per value: other layouts made
  int skip_ = -1;  // an op already built as part of a fused primitive
};

}  // namespace fruitpipe::model::onednn
