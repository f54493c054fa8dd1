#include <map>
#include <set>

#include "fruitpipe/common/error.h"
#include "fruitpipe/common/time.h"
#include "fruitpipe/dataset/dataset.h"
#include "fruitpipe/pipeline/stages.h"

namespace fruitpipe::pipeline {
namespace {

using dataset::ShardRecord;
using nlohmann::json;

// The reduction: every process sends the statistics of the shards it featurized in this
// invocation; root merges them (in rank order) with the stored statistics of the shards
// nobody processed now (earlier runs, resumed work), then fits. A single process sums in
// shard-index order from storage unless it featurized every shard itself, in order, just now
// (then `mine` is that very sum): a resumed run then fits bit for bit the model of an
// uninterrupted one. Returns the model's bytes on root, "" elsewhere.
std::string FitModel(const RunOptions& o, storage::Storage& out, cluster::Coordinator& coord,
                     const std::vector<ShardRecord>& records, const pca::PcaStats& mine,
                     const std::vector<int>& processed) {
  std::vector<int> all_indices;
  for (const auto& r : records) all_indices.push_back(r.index);
  const bool single = coord.size() == 1;
  const bool mine_is_everything = single && processed == all_indices;
  const bool send_mine = !single || mine_is_everything;
  const json processed_json = send_mine ? processed : std::vector<int>{};
  const std::vector<std::string> all_processed = coord.Gather(processed_json.dump());
  const std::vector<std::string> all_stats = coord.Gather(send_mine ? mine.Serialize() : pca::PcaStats().Serialize());
  if (!coord.is_root()) return "";
  std::set<int> done_now;
  for (const auto& s : all_processed) {
    for (int i : json::parse(s).get<std::vector<int>>()) done_now.insert(i);
  }
  std::set<int> rest;
  for (const auto& r : records) if (!done_now.count(r.index)) rest.insert(r.index);
  pca::PcaStats total;
  for (const auto& bytes : all_stats) total.Merge(pca::PcaStats::Deserialize(bytes, "stats from a worker"));
  total.Merge(dataset::SumShardStats(out, records, &rest));
  return pca::FitPca(total, o.pca_fit).Serialize();
}

}  // namespace

PcaOutcome PcaStage(const RunOptions& o, storage::Storage& out, cluster::Coordinator& coord,
                    const pca::PcaStats& mine, const std::vector<int>& processed) {
  PcaOutcome result;
  const double fit_start = WallSeconds();
  const std::vector<ShardRecord> records = dataset::LoadShardRecords(out);
  if (records.empty()) throw InvalidArgumentError(out.Uri("") + ": no committed shards (run featurize first)");

  const bool fit = o.pca_model.empty();
  std::string model_bytes;
  if (fit) {
    model_bytes = FitModel(o, out, coord, records, mine, processed);
  } else if (coord.is_root()) {
    model_bytes = dataset::LoadPcaModel(o.pca_model, o.storage).Serialize();
  }
  coord.Broadcast(model_bytes);
  const pca::PcaModel model = pca::PcaModel::Deserialize(model_bytes);
  const std::string model_id = dataset::ContentId(model_bytes);
  if (coord.is_root()) dataset::StorePcaModel(out, model_bytes);
  result.fit_seconds = WallSeconds() - fit_start;

  // Project every shard that has no part for this model yet.
  std::set<std::string> existing;
  for (const auto& obj : out.List(std::string(dataset::kResultsPcaDir) + "/")) existing.insert(obj.key);
  std::vector<int> indices;
  std::set<std::string> wanted;
  for (const auto& r : records) {
    indices.push_back(r.index);
    wanted.insert(dataset::ResultsPcaPartKey(r.index, model_id, o.compression));
  }
  json my_timing = json::object();
  coord.BeginPhase(indices);
  while (auto item = coord.NextItem()) {
    const ShardRecord& rec = records[static_cast<std::size_t>(*item)];
    if (existing.count(dataset::ResultsPcaPartKey(rec.index, model_id, o.compression))) continue;
    const double t0 = WallSeconds();
    dataset::WritePcaPart(out, rec, model, model_id, o.compression);
    const double t1 = WallSeconds();
    my_timing[std::to_string(rec.index)] = json::array({t0, t1});
    result.transform_seconds += t1 - t0;
  }
  coord.Barrier();
  for (const auto& s : coord.Gather(my_timing.dump())) {
    for (const auto& [k, v] : json::parse(s).get<std::map<std::string, json>>()) result.shard_timing[k] = v;
  }
  if (coord.is_root()) {
    // Parts of an older model, and files no commit record names, are garbage now.
    dataset::DeletePcaPartsExcept(out, wanted);
    dataset::SweepOrphans(out, records);
  }
  result.pca = dataset::PcaSummary(model, model_id, fit, fit ? "fit" : o.pca_model);
  return result;
}

}  // namespace fruitpipe::pipeline
