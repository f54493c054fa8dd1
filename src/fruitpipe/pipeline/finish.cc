#include <map>

#include "fruitpipe/common/time.h"
#include "fruitpipe/dataset/dataset.h"
#include "fruitpipe/pipeline/stages.h"

namespace fruitpipe::pipeline {
namespace {

using nlohmann::json;

constexpr char kVersion[] = "0.1.0";

json Interval(double a, double b, double origin) { return json::array({a - origin, b - origin}); }

// Adds every interval of a shard's timing to per-stage totals and shifts it to run time.
json RelativeTiming(const json& timing, double origin, std::map<std::string, double>* totals) {
  json stages = json::object();
  for (auto it = timing.begin(); it != timing.end(); ++it) {
    if (!it.value().is_array() || it.value().empty()) continue;
    json list = json::array();
    auto add = [&](const json& iv) {
      const double a = iv.at(0).get<double>(), b = iv.at(1).get<double>();
      list.push_back(Interval(a, b, origin));
      if (totals) (*totals)[it.key()] += b - a;
    };
    if (it.value().at(0).is_array()) {
      for (const auto& iv : it.value()) add(iv);
    } else {
      add(it.value());
    }
    stages[it.key()] = std::move(list);
  }
  return stages;
}

// The report's shard timeline: every committed shard with its stages relative to `start`;
// those featurized now add to `totals`.
json ShardTimeline(const std::vector<dataset::ShardRecord>& records, const PcaOutcome* pca,
                   const std::map<int, json>& fresh_timing, double start, std::map<std::string, double>* totals) {
  json timeline = json::array();
  for (const auto& r : records) {
    json timing = r.timing;
    const bool now = fresh_timing.count(r.index) > 0;
    if (pca && pca->shard_timing.contains(std::to_string(r.index))) {
      timing["pca"] = pca->shard_timing[std::to_string(r.index)];
    }
    json entry = {{"shard", r.index}, {"rows", r.rows}, {"rejected", r.rejected.size()},
                  {"worker", timing.value("worker", "")}, {"this_run", now}};
    timing.erase("worker");
    // PCA intervals are this invocation's (pca_transform in the totals); the rest count when
    // the shard was featurized now.
    entry["stages"] = RelativeTiming(timing, start, now ? totals : nullptr);
    totals->erase("pca");
    if (timing.contains("start")) {
      entry["start"] = timing["start"].get<double>() - start;
      entry["end"] = timing["end"].get<double>() - start;
    }
    entry["stages"].erase("start");
    entry["stages"].erase("end");
    timeline.push_back(std::move(entry));
  }
  return timeline;
}

}  // namespace

json Finish(const RunOptions& o, storage::Storage& out, json run, const std::vector<dataset::Rejection>& list_rejects,
            const PcaOutcome* pca, const std::map<int, json>& fresh_timing, double start) {
  // Every writer has passed the barrier: temporaries left by killed writes are garbage.
  out.RemoveAbandonedWrites("");
  const std::vector<dataset::ShardRecord> records = dataset::LoadShardRecords(out);
  std::vector<dataset::Rejection> rejected = list_rejects;
  for (const auto& r : records) rejected.insert(rejected.end(), r.rejected.begin(), r.rejected.end());
  std::map<std::string, double> totals;
  json timeline = ShardTimeline(records, pca, fresh_timing, start, &totals);
  const dataset::DatasetPlan plan = *dataset::LoadPlan(out);
  const double end = WallSeconds();
  run["fruitpipe_version"] = kVersion;
  run["source"] = plan.source;
  run["output"] = out.Uri("");
  run["started_at"] = IsoUtc(start);
  run["finished_at"] = IsoUtc(end);
  run["start_time"] = start;
  run["seconds"] = end - start;
  const dataset::DatasetCounts counts = dataset::CountDataset(plan, records, rejected);
  counts.WriteTo(run);
  const std::int64_t processed = run.value("images_processed", std::int64_t{0});
  run["images_per_second"] = (end - start) > 0 ? static_cast<double>(processed) / (end - start) : 0.0;
  totals["list"] = run.value("list_seconds", 0.0);
  run.erase("list_seconds");
  if (pca) {
    totals["pca_fit"] = pca->fit_seconds;
    totals["pca_transform"] = pca->transform_seconds;
    run["pca"] = pca->pca;
  }
  run["stages"] = totals;
  run["shard_timeline"] = std::move(timeline);
  // Scripts trust the exit status: 3 when images could not be read or decoded (README).
  run["exit_code"] = counts.failed > 0 ? 3 : 0;
  out.Put(dataset::kRejectedKey, dataset::RejectedJsonl(rejected));
  out.Put(dataset::kRunJsonKey, run.dump(2));
  if (o.before_success) o.before_success(out);
  if (pca) out.Put(dataset::kSuccessKey, "");
  return run;
}

}  // namespace fruitpipe::pipeline
