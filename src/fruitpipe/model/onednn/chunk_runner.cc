// Running the engine's plans over a batch: chunks of EngineOptions::chunk images, either on the
// calling thread with an OpenMP team or split over single-threaded image-parallel workers.
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <thread>

#include "fruitpipe/model/onednn/engine_internal.h"
#include "fruitpipe/model/onednn/plan_builder.h"

namespace fruitpipe::model::onednn {

Plan& EngineImpl::GetPlan(int runner, int images) {
  std::lock_guard lock(mu);
  auto& plan = plans[{runner, images}];
  if (!plan) plan = Builder(*this, images).Build();
  return *plan;
}

void EngineImpl::RunChunk(int runner, const float* input, int images, float* output,
                          const std::function<void(const Step&)>& after_step) {
  Plan& plan = GetPlan(runner, images);
  dnnl::stream& s = streams[static_cast<std::size_t>(runner + 1)];
  plan.slots[plan.input_slot].mem.set_data_handle(const_cast<float*>(input));
  plan.slots[plan.output_slot].mem.set_data_handle(output);
  for (Step& step : plan.steps) {
    step.prim.execute(s, step.exec_args);
    if (!after_step) continue;
    s.wait();
    after_step(step);
  }
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

}  // namespace fruitpipe::model::onednn
