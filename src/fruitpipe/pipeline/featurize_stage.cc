#include <future>
#include <optional>
#include <set>

#include "fruitpipe/common/time.h"
#include "fruitpipe/dataset/dataset.h"
#include "fruitpipe/dataset/results.h"
#include "fruitpipe/dataset/shard_record.h"
#include "fruitpipe/pipeline/progress.h"
#include "fruitpipe/pipeline/shard_worker.h"
#include "fruitpipe/pipeline/stages.h"

namespace fruitpipe::pipeline {

using dataset::ShardPlan;
using nlohmann::json;

FeaturizeOutcome FeaturizeStage(const RunOptions& o, const PlanOutcome& plan, storage::Storage& source,
                                storage::Storage& out, model::Featurizer& featurizer, int threads,
                                cluster::Coordinator& coord) {
  // Pending shards: those without a commit record.
  std::set<std::string> committed;
  for (const auto& obj : out.List(std::string(dataset::kShardsDir) + "/")) committed.insert(obj.key);
  std::vector<const ShardPlan*> pending;
  std::vector<int> pending_indices;
  std::int64_t my_images = 0;
  for (const auto& s : plan.plan.shards) {
    if (committed.count(dataset::ShardRecordKey(s.index))) continue;
    pending.push_back(&s);
    pending_indices.push_back(s.index);
    if (coord.MayTake(s.index)) my_images += static_cast<std::int64_t>(s.images.size());
  }

  const std::string worker = coord.worker_name();
  Progress progress(coord.size() > 1 ? worker + " featurize" : "featurize", my_images,
                    o.progress && coord.prints_progress());
  const std::set<std::string> erased = dataset::LoadErasedPhotos(out);
  ShardWorkerConfig wcfg;
  wcfg.erased = &erased;
  wcfg.batch_size = o.batch_size;
  wcfg.threads = threads;
  wcfg.limits = o.limits;
  wcfg.on_progress = [&](int n) { progress.Add(n); };
  parquet::WriteOptions wopt;
  wopt.compression = o.compression;

  FeaturizeOutcome result;
  std::int64_t images_processed = 0;
  coord.BeginPhase(pending_indices);
  // Fetch the next shard while this one is featurized (network/disk overlaps compute).
  std::optional<int> item = coord.NextItem();
  std::future<FetchedShard> next;
  const std::size_t max_bytes = o.limits.max_bytes;
  auto fetch = [&](int i) {
    return std::async(std::launch::async, FetchShard, std::ref(source), std::cref(*pending[static_cast<std::size_t>(i)]),
                      max_bytes);
  };
  if (item) next = fetch(*item);
  while (item) {
    const ShardPlan& shard = *pending[static_cast<std::size_t>(*item)];
    const double shard_start = WallSeconds();
    FetchedShard fetched = next.get();
    item = coord.NextItem();
    if (item) next = fetch(*item);
    ShardOutput output = FeaturizeShard(source, std::move(fetched), featurizer, wcfg);
    const double write_start = WallSeconds();
    dataset::ShardRecord record;
    record.index = shard.index;
    record.run_id = shard.run_id;
    record.part_key = dataset::ResultsPartKey(shard.index, shard.run_id, o.compression);
    record.stats_key = dataset::StatsKey(shard.index);
    record.rows = static_cast<std::int64_t>(output.features.rows.size());
    record.rejected = output.rejected;
    const std::string part = parquet::WriteParquet(dataset::ResultsTable(output.features), wopt);
    const std::string stats = output.stats.Serialize();
    record.timing = output.timing;
    record.timing["worker"] = worker;
    record.timing["start"] = shard_start;
    const double commit_time = WallSeconds();
    record.timing["write"] = json::array({write_start, commit_time});
    record.timing["end"] = commit_time;
    dataset::CommitShard(out, record, part, stats);
    result.stats.Merge(output.stats);
    result.processed.push_back(shard.index);
    result.timing[shard.index] = record.timing;
    images_processed += static_cast<std::int64_t>(shard.images.size());
  }
  progress.Finish();
  // Each process featurized its own shards; the run's counts are the sums (root reports them).
  for (const auto& s : coord.Gather(json::array({images_processed, result.processed.size()}).dump())) {
    const json counts = json::parse(s);
    result.images_processed += counts.at(0).get<std::int64_t>();
    result.shards_processed += counts.at(1).get<std::int64_t>();
  }
  return result;
}

}  // namespace fruitpipe::pipeline
