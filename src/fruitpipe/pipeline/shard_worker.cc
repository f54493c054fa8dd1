#include "fruitpipe/pipeline/shard_worker.h"

#include <algorithm>
#include <mutex>
#include <unordered_map>

#include "fruitpipe/common/hash.h"
#include "fruitpipe/common/time.h"
#include "fruitpipe/dataset/layout.h"
#include "fruitpipe/image/preprocess.h"

namespace fruitpipe::pipeline {

using dataset::ImageRow;
using dataset::ShardPlan;
using dataset::SourceImage;

FetchedShard FetchShard(storage::Storage& source, const ShardPlan& plan, std::size_t max_bytes) {
  FetchedShard fetched;
  fetched.plan = &plan;
  fetched.start = WallSeconds();
  fetched.objects.resize(plan.images.size());
  std::vector<std::string> keys;
  keys.reserve(plan.images.size());
  // GetMany calls back in any order; place each result at its key's position.
  std::unordered_map<std::string, std::size_t> position;
  for (std::size_t i = 0; i < plan.images.size(); ++i) {
    const SourceImage& img = plan.images[i];
    if (img.size > max_bytes) {
      fetched.objects[i] = {img.key, false, {}, image::FileTooLargeReason(img.size, max_bytes)};
      continue;
    }
    keys.push_back(img.key);
    position.emplace(img.key, i);
  }
  std::mutex mu;
  source.GetMany(keys, [&](storage::FetchResult&& r) {
    std::lock_guard lock(mu);
    fetched.objects[position.at(r.key)] = std::move(r);
  });
  fetched.end = WallSeconds();
  return fetched;
}

namespace {

struct Decoded {
  bool ok = false;
  std::string reason;
  std::string sha256;
  int width = 0, height = 0;
};

}  // namespace

ShardOutput FeaturizeShard(storage::Storage& source, FetchedShard&& fetched,
                           model::Featurizer& featurizer, const ShardWorkerConfig& config) {
  const ShardPlan& plan = *fetched.plan;
  const auto& spec = featurizer.input_spec();
  const int dim = featurizer.dim();
  const std::size_t tensor = spec.TensorSize();
  const int n = static_cast<int>(plan.images.size());

  ShardOutput out;
  out.stats = pca::PcaStats(dim);
  out.features.dim = dim;
  out.features.rows.reserve(static_cast<std::size_t>(n));
  out.features.vectors.reserve(static_cast<std::size_t>(n) * dim);
  out.timing["read"] = {fetched.start, fetched.end};
  out.timing["decode"] = nlohmann::json::array();
  out.timing["featurize"] = nlohmann::json::array();

  std::vector<float> input(static_cast<std::size_t>(config.batch_size) * tensor);
  std::vector<float> output(static_cast<std::size_t>(config.batch_size) * dim);
  std::vector<Decoded> decoded(static_cast<std::size_t>(config.batch_size));
  std::vector<int> slot(static_cast<std::size_t>(config.batch_size));

  for (int begin = 0; begin < n; begin += config.batch_size) {
    const int count = std::min(config.batch_size, n - begin);
    const double t0 = WallSeconds();
    // Decode and preprocess the batch; each image writes its own tensor slot.
#pragma omp parallel for schedule(dynamic, 1) num_threads(config.threads)
    for (int i = 0; i < count; ++i) {
      Decoded& d = decoded[static_cast<std::size_t>(i)];
      d = Decoded{};
      const storage::FetchResult& obj = fetched.objects[static_cast<std::size_t>(begin + i)];
      if (!obj.ok) {
        d.reason = obj.error;
        continue;
      }
      d.sha256 = Sha256Hex(obj.data);
      if (config.erased && config.erased->count(d.sha256)) {
        d.reason = dataset::kErasedReason;
        continue;
      }
      image::DecodeOutcome outcome = image::DecodeImage(obj.data, config.limits);
      if (!outcome.ok) {
        d.reason = outcome.reason;
        continue;
      }
      d.ok = true;
      d.width = outcome.image.width;
      d.height = outcome.image.height;
      image::Preprocess(outcome.image.rgb, spec, input.data() + static_cast<std::size_t>(i) * tensor);
    }
    // Compact the accepted images to the front of the batch, in plan order.
    int accepted = 0;
    for (int i = 0; i < count; ++i) {
      const SourceImage& img = plan.images[static_cast<std::size_t>(begin + i)];
      Decoded& d = decoded[static_cast<std::size_t>(i)];
      if (!d.ok) {
        out.rejected.push_back({source.Uri(img.key), d.reason});
        continue;
      }
      if (accepted != i) {
        std::copy_n(input.data() + static_cast<std::size_t>(i) * tensor, tensor,
                    input.data() + static_cast<std::size_t>(accepted) * tensor);
      }
      slot[static_cast<std::size_t>(accepted)] = i;
      ++accepted;
    }
    const double t1 = WallSeconds();
    out.timing["decode"].push_back({t0, t1});
    out.decode_seconds += t1 - t0;
    if (accepted > 0) {
      featurizer.Run(input.data(), accepted, output.data());
      out.stats.AddBatch(output.data(), accepted);
      for (int a = 0; a < accepted; ++a) {
        const int i = slot[static_cast<std::size_t>(a)];
        const SourceImage& img = plan.images[static_cast<std::size_t>(begin + i)];
        const Decoded& d = decoded[static_cast<std::size_t>(i)];
        ImageRow row;
        row.path = source.Uri(img.key);
        row.label = img.label;
        row.image_sha256 = d.sha256;
        row.width = d.width;
        row.height = d.height;
        row.subject_id = img.subject_id;
        out.features.rows.push_back(std::move(row));
        const float* f = output.data() + static_cast<std::size_t>(a) * dim;
        out.features.vectors.insert(out.features.vectors.end(), f, f + dim);
      }
    }
    const double t2 = WallSeconds();
    out.timing["featurize"].push_back({t1, t2});
    out.featurize_seconds += t2 - t1;
    if (config.on_progress) config.on_progress(count);
  }
  // The fetched bytes are no longer needed; release them before the caller writes.
  fetched.objects.clear();
  return out;
}

}  // namespace fruitpipe::pipeline
