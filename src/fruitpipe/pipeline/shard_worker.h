// Featurizing one shard: read its images (many requests in flight), decode and preprocess
// them in parallel, run the featurizer batch by batch, and produce the Results rows, the
// shard's PCA statistics and its rejections. Decoding runs in the same OpenMP team as
// oneDNN, between inference batches, so the two never compete for cores (docs/engine.md).
#pragma once

#include <functional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fruitpipe/image/decode.h"
#include "fruitpipe/model/featurizer.h"
#include "fruitpipe/dataset/plan.h"
#include "fruitpipe/dataset/results.h"
#include "fruitpipe/pca/pca.h"
#include "fruitpipe/storage/storage.h"

namespace fruitpipe::pipeline {

// The bytes of a shard's images, fetched ahead of featurization.
struct FetchedShard {
  const dataset::ShardPlan* plan = nullptr;
  std::vector<storage::FetchResult> objects;  // in plan order
  double start = 0, end = 0;
};
// Reads the shard's objects. An image whose listed size is over `max_bytes` is not read (its
// result carries the decoder's size reason): a huge object costs no memory or transfer.
FetchedShard FetchShard(storage::Storage& source, const dataset::ShardPlan& plan, std::size_t max_bytes);

struct ShardOutput {
  dataset::FeatureBatch features;
  pca::PcaStats stats;
  std::vector<dataset::Rejection> rejected;
  nlohmann::json timing;  // {"read":[s,e], "decode":[[s,e]...], "featurize":[[s,e]...], ...}
  double decode_seconds = 0, featurize_seconds = 0;
};

struct ShardWorkerConfig {
  int batch_size = 32;
  int threads = 1;                         // decode team size
  image::DecodeLimits limits;
  std::function<void(int images)> on_progress;  // called after each batch, images in it
  // SHA-256 of photos erased from the dataset (dataset::LoadErasedPhotos): left out with
  // dataset::kErasedReason, whatever their name.
  const std::set<std::string>* erased = nullptr;
};

ShardOutput FeaturizeShard(storage::Storage& source, FetchedShard&& fetched,
                           model::Featurizer& featurizer, const ShardWorkerConfig& config);

}  // namespace fruitpipe::pipeline
