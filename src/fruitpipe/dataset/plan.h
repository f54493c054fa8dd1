// The plan of a dataset: which source images belong to which shard, and the feature model
// every shard must be made with. A shard is the unit of work, commit, resume and erasure; its
// size is fixed and independent of the number of workers, so every arrangement of workers
// produces the same shards and rows.
//
// Stored as OUT/_plan.json (see docs/formats/dataset.md).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "fruitpipe/storage/storage.h"

namespace fruitpipe::dataset {

struct SourceImage {
  std::string key;     // relative to the source root, e.g. "Apple Braeburn/3_100.jpg"
  std::string label;   // parent folder name
  std::uint64_t size = 0;
  std::optional<std::string> subject_id;  // from the key (SubjectFromKey)
};

struct ShardPlan {
  int index = 0;
  std::string run_id;  // the run that created the shard (names its part file)
  std::vector<SourceImage> images;
};

struct Rejection {
  std::string path;    // full URI
  std::string reason;
};

struct DatasetPlan {
  std::string source;          // source root URI
  int shard_size = 1024;
  std::vector<ShardPlan> shards;
  // The settings a resumed or incremental run must share with the first one: name, sha256,
  // input_size and precision of the feature model (features would not be comparable).
  nlohmann::json model = nlohmann::json::object();

  std::string ToJson() const;
  static DatasetPlan FromJson(const std::string& text);  // throws CorruptionError
  std::size_t num_images() const;
};

// OUT/_plan.json, or nullopt when `out` holds no dataset.
std::optional<DatasetPlan> LoadPlan(storage::Storage& out);
// Writes the plan unless `out` already holds these very bytes.
void StorePlan(storage::Storage& out, const DatasetPlan& plan);

// Contributed photos carry their pseudonymous subject in the file name:
// "<Label>/contrib-<subject_id>-<anything>" with subject_id = 64 hex digits (HMAC-SHA256 of
// the user id, docs/gdpr.md). Catalogue images have no subject.
std::optional<std::string> SubjectFromKey(std::string_view key);

// Lists `source` recursively, sorted. Hidden files and names starting with '_' are skipped;
// files without a parent folder (no label) are rejected with a reason.
std::vector<SourceImage> ListSource(storage::Storage& source, std::vector<Rejection>* rejected);

// The id of the shards one invocation adds: derived from what they hold, so every process
// (MPI ranks, array workers) computes it alone and a resumed run names its files as before.
std::string RunId(const std::string& source, const std::vector<SourceImage>& images, int shard_size);

// Cuts `images` (sorted) into shards of `shard_size`, numbered from `first_index`.
std::vector<ShardPlan> CutShards(const std::vector<SourceImage>& images, int shard_size,
                                 int first_index, const std::string& run_id);

}  // namespace fruitpipe::dataset
