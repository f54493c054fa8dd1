// Operations on a whole output dataset (layout.h), shared by everything that writes one (the
// pipeline, erasure) or reads one (report, serve, evaluation): its PCA model and
// Results_PCA parts, orphan sweeping, rejected.jsonl and the counts run.json reports.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "fruitpipe/dataset/layout.h"
#include "fruitpipe/dataset/plan.h"
#include "fruitpipe/dataset/results.h"
#include "fruitpipe/dataset/shard_record.h"
#include "fruitpipe/parquet/parquet.h"
#include "fruitpipe/pca/pca.h"
#include "fruitpipe/storage/storage.h"

namespace fruitpipe::dataset {

// Reads `keys` (many in flight on remote stores), by key. Throws IOError on the first failure.
std::map<std::string, std::string> FetchAll(storage::Storage& out, const std::vector<std::string>& keys);

// The statistics of the committed shards (only those in `indices` when given), merged in shard
// index order so that the sum, and the model fitted from it, are the same bytes every time.
pca::PcaStats SumShardStats(storage::Storage& out, const std::vector<ShardRecord>& records,
                            const std::set<int>* indices = nullptr);

// Loads a PCA model from a model file or a dataset folder holding _pca_model.bin.
pca::PcaModel LoadPcaModel(const std::string& uri, const storage::StorageOptions& storage_options);

// Writes _pca_model.bin and _pca_model.json (each only when it changed: a crash may have come
// between the two writes) and returns the model's id, which names its Results_PCA parts.
std::string StorePcaModel(storage::Storage& out, const std::string& model_bytes);

// run.json's "pca" object: the model's summary, whether it was fitted on this dataset, its id
// and where it came from ("fit" or the --pca-model argument).
nlohmann::json PcaSummary(const pca::PcaModel& model, const std::string& model_id, bool fitted,
                          const std::string& source);

// Projects the committed shard's Results part with `model` and writes its Results_PCA part;
// returns the part's key.
std::string WritePcaPart(storage::Storage& out, const ShardRecord& record, const pca::PcaModel& model,
                         const std::string& model_id, parquet::Compression codec);

// Deletes every Results_PCA part not in `keep`; returns how many.
std::int64_t DeletePcaPartsExcept(storage::Storage& out, const std::set<std::string>& keep);

// Deletes the Results parts and statistics no commit record names (left by a crashed run or
// erasure); returns how many. Must not run while another process commits shards.
std::int64_t SweepOrphans(storage::Storage& out, const std::vector<ShardRecord>& records);

// _erased_photos.json: the SHA-256 (hex) of the photos erased from the dataset — the minimum
// kept to honour an erasure (no name, subject or feature), so that no run featurizes the
// same bytes again — and the erasure epoch: how many erasures have changed the dataset. A
// model trained on the dataset records the epoch; a later one means it holds erased data.
struct ErasureRecord {
  std::int64_t epoch = 0;
  std::set<std::string> sha256;
};
ErasureRecord LoadErasureRecord(storage::Storage& out);
std::set<std::string> LoadErasedPhotos(storage::Storage& out);  // LoadErasureRecord's sha256
// Sets the epoch and adds the photos (written only when something changes).
void StoreErasureRecord(storage::Storage& out, std::int64_t epoch, const std::set<std::string>& sha256);

// rejected.jsonl: one {"path","reason"} object per line. A path that is not UTF-8 (rejected for
// that reason) is written with U+FFFD in its place.
std::string RejectedJsonl(const std::vector<Rejection>& rejected);
std::vector<Rejection> ParseRejectedJsonl(std::string_view text, const std::string& uri);  // CorruptionError

// The counts run.json gives, from what the dataset holds. `rejected` is every rejection of the
// dataset (rejected.jsonl): those the listing made and those in the commit records.
struct DatasetCounts {
  std::int64_t images = 0;    // Results rows
  std::int64_t rejected = 0;
  std::int64_t listed = 0;    // planned images and listing rejections
  std::int64_t shards = 0;
  std::int64_t failed = 0;    // images the shard workers could not read or decode
  std::map<std::string, std::int64_t> labels;  // planned images not rejected, by label

  // images, rejected, listed, shards_total, failed, labels
  void WriteTo(nlohmann::json& run) const;
};
DatasetCounts CountDataset(const DatasetPlan& plan, const std::vector<ShardRecord>& records,
                           const std::vector<Rejection>& rejected);

}  // namespace fruitpipe::dataset
