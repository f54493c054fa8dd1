// The engine's state behind engine.h: plans (the compiled network for one chunk size on one
// runner) and EngineImpl, which owns them. Internal to the backend; shared by engine.cc, the
// plan builder (plan_builder.h), buffer planning (buffer_plan.h) and chunk_runner.cc.
#pragma once

#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "fruitpipe/model/onednn/engine.h"
#include "fruitpipe/model/onednn/quantize.h"

namespace fruitpipe::model::onednn {

// One memory of a plan: an activation (in a shared buffer), a constant, or the caller's
// input/output (pointers set per call).
struct Slot {
  enum Kind { kActivation, kConstant, kInput, kOutput };
  Kind kind = kActivation;
  dnnl::memory::desc md;
  int first = -1;   // first step that touches it
  int last = -1;    // last step that touches it
  int alias = -1;   // kActivation: lives in the buffer of this slot (another view of it)
  dnnl::memory mem;
};

struct Step {
  dnnl::primitive prim;
  std::vector<std::pair<int, int>> args;  // (DNNL_ARG_*, slot)
  dnnl::memory::desc scratchpad;          // the primitive's temporary memory (plan-owned)
  std::unordered_map<int, dnnl::memory> exec_args;
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

struct EngineImpl {
  Graph graph;
  EngineOptions options;
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{eng};  // plan building (weight reorders), under `mu`
  // fp32 activations in oneDNN's blocked layout for the machine's vector width. Measured on
  // AVX-512 (docs/engine.md): format_tag::any picks NHWC "brgconv" kernels, which cannot run
  // the fused depthwise correctly (wrong results) and interleave reorders with the blocked
  // fused ones; all-blocked with fusion is 25-35% faster. int8 keeps any (NHWC kernels).
  dnnl::memory::format_tag blocked = dnnl::memory::format_tag::aBcd8b;
  std::vector<Quant> quant;                      // per value
  std::vector<std::vector<float>> weight_steps;  // per op (int8 convolutions)
  // Plans by (runner, images). Runner w >= 0 is one single-threaded worker of the
  // image-parallel split; kTeam is one caller with an OpenMP team of options.threads.
  static constexpr int kTeam = -1;
  std::map<std::pair<int, int>, std::unique_ptr<Plan>> plans;
  std::vector<dnnl::stream> streams;  // per runner: index runner + 1
  // Reordered constants, shared by plans: (op, argument) -> [(layout, memory)].
  std::map<std::pair<int, int>, std::vector<std::pair<dnnl::memory::desc, dnnl::memory>>> constants;
  std::mutex mu;  // plans and constants

  EngineImpl(Graph g, const EngineOptions& o, const Ranges& ranges);
  // The plan for `images` on `runner`; builds it with the calling thread's OpenMP settings,
  // which must be the runner's.
  Plan& GetPlan(int runner, int images);
  // Runs `images` images from `input` on `runner`'s stream, one plan execution per chunk.
  // With `after_step`, waits for each step and calls it before the next: a slot is reused
  // once its value is dead, so a value is readable only right after its step.
  void RunChunk(int runner, const float* input, int images, float* output,
                const std::function<void(const Step&)>& after_step = {});
  // Calls run(runner, first image, images) for each chunk of a batch: on this thread with an
  // OpenMP team (runner kTeam) or single-threaded (runner 0) when the batch is too small to
  // split, else on options.threads image-parallel workers (runners 0..threads-1).
  void ForEachChunk(int batch, const std::function<void(int, int, int)>& run);
};

}  // namespace fruitpipe::model::onednn
