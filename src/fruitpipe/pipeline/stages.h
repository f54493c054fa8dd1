// The stages of a run (run.h), one file each: plan_stage.cc, featurize_stage.cc,
// pca_stage.cc, finish.cc. run.cc strings them together for `run`, `featurize`, `pca` and
// `reduce`.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fruitpipe/cluster/coordinator.h"
#include "fruitpipe/dataset/plan.h"
#include "fruitpipe/model/featurizer.h"
#include "fruitpipe/pca/pca.h"
#include "fruitpipe/pipeline/run.h"
#include "fruitpipe/storage/storage.h"

namespace fruitpipe::pipeline {

struct PlanOutcome {
  dataset::DatasetPlan plan;
  std::vector<dataset::Rejection> list_rejects;   // files the listing left out, with reasons
  double seconds = 0;
};

// Builds, or loads and extends (--resume, --incremental), the plan and stores it; every
// process gets the same (Coordinator::Decide). `model_identity` is what the plan's shards are
// made with: a dataset built with another model is refused.
PlanOutcome PlanStage(const RunOptions& options, storage::Storage& source, storage::Storage& out,
                      const nlohmann::json& model_identity, cluster::Coordinator& coordinator);

struct FeaturizeOutcome {
  pca::PcaStats stats;                       // over the shards this process featurized
  std::vector<int> processed;                // their indices, in the order featurized
  std::map<int, nlohmann::json> timing;      // their timing, by shard index
  std::int64_t images_processed = 0;         // on root: the whole job's
  std::int64_t shards_processed = 0;         // on root: the whole job's
};

// Featurizes and commits the plan's shards that have no commit record yet.
FeaturizeOutcome FeaturizeStage(const RunOptions& options, const PlanOutcome& plan, storage::Storage& source,
                                storage::Storage& out, model::Featurizer& featurizer, int threads,
                                cluster::Coordinator& coordinator);

struct PcaOutcome {
  nlohmann::json pca;           // run.json's "pca"
  nlohmann::json shard_timing;  // shard index -> projection interval
  double fit_seconds = 0;
  double transform_seconds = 0;
};

// Fits the PCA model (or loads --pca-model), stores it and writes every missing Results_PCA
// part, then deletes parts of older models and orphans. `mine` holds the statistics this
// process summed over the shards it featurized now (`processed`): only the others are read back.
PcaOutcome PcaStage(const RunOptions& options, storage::Storage& out, cluster::Coordinator& coordinator,
                    const pca::PcaStats& mine, const std::vector<int>& processed);

// Root only, once everything else is durable: run.json (with `run`'s fields and the
// dataset's counts), rejected.jsonl, the before_success hook, and _SUCCESS when the PCA stage
// ran. Returns run.json's content.
nlohmann::json Finish(const RunOptions& options, storage::Storage& out, nlohmann::json run,
                      const std::vector<dataset::Rejection>& list_rejects, const PcaOutcome* pca,
                      const std::map<int, nlohmann::json>& fresh_timing, double start);

}  // namespace fruitpipe::pipeline
