#include "fruitpipe/pipeline/run.h"

#include <omp.h>

#include <algorithm>
#include <thread>

#include <opencv2/core.hpp>

#include "fruitpipe/common/error.h"
#include "fruitpipe/common/time.h"
#include "fruitpipe/dataset/layout.h"
#include "fruitpipe/pipeline/stages.h"

namespace fruitpipe::pipeline {

using nlohmann::json;

int ThreadsPerProcess(int requested, int local_processes) {
  if (requested > 0) return requested;
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::max(1, cores / std::max(1, local_processes));
}

json RunPipeline(const RunOptions& o, cluster::Coordinator& coord) {
  const double start = WallSeconds();
  const int threads = ThreadsPerProcess(o.threads, coord.local_size());
  cv::setNumThreads(threads);
  omp_set_num_threads(threads);

  auto source = storage::OpenStorage(o.source, o.storage);
  auto out = storage::OpenStorage(o.output, o.storage);

  const model::ModelCard card = model::LoadModelCard(o.model_card);
  model::FeaturizerOptions fopt = o.featurizer;
  fopt.threads = threads;
  std::unique_ptr<model::Featurizer> featurizer = model::CreateFeaturizer(card, fopt);
  const json identity = {{"name", card.name}, {"sha256", card.sha256},
                         {"input_size", featurizer->input_spec().width}, {"precision", fopt.precision}};

  const PlanOutcome plan = PlanStage(o, *source, *out, identity, coord);
  const FeaturizeOutcome featurized = FeaturizeStage(o, plan, *source, *out, *featurizer, threads, coord);
  json run = {{"command", o.command},
              {"run_id", plan.plan.shards.empty() ? "" : plan.plan.shards.back().run_id},
              {"images_processed", featurized.images_processed},
              {"list_seconds", plan.seconds},
              {"shards_processed", featurized.shards_processed},
              {"workers", {{"processes", coord.size()}, {"threads_per_process", threads},
                           {"cores", std::thread::hardware_concurrency()}, {"mode", coord.mode()}}},
              {"model", {{"name", card.name}, {"sha256", card.sha256}, {"card", card.card_path},
                         {"backend", featurizer->backend_name()}, {"precision", fopt.precision},
                         {"input_size", featurizer->input_spec().width}, {"dim", featurizer->dim()}}}};
  featurizer.reset();  // free the engine's buffers before the PCA stage
  coord.Barrier();

  if (!o.pca_stage) {
    // `featurize` finishes without a model; array workers leave that to `fruitpipe reduce`.
    if (!coord.is_root()) return run;
    return Finish(o, *out, run, plan.list_rejects, nullptr, featurized.timing, start);
  }
  const PcaOutcome pca = PcaStage(o, *out, coord, featurized.stats, featurized.processed);
  if (!coord.is_root()) return run;
  return Finish(o, *out, run, plan.list_rejects, &pca, featurized.timing, start);
}

json RunPcaOnly(const RunOptions& o, cluster::Coordinator& coord) {
  const double start = WallSeconds();
  omp_set_num_threads(ThreadsPerProcess(o.threads, coord.local_size()));
  auto out = storage::OpenStorage(o.output, o.storage);
  if (!out->Exists(dataset::kPlanKey)) throw InvalidArgumentError(out->Uri("") + ": not a fruitpipe dataset (no _plan.json)");
  out->Delete(dataset::kSuccessKey);
  const PcaOutcome pca = PcaStage(o, *out, coord, pca::PcaStats(), {});
  if (!coord.is_root()) return {};
  // Keep the figures of the run that featurized, add this stage's.
  json run = json::object();
  if (auto previous = out->GetIfExists(dataset::kRunJsonKey)) run = json::parse(*previous);
  run["command"] = o.command;
  run["images_processed"] = 0;
  for (const char* k : {"seconds", "images_per_second", "stages", "shard_timeline", "pca"}) run.erase(k);
  return Finish(o, *out, run, {}, &pca, {}, start);
}

}  // namespace fruitpipe::pipeline
