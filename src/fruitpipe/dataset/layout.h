// Where every file of a dataset lives under OUT, and how its files are named. The one place
// that knows the layout (docs/formats/dataset.md):
//
//   Results/part-SSSSS-<run>.<codec>.parquet      features, one row per image
//   Results_PCA/part-SSSSS-<model>.<codec>.parquet  the same rows with pcaFeatures
//   _stats/shard-SSSSS[-<id>].bin                 PCA sufficient statistics of the shard
//   _shards/shard-SSSSS.json                      commit record (shard_record.h)
//   _plan.json  _pca_model.bin  _pca_model.json  run.json  rejected.jsonl  report.html
//   evaluation.json
//   _erasure.json (an erasure in progress)  _erased_photos.json  _SUCCESS
//
// <codec> is "snappy" or "zstd"; an uncompressed part is plain ".parquet" (Spark's names).
// <run> and <model> are content ids (ContentId): every process derives the same names
// without talking to the others, and a resumed run names its files as before.
#pragma once

#include <string>
#include <string_view>

#include "fruitpipe/parquet/parquet.h"

namespace fruitpipe::dataset {

inline constexpr char kResultsDir[] = "Results";
inline constexpr char kResultsPcaDir[] = "Results_PCA";
inline constexpr char kStatsDir[] = "_stats";
inline constexpr char kShardsDir[] = "_shards";
inline constexpr char kPlanKey[] = "_plan.json";
inline constexpr char kPcaModelKey[] = "_pca_model.bin";
inline constexpr char kPcaModelJsonKey[] = "_pca_model.json";
inline constexpr char kSuccessKey[] = "_SUCCESS";
inline constexpr char kRunJsonKey[] = "run.json";
inline constexpr char kRejectedKey[] = "rejected.jsonl";
inline constexpr char kReportKey[] = "report.html";
inline constexpr char kEvaluationKey[] = "evaluation.json";  // `fruitpipe evaluate` on this dataset
inline constexpr char kErasureMarkerKey[] = "_erasure.json";
// The SHA-256 of every photo erased from the dataset (right to erasure): what keeps a copy
// still under the source from coming back with the next run (dataset.h, ErasedPhotos).
inline constexpr char kErasedPhotosKey[] = "_erased_photos.json";
// The reason a run gives for leaving out a photo whose bytes were erased.
inline constexpr char kErasedReason[] = "erased (right to erasure)";

// The first 12 hex digits of the SHA-256 of `bytes`: run ids, PCA model ids, ids of shards
// rewritten by an erasure.
std::string ContentId(std::string_view bytes);

std::string ShardName(int index);  // "00042"
std::string ResultsPartKey(int index, std::string_view run_id, parquet::Compression codec);
std::string ResultsPcaPartKey(int index, std::string_view model_id, parquet::Compression codec);
std::string StatsKey(int index);                       // written by the pipeline
std::string StatsKey(int index, std::string_view id);  // written by an erasure's rewrite
std::string ShardRecordKey(int index);

// The shard index of a "part-SSSSS-..." or "shard-SSSSS..." key; -1 when it is neither.
int ShardIndexOf(std::string_view key);
// Whether a Results_PCA key is a part of the PCA model `model_id`.
bool IsPartOfModel(std::string_view key, std::string_view model_id);

}  // namespace fruitpipe::dataset
