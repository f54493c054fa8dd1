#include "fruitpipe/model/onednn/buffer_plan.h"

#include <algorithm>
#include <cstdlib>
#include <new>
#include <vector>

namespace fruitpipe::model::onednn {

namespace {

using dnnl::memory;

// Activations: each slot with a lifetime gets a buffer free over it (views share their base's).
void AssignActivationBuffers(const dnnl::engine& eng, Plan* plan) {
  auto& slots = plan->slots;
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
    plan->buffers.push_back(p);
  }
  for (int k = 0; k < static_cast<int>(slots.size()); ++k) {
    Slot& s = slots[k];
    if (s.kind == Slot::kInput || s.kind == Slot::kOutput) {
      s.mem = memory(s.md, eng, DNNL_MEMORY_NONE);
    } else if (s.kind == Slot::kActivation) {
      const int owner = s.alias >= 0 ? s.alias : k;
      if (buffer_of[owner] >= 0) s.mem = memory(s.md, eng, plan->buffers[buffer_of[owner]]);
    }
  }
}

}  // namespace

void PlaceBuffers(const dnnl::engine& eng, Plan* plan) {
  AssignActivationBuffers(eng, plan);
  // Steps run one after another, so one scratchpad as large as the largest serves them all.
  std::size_t scratchpad = 0;
  for (const Step& step : plan->steps) scratchpad = std::max(scratchpad, step.scratchpad.get_size());
  void* scratch = scratchpad > 0 ? std::aligned_alloc(64, (scratchpad + 63) / 64 * 64) : nullptr;
  if (scratchpad > 0 && !scratch) throw std::bad_alloc();
  if (scratch) plan->buffers.push_back(scratch);
  for (Step& step : plan->steps) {
    for (auto [arg, slot] : step.args) step.exec_args[arg] = plan->slots[slot].mem;
    if (step.scratchpad.get_size() > 0) step.exec_args[DNNL_ARG_SCRATCHPAD] = memory(step.scratchpad, eng, scratch);
  }
}

}  // namespace fruitpipe::model::onednn
