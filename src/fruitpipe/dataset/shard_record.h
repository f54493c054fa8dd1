// The commit record of a shard (_shards/shard-SSSSS.json): the shard is committed when it
// exists. It is written after the Results part and the statistics, each an atomic Put, so a
// crash at any point leaves committed shards intact; part files no record names are orphans
// (SweepOrphans in dataset.h). See docs/formats/dataset.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fruitpipe/dataset/plan.h"
#include "fruitpipe/storage/storage.h"

namespace fruitpipe::dataset {

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

}  // namespace fruitpipe::dataset
