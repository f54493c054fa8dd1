// PCA costs at MobileNetV2's width: the per-shard statistics update (a rank-1024 update of a
// 1280 × 1280 matrix), the reduce-side fit, and the per-row / per-shard transform.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "fruitpipe/pca/pca.h"

namespace fruitpipe::pca {
namespace {

constexpr int kDim = 1280;

std::vector<float> Rows(int n) {
  std::mt19937 rng(1);
  std::gamma_distribution<float> g(0.6f, 0.8f);  // non-negative, mean about 0.5, like pooled ReLU6
  std::vector<float> x(static_cast<std::size_t>(n) * kDim);
  for (float& v : x) v = std::min(g(rng), 6.0f);
  return x;
}

void BM_AddBatch1024(benchmark::State& state) {
  const std::vector<float> x = Rows(1024);
  PcaStats s(kDim);
  for (auto _ : state) s.AddBatch(x.data(), 1024);
  state.SetItemsProcessed(state.iterations() * 1024);
}
BENCHMARK(BM_AddBatch1024)->Unit(benchmark::kMillisecond);

void BM_SerializeStats(benchmark::State& state) {
  PcaStats s(kDim);
  const std::vector<float> x = Rows(64);
  s.AddBatch(x.data(), 64);
  for (auto _ : state) benchmark::DoNotOptimize(PcaStats::Deserialize(s.Serialize()));
}
BENCHMARK(BM_SerializeStats)->Unit(benchmark::kMillisecond);

void BM_Fit(benchmark::State& state) {
  const std::vector<float> x = Rows(2048);
  PcaStats s(kDim);
  s.AddBatch(x.data(), 2048);
  for (auto _ : state) benchmark::DoNotOptimize(FitPca(s, {.k = 256}));
}
BENCHMARK(BM_Fit)->Unit(benchmark::kMillisecond)->Iterations(2);

void BM_Transform(benchmark::State& state) {
  const std::vector<float> x = Rows(2048);
  PcaStats s(kDim);
  s.AddBatch(x.data(), 2048);
  const PcaModel m = FitPca(s, {.k = 256});
  std::vector<double> out(static_cast<std::size_t>(1024) * 256);
  if (state.range(0) == 1) {
    for (auto _ : state) m.Transform(x.data(), out.data());
  } else {
    for (auto _ : state) m.TransformBatch(x.data(), 1024, out.data());
  }
}
BENCHMARK(BM_Transform)->Arg(1)->Arg(1024)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace fruitpipe::pca
