// One invocation of the pipeline: plan (list + shard), featurize pending shards, commit, then
// the PCA stage (sum statistics, fit or apply a model, transform every shard), then run.json,
// rejected.jsonl and _SUCCESS. The same function drives a single process, an MPI rank and an
// array-job worker, through the Coordinator.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "fruitpipe/image/decode.h"
#include "fruitpipe/model/featurizer.h"
#include "fruitpipe/parquet/parquet.h"
#include "fruitpipe/pca/pca.h"
#include "fruitpipe/pipeline/coordinator.h"
#include "fruitpipe/pipeline/manifest.h"
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
  std::function<std::optional<std::string>(const SourceImage&)> admit_filter;
  // Called by root once run.json and rejected.jsonl are written, before _SUCCESS (the CLI
  // writes report.html here; the pipeline library does not depend on the report).
  std::function<void(storage::Storage& out)> before_success;
  bool progress = true;
  std::string worker_mode = "local";    // local | mpi | worker
  int worker_index = 0;                 // worker mode: this worker takes the shards whose
  int worker_count = 1;                 //   index % worker_count == worker_index
};

// Exit-status-relevant result: run.json's content (also written to OUT/run.json by root).
nlohmann::json RunPipeline(const RunOptions& options, Coordinator& coordinator);

// The PCA stage alone on an existing dataset (`fruitpipe pca`, `fruitpipe reduce`).
nlohmann::json RunPcaOnly(const RunOptions& options, Coordinator& coordinator);

// Loads a PCA model from a model file or a dataset folder holding _pca_model.bin.
pca::PcaModel LoadPcaModel(const std::string& uri, const storage::StorageOptions& storage_options);

// Threads one process should use: `requested`, else the machine's cores shared among the
// processes of the job on this machine.
int ThreadsPerProcess(int requested, int local_processes);

}  // namespace fruitpipe::pipeline
