// The output dataset: where every file of a run lives under OUT and how shards are committed.
//
//   Results/part-SSSSS-<run>.snappy.parquet      features, one row per image
//   Results_PCA/part-SSSSS-<run>.snappy.parquet  + pcaFeatures
//   _stats/shard-SSSSS.bin                       PCA sufficient statistics of the shard
//   _shards/shard-SSSSS.json                     commit record: the shard is committed when
//                                                this exists (written after the part file and
//                                                the statistics, each an atomic Put)
//   _plan.json  _pca_model.bin  _pca_model.json  run.json  rejected.jsonl  _SUCCESS
//
// A crash at any point leaves committed shards intact; uncommitted part files are orphans
// that the next run deletes. See docs/formats/dataset.md.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fruitpipe/pipeline/manifest.h"
#include "fruitpipe/storage/storage.h"

namespace fruitpipe::pipeline {

inline constexpr char kResultsDir[] = "Results";
inline constexpr char kResultsPcaDir[] = "Results_PCA";
inline constexpr char kPlanKey[] = "_plan.json";
inline constexpr char kPcaModelKey[] = "_pca_model.bin";
inline constexpr char kPcaModelJsonKey[] = "_pca_model.json";
inline constexpr char kSuccessKey[] = "_SUCCESS";
inline constexpr char kRunJsonKey[] = "run.json";
inline constexpr char kRejectedKey[] = "rejected.jsonl";

std::string ShardName(int index);                       // "00042"
std::string ResultsPartKey(int index, const std::string& run_id);
std::string ResultsPcaPartKey(int index, const std::string& run_id);
std::string StatsKey(int index);
std::string ShardRecordKey(int index);

// What the commit record of a shard says (JSON).
struct ShardRecord {
  int index = 0;
  std::string run_id;
  std::string part_key;        // Results part file
  std::string stats_key;
  std::int64_t rows = 0;
  std::vector<Rejection> rejected;
  nlohmann::json timing;       // worker, start/end and per-stage intervals (seconds)

  std::string ToJson() const;
  static ShardRecord FromJson(const std::string& text);
};

// Every committed shard of the dataset at `out`, by index.
std::vector<ShardRecord> LoadShardRecords(storage::Storage& out);

// Commits a shard: Results part, then stats, then the record (the commit point).
void CommitShard(storage::Storage& out, const ShardRecord& record, const std::string& part_bytes,
                 const std::string& stats_bytes);

}  // namespace fruitpipe::pipeline
