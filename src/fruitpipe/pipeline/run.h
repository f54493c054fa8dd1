// One invocation of the pipeline, in stages (stages.h): plan (list and shard the source),
// featurize the pending shards and commit each, the PCA stage (sum the statistics, fit or
// apply a model, project every shard), then finish (run.json, rejected.jsonl, _SUCCESS). The
// same code drives a single process, an MPI rank and an array-job worker, through the
// cluster::Coordinator.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "fruitpipe/cluster/coordinator.h"
#include "fruitpipe/dataset/plan.h"
#include "fruitpipe/image/decode.h"
#include "fruitpipe/model/featurizer.h"
#include "fruitpipe/parquet/parquet.h"
#include "fruitpipe/pca/pca.h"
#include "fruitpipe/storage/storage.h"

namespace fruitpipe::pipeline {

struct RunOptions {
  std::string command = "run";          // for run.json: run | featurize | pca | reduce
  std::string source;                   // source root URI (run, featurize)
  std::string output;                   // dataset root URI
  storage::StorageOptions storage;

  std::string model_card;               // resolved card path
  model::FeaturizerOptions featurizer;
  int batch_size = 32;
  int shard_size = 1024;
  int threads = 0;                      // 0: cores / processes on this machine
  image::DecodeLimits limits;
  parquet::Compression compression = parquet::Compression::kSnappy;

  bool pca_stage = true;                // false: featurize only (featurize, array workers)
  pca::PcaFitOptions pca_fit;           // used when pca_model is empty
  std::string pca_model;                // apply this model (file or a dataset folder)

  bool resume = false;                  // continue an unfinished run in `output`
  bool incremental = false;             // add the source's new images to `output`
  std::int64_t limit = 0;               // > 0: only the first N listed images (demos)
  // Returns a reason to leave a listed image out of the dataset (e.g. its subject withdrew
  // consent), or nullopt to admit it. Excluded images go to rejected.jsonl with the reason.
  // Without a filter, consent fails closed: contributed photos are left out ("no consent
  // ledger given"), catalogue images admitted.
  std::function<std::optional<std::string>(const dataset::SourceImage&)> admit_filter;
  // Called by root once run.json and rejected.jsonl are written, before _SUCCESS (the CLI
  // writes report.html here; the pipeline library does not depend on the report).
  std::function<void(storage::Storage& out)> before_success;
  bool progress = true;
};

// run.json's content (also written to OUT/run.json by root): the exit-status-relevant result.
nlohmann::json RunPipeline(const RunOptions& options, cluster::Coordinator& coordinator);

// The PCA stage alone on an existing dataset (`fruitpipe pca`, `fruitpipe reduce`).
nlohmann::json RunPcaOnly(const RunOptions& options, cluster::Coordinator& coordinator);

// Threads one process should use: `requested`, else the machine's cores shared among the
// processes of the job on this machine.
int ThreadsPerProcess(int requested, int local_processes);

}  // namespace fruitpipe::pipeline
