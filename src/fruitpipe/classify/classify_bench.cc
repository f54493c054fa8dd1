// Classifier training and prediction at Fruits-360 scale: 60,000 rows of 128 PCA features,
// 141 classes. Training runs once per configuration (it takes seconds). CPU time is the
// whole process's (all threads).
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>

#include "fruitpipe/classify/identifier.h"
#include "fruitpipe/classify/test_blobs.h"

namespace fruitpipe::classify {
namespace {

constexpr int kClasses = 141;
constexpr int kDim = 128;
constexpr int kPerClass = 426;  // 60,066 rows

const testing::Blobs& Data() {
  // Overlapping classes (centre spread 0.35σ per feature, about 87% separable) so the
  // optimum is interior and the optimiser has real work.
  static const testing::Blobs b = testing::MakeBlobs(kClasses, kDim, kPerClass, 0.35, 1.0, 1);
  return b;
}

void BM_TrainSoftmax(benchmark::State& state) {
  const testing::Blobs& b = Data();
  SoftmaxOptions o;
  o.single_precision = state.range(0) == 1;
  o.threads = static_cast<int>(state.range(1));
  LbfgsResult r;
  for (auto _ : state) benchmark::DoNotOptimize(TrainSoftmax(b.x, b.y, kClasses, o, &r));
  state.counters["iterations"] = r.iterations;
  state.counters["evaluations"] = r.evaluations;
  state.counters["converged"] = r.converged;
  state.SetLabel(std::string(o.single_precision ? "float" : "double") + ", stop: " + r.stop_reason);
}
BENCHMARK(BM_TrainSoftmax)
    ->ArgsProduct({{1, 0}, {1, 0}})
    ->ArgNames({"float", "threads"})
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1)
    ->MeasureProcessCPUTime()
    ->UseRealTime();

// One domain, one view per photo.
const TrainingSet& Set() {
  static const TrainingSet set = [] {
    const testing::Blobs& b = Data();
    TrainingSet s;
    s.dim = kDim;
    for (Eigen::Index i = 0; i < b.x.rows(); ++i) {
      const Eigen::VectorXf row = b.x.row(i).transpose().cast<float>();
      s.Add(row.data(), b.labels[static_cast<std::size_t>(i)], 0, false, static_cast<int>(i), 0);
    }
    return s;
  }();
  return set;
}

void BM_TrainIdentifier(benchmark::State& state) {
  for (auto _ : state) {
    const FruitIdentifier id = FruitIdentifier::Train(Set(), Taxonomy{}, ImagenetPrior{});
    state.counters["fit_accuracy"] = id.metadata().at("train_accuracy").get<double>();
    state.counters["calibration_accuracy"] = id.metadata().at("calibration").at(0).at("accuracy").get<double>();
    state.counters["iterations"] = id.metadata().at("optimizer").at("iterations").get<double>();
  }
}
BENCHMARK(BM_TrainIdentifier)->Unit(benchmark::kMillisecond)->Iterations(1)->MeasureProcessCPUTime()->UseRealTime();

void BM_Predict(benchmark::State& state) {
  const testing::Blobs& b = Data();
  static const FruitIdentifier id = FruitIdentifier::Train(Set(), Taxonomy{}, ImagenetPrior{});
  int i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(id.Predict(Set().features.data() + static_cast<std::size_t>(i) * kDim, 1));
    i = (i + 1) % static_cast<int>(b.x.rows());
  }
}
BENCHMARK(BM_Predict)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace fruitpipe::classify

BENCHMARK_MAIN();
