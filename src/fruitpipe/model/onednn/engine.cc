#include "fruitpipe/model/onednn/engine.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "fruitpipe/model/onednn/engine_internal.h"
#include "fruitpipe/model/onednn/quantize.h"

namespace fruitpipe::model::onednn {

EngineImpl::EngineImpl(Graph g, const EngineOptions& o, const Ranges& ranges) : graph(std::move(g)), options(o) {
  if (options.threads <= 0) options.threads = omp_get_num_procs();
  if (options.chunk <= 0) options.chunk = 4;
  for (int r = kTeam; r < options.threads; ++r) streams.emplace_back(eng);
  const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  const auto avx512 = static_cast<unsigned>(dnnl::cpu_isa::avx512_core);
  if ((isa & avx512) == avx512) blocked = dnnl::memory::format_tag::aBcd16b;
  quant = options.int8 ? QuantizeValues(graph, ranges) : std::vector<Quant>(graph.values.size());
  weight_steps = QuantizeWeights(graph, quant);
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
  // Each value is read right after its step, before a later step may reuse its buffer.
  impl.ForEachChunk(batch, [&](int runner, int start, int images) {
    Ranges& r = seen[static_cast<std::size_t>(runner + 1)];
    std::vector<float>& output = outputs[static_cast<std::size_t>(runner + 1)];
    output.resize(static_cast<std::size_t>(images * out));
    const float* chunk_input = input + start * in;
    raise(r[g.input], chunk_input, static_cast<std::size_t>(images * in));
    impl.RunChunk(runner, chunk_input, images, output.data(), [&](const Step& step) {
      if (step.value < 0) return;
      const dnnl::memory& m = step.exec_args.at(DNNL_ARG_DST);
      raise(r[step.value], static_cast<const float*>(m.get_data_handle()), m.get_desc().get_size() / sizeof(float));
    });
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
