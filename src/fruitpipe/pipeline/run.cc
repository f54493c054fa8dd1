#include "fruitpipe/pipeline/run.h"

#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <future>
#include <map>
#include <set>
#include <thread>

#include <opencv2/core.hpp>

#include "fruitpipe/common/error.h"
#include "fruitpipe/common/hash.h"
#include "fruitpipe/pipeline/dataset.h"
#include "fruitpipe/pipeline/progress.h"
#include "fruitpipe/pipeline/results.h"
#include "fruitpipe/pipeline/shard_worker.h"

namespace fruitpipe::pipeline {
namespace {

using nlohmann::json;

constexpr char kVersion[] = "0.1.0";

std::string IsoTime(double epoch_seconds) {
  const std::time_t t = static_cast<std::time_t>(epoch_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Content-derived ids: every process (MPI ranks, array workers) computes the same id for the
// same shards without talking to the others, and a resumed run names its files as before.
std::string RunIdFor(const std::string& source, const std::vector<SourceImage>& images, int shard_size) {
  Sha256Hasher h;
  h.Update(source);
  h.Update("\n" + std::to_string(shard_size) + "\n");
  for (const auto& img : images) {
    h.Update(img.key);
    h.Update("\n");
  }
  return h.FinishHex().substr(0, 12);
}

// The dataset-level settings a resumed or incremental run must share with the first run.
json ModelIdentity(const model::ModelCard& card, const model::FeaturizerOptions& f, int input_size) {
  return {{"name", card.name}, {"sha256", card.sha256}, {"input_size", input_size}, {"precision", f.precision}};
}

struct PlanFile {
  DatasetPlan plan;
  json model;
  std::string run_id;  // of this invocation's new shards
};

std::string PlanToJson(const PlanFile& p) {
  json j = json::parse(p.plan.ToJson());
  j["model"] = p.model;
  return j.dump();
}

PlanFile PlanFromJson(const std::string& text) {
  PlanFile p;
  p.plan = DatasetPlan::FromJson(text);
  p.model = json::parse(text).value("model", json::object());
  return p;
}

// Builds, or loads and extends, the dataset plan. Runs on every process that cannot receive
// it from a root (array workers), or on root only (single process, MPI).
PlanFile MakePlan(const RunOptions& o, storage::Storage& source, storage::Storage& out,
                  const json& model_identity, std::vector<Rejection>* list_rejects) {
  const auto existing = out.GetIfExists(kPlanKey);
  std::vector<SourceImage> images = ListSource(source, list_rejects);
  if (o.admit_filter) {
    std::erase_if(images, [&](const SourceImage& img) {
      auto reason = o.admit_filter(img);
      if (reason && list_rejects) list_rejects->push_back({source.Uri(img.key), *reason});
      return reason.has_value();
    });
  }
  if (o.limit > 0 && static_cast<std::int64_t>(images.size()) > o.limit) images.resize(static_cast<std::size_t>(o.limit));

  if (existing) {
    PlanFile p = PlanFromJson(*existing);
    // Array workers share one dataset by design: each finds the plan the first one wrote.
    if (!o.resume && !o.incremental && o.worker_mode != "worker") {
      const bool done = out.Exists(kSuccessKey);
      throw InvalidArgumentError(out.Uri("") + ": already holds a " + (done ? "finished" : "unfinished") +
                                 " run; pass --resume to finish it, --incremental to add new images, "
                                 "or choose an empty output folder");
    }
    if (p.plan.source != source.Uri("")) {
      throw InvalidArgumentError(out.Uri("") + ": holds a run of " + p.plan.source + ", not " + source.Uri(""));
    }
    if (p.model != model_identity) {
      throw InvalidArgumentError(out.Uri("") + ": was built with model " + p.model.dump() +
                                 "; this run uses " + model_identity.dump() + " (features would not be comparable)");
    }
    if (o.incremental) {
      std::set<std::string> known;
      for (const auto& s : p.plan.shards) for (const auto& img : s.images) known.insert(img.key);
      std::vector<SourceImage> fresh;
      for (auto& img : images) if (!known.count(img.key)) fresh.push_back(std::move(img));
      if (!fresh.empty()) {
        int next = 0;
        for (const auto& s : p.plan.shards) next = std::max(next, s.index + 1);
        p.run_id = RunIdFor(source.Uri(""), fresh, p.plan.shard_size);
        for (auto& s : CutShards(fresh, p.plan.shard_size, next, p.run_id)) p.plan.shards.push_back(std::move(s));
      }
    }
    return p;
  }
  PlanFile p;
  p.plan.source = source.Uri("");
  p.plan.shard_size = o.shard_size;
  p.run_id = RunIdFor(p.plan.source, images, o.shard_size);
  p.plan.shards = CutShards(images, o.shard_size, 0, p.run_id);
  p.model = model_identity;
  return p;
}

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

// Reads and sums the statistics of `indices`, in index order (deterministic).
pca::PcaStats SumStoredStats(storage::Storage& out, const std::vector<ShardRecord>& records,
                             const std::set<int>& indices) {
  std::vector<std::string> keys;
  for (const auto& r : records) if (indices.count(r.index)) keys.push_back(r.stats_key);
  std::map<std::string, std::string> bytes;
  std::mutex mu;
  std::string error;
  out.GetMany(keys, [&](storage::FetchResult&& r) {
    std::lock_guard lock(mu);
    if (!r.ok) error = r.error;
    bytes[r.key] = std::move(r.data);
  });
  if (!error.empty()) throw IOError(error);
  pca::PcaStats total;
  for (const auto& key : keys) total.Merge(pca::PcaStats::Deserialize(bytes[key], out.Uri(key)));
  return total;
}

struct PcaStageOutcome {
  json pca;
  json shard_timing;  // index -> pca intervals
  double fit_seconds = 0;
  double transform_seconds = 0;
};

// The PCA stage, shared by run/pca/reduce. `mine` holds the statistics this process summed
// over the shards it featurized in this invocation (`processed`), so only the others are read
// back from storage; the MPI reduction combines them.
PcaStageOutcome PcaStage(const RunOptions& o, storage::Storage& out, Coordinator& coord,
                         const pca::PcaStats& mine, const std::vector<int>& processed, int threads) {
  PcaStageOutcome result;
  const double fit_start = NowSeconds();
  std::vector<ShardRecord> records = LoadShardRecords(out);
  if (records.empty()) throw InvalidArgumentError(out.Uri("") + ": no committed shards (run featurize first)");

  std::string model_bytes;
  bool fitted = false;
  if (!o.pca_model.empty()) {
    if (coord.is_root()) model_bytes = LoadPcaModel(o.pca_model, o.storage).Serialize();
  } else {
    // The reduction: every process sends the statistics of the shards it featurized in this
    // invocation; root merges them (in rank order) with the stored statistics of the shards
    // nobody processed now (earlier runs, resumed work), then fits.
    // A single process sums in shard-index order from storage unless it featurized every
    // shard itself, in order, just now (then `mine` is that very sum): a resumed run then fits
    // bit for bit the model of an uninterrupted one.
    std::vector<int> all_indices;
    for (const auto& r : records) all_indices.push_back(r.index);
    const bool mine_is_everything = coord.size() == 1 && processed == all_indices;
    const bool single = coord.size() == 1;
    json processed_json = single && !mine_is_everything ? std::vector<int>{} : processed;
    const std::vector<std::string> all_processed = coord.Gather(processed_json.dump());
    const std::vector<std::string> all_stats =
        coord.Gather(single && !mine_is_everything ? pca::PcaStats().Serialize() : mine.Serialize());
    if (coord.is_root()) {
      std::set<int> done_now;
      for (const auto& s : all_processed) {
        for (int i : json::parse(s).get<std::vector<int>>()) done_now.insert(i);
      }
      std::set<int> rest;
      for (const auto& r : records) if (!done_now.count(r.index)) rest.insert(r.index);
      pca::PcaStats total;
      for (const auto& bytes : all_stats) total.Merge(pca::PcaStats::Deserialize(bytes, "stats from a worker"));
      total.Merge(SumStoredStats(out, records, rest));
      model_bytes = pca::FitPca(total, o.pca_fit).Serialize();
      fitted = true;
    }
  }
  coord.Broadcast(model_bytes);
  const pca::PcaModel model = pca::PcaModel::Deserialize(model_bytes);
  const std::string model_id = Sha256Hex(model_bytes).substr(0, 12);
  if (coord.is_root()) {
    out.Put(kPcaModelKey, model_bytes);
    out.Put(kPcaModelJsonKey, model.ToJson());
  }
  result.fit_seconds = NowSeconds() - fit_start;

  // Transform every shard that has no part for this model yet.
  std::set<std::string> existing_pca;
  for (const auto& obj : out.List(std::string(kResultsPcaDir) + "/")) existing_pca.insert(obj.key);
  json my_timing = json::object();
  coord.BeginPhase(static_cast<int>(records.size()));
  parquet::WriteOptions wopt;
  wopt.compression = o.compression;
  while (auto item = coord.NextItem()) {
    const ShardRecord& rec = records[static_cast<std::size_t>(*item)];
    const std::string key = ResultsPcaPartKey(rec.index, model_id);
    if (existing_pca.count(key)) continue;
    const double t0 = NowSeconds();
    FeatureBatch features = ParseResults(out.Get(rec.part_key));
    PcaBatch projected;
    projected.dim = model.k;
    projected.rows = std::move(features.rows);
    projected.vectors.resize(projected.rows.size() * static_cast<std::size_t>(model.k));
    model.TransformBatch(features.vectors.data(), static_cast<int>(projected.rows.size()), projected.vectors.data());
    out.Put(key, parquet::WriteParquet(ResultsPcaTable(projected), wopt));
    const double t1 = NowSeconds();
    my_timing[std::to_string(rec.index)] = json::array({t0, t1});
    result.transform_seconds += t1 - t0;
  }
  (void)threads;
  coord.Barrier();
  for (const auto& s : coord.Gather(my_timing.dump())) {
    const auto timings = json::parse(s).get<std::map<std::string, json>>();
    for (const auto& [k, v] : timings) result.shard_timing[k] = v;
  }
  if (coord.is_root()) {
    // Parts of an older model, and Results parts no commit record names, are garbage now.
    for (const auto& obj : out.List(std::string(kResultsPcaDir) + "/")) {
      if (obj.key.find("-" + model_id + ".") == std::string::npos) out.Delete(obj.key);
    }
    std::set<std::string> live;
    for (const auto& r : records) live.insert(r.part_key);
    for (const auto& obj : out.List(std::string(kResultsDir) + "/")) {
      if (!live.count(obj.key)) out.Delete(obj.key);
    }
  }
  result.pca = json::parse(model.ToJson());
  result.pca["fitted"] = fitted;
  result.pca["model_id"] = model_id;
  result.pca["source"] = o.pca_model.empty() ? "fit" : o.pca_model;
  return result;
}

std::string RejectedJsonl(const std::vector<Rejection>& rejected) {
  std::string text;
  // A path that is not UTF-8 (rejected for that reason) is written with U+FFFD in its place.
  for (const auto& r : rejected) {
    text += json{{"path", r.path}, {"reason", r.reason}}.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  }
  return text;
}

// run.json, rejected.jsonl and _SUCCESS, written by root once everything else is durable.
json Finish(const RunOptions& o, storage::Storage& out, Coordinator& coord, json run,
            const std::vector<Rejection>& list_rejects, const PcaStageOutcome* pca_outcome,
            const std::map<int, json>& fresh_timing, double start) {
  // Every writer has passed the barrier: temporaries left by killed writes are garbage.
  out.RemoveAbandonedWrites("");
  const std::vector<ShardRecord> records = LoadShardRecords(out);
  std::vector<Rejection> rejected = list_rejects;
  std::map<std::string, std::int64_t> labels;
  std::int64_t rows = 0;
  std::map<std::string, double> totals;
  json timeline = json::array();
  for (const auto& r : records) {
    rows += r.rows;
    rejected.insert(rejected.end(), r.rejected.begin(), r.rejected.end());
    json timing = r.timing;
    const bool now = fresh_timing.count(r.index) > 0;
    if (pca_outcome && pca_outcome->shard_timing.contains(std::to_string(r.index))) {
      timing["pca"] = pca_outcome->shard_timing[std::to_string(r.index)];
    }
    json entry = {{"shard", r.index}, {"rows", r.rows}, {"rejected", r.rejected.size()},
                  {"worker", timing.value("worker", "")}, {"this_run", now}};
    timing.erase("worker");
    // PCA intervals are this invocation's (pca_transform in the totals); the rest count when
    // the shard was featurized now.
    entry["stages"] = RelativeTiming(timing, start, now ? &totals : nullptr);
    totals.erase("pca");
    if (timing.contains("start")) {
      entry["start"] = timing["start"].get<double>() - start;
      entry["end"] = timing["end"].get<double>() - start;
    }
    entry["stages"].erase("start");
    entry["stages"].erase("end");
    timeline.push_back(std::move(entry));
  }
  // Labels and per-label counts come from the plan-independent part records? They are cheap
  // to read from the shard records' rows only when rows carry labels; read the Results parts'
  // label column through the plan instead.
  const auto plan = PlanFromJson(out.Get(kPlanKey));
  std::set<std::string> rejected_paths;
  for (const auto& r : rejected) rejected_paths.insert(r.path);
  auto source = storage::OpenStorage(plan.plan.source, o.storage);
  for (const auto& s : plan.plan.shards) {
    for (const auto& img : s.images) {
      if (!rejected_paths.count(source->Uri(img.key))) ++labels[img.label];
    }
  }
  const double end = NowSeconds();
  run["fruitpipe_version"] = kVersion;
  run["source"] = plan.plan.source;
  run["output"] = out.Uri("");
  run["started_at"] = IsoTime(start);
  run["finished_at"] = IsoTime(end);
  run["start_time"] = start;
  run["seconds"] = end - start;
  run["images"] = rows;
  run["rejected"] = rejected.size();
  run["listed"] = static_cast<std::int64_t>(plan.plan.num_images() + list_rejects.size());
  const std::int64_t processed = run.value("images_processed", std::int64_t{0});
  run["images_per_second"] = (end - start) > 0 ? static_cast<double>(processed) / (end - start) : 0.0;
  totals["list"] = run.value("list_seconds", 0.0);
  run.erase("list_seconds");
  if (pca_outcome) {
    totals["pca_fit"] = pca_outcome->fit_seconds;
    totals["pca_transform"] = pca_outcome->transform_seconds;
    run["pca"] = pca_outcome->pca;
  }
  run["stages"] = totals;
  run["shard_timeline"] = std::move(timeline);
  run["labels"] = labels;
  run["shards_total"] = records.size();
  run["exit_code"] = 0;
  (void)coord;
  out.Put(kRejectedKey, RejectedJsonl(rejected));
  out.Put(kRunJsonKey, run.dump(2));
  if (o.before_success) o.before_success(out);
  if (pca_outcome) out.Put(kSuccessKey, "");
  return run;
}

}  // namespace

int ThreadsPerProcess(int requested, int local_processes) {
  if (requested > 0) return requested;
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::max(1, cores / std::max(1, local_processes));
}

pca::PcaModel LoadPcaModel(const std::string& uri, const storage::StorageOptions& storage_options) {
  // A dataset folder holds _pca_model.bin; anything else is the model file itself.
  const auto slash = uri.find_last_of('/');
  const std::string parent = slash == std::string::npos ? "." : uri.substr(0, slash);
  const std::string name = slash == std::string::npos ? uri : uri.substr(slash + 1);
  auto folder = storage::OpenStorage(uri, storage_options);
  if (auto bytes = folder->GetIfExists(kPcaModelKey)) return pca::PcaModel::Deserialize(*bytes);
  auto dir = storage::OpenStorage(parent, storage_options);
  auto bytes = dir->GetIfExists(name);
  if (!bytes) throw NotFoundError(uri + ": no PCA model (expected a _pca_model.bin file or a dataset folder holding one)");
  try {
    return pca::PcaModel::Deserialize(*bytes);
  } catch (const CorruptionError& e) {
    throw CorruptionError(uri + ": not a fruitpipe PCA model: " + e.what());
  }
}

nlohmann::json RunPipeline(const RunOptions& o, Coordinator& coord) {
  const double start = NowSeconds();
  const int threads = ThreadsPerProcess(o.threads, coord.local_size());
  cv::setNumThreads(threads);
  omp_set_num_threads(threads);

  auto source = storage::OpenStorage(o.source, o.storage);
  auto out = storage::OpenStorage(o.output, o.storage);

  const model::ModelCard card = model::LoadModelCard(o.model_card);
  model::FeaturizerOptions fopt = o.featurizer;
  fopt.threads = threads;
  std::unique_ptr<model::Featurizer> featurizer = model::CreateFeaturizer(card, fopt);
  const json identity = ModelIdentity(card, fopt, featurizer->input_spec().width);

  // Plan: root decides (or every array worker, deterministically), everyone gets the same.
  std::vector<Rejection> list_rejects;
  std::string plan_bytes;
  const double list_start = NowSeconds();
  const bool independent = o.worker_mode == "worker";
  if (coord.is_root() || independent) {
    PlanFile p = MakePlan(o, *source, *out, identity, &list_rejects);
    // The dataset is about to change: readers must not take it as complete meanwhile.
    if (coord.is_root()) out->Delete(kSuccessKey);
    plan_bytes = PlanToJson(p);
    if (out->GetIfExists(kPlanKey) != plan_bytes) out->Put(kPlanKey, plan_bytes);
    json rejects = json::array();
    for (const auto& r : list_rejects) rejects.push_back({r.path, r.reason});
    plan_bytes = json{{"plan", plan_bytes}, {"list_rejects", rejects}}.dump(-1, ' ', false, json::error_handler_t::replace);
  }
  if (!independent) coord.Broadcast(plan_bytes);
  const json envelope = json::parse(plan_bytes);
  const PlanFile plan = PlanFromJson(envelope.at("plan").get<std::string>());
  list_rejects.clear();
  for (const auto& r : envelope.at("list_rejects")) list_rejects.push_back({r.at(0), r.at(1)});
  const double list_seconds = NowSeconds() - list_start;

  // Pending shards: those without a commit record.
  std::set<int> committed;
  for (const auto& obj : out->List("_shards/")) {
    for (const auto& s : plan.plan.shards) {
      if (obj.key == ShardRecordKey(s.index)) committed.insert(s.index);
    }
  }
  std::vector<const ShardPlan*> pending;
  for (const auto& s : plan.plan.shards) {
    if (committed.count(s.index)) continue;
    if (independent && s.index % o.worker_count != o.worker_index) continue;
    pending.push_back(&s);
  }
  std::int64_t pending_images = 0;
  for (const auto* s : pending) pending_images += static_cast<std::int64_t>(s->images.size());

  const std::string worker = independent ? "worker " + std::to_string(o.worker_index) + "/" + std::to_string(o.worker_count)
                                         : coord.worker_name();
  Progress progress(coord.size() > 1 || independent ? worker + " featurize" : "featurize", pending_images,
                    o.progress && (coord.is_root() || independent));
  ShardWorkerConfig wcfg;
  wcfg.batch_size = o.batch_size;
  wcfg.threads = threads;
  wcfg.limits = o.limits;
  wcfg.on_progress = [&](int n) { progress.Add(n); };
  parquet::WriteOptions wopt;
  wopt.compression = o.compression;

  pca::PcaStats mine;
  std::vector<int> processed;
  std::map<int, json> fresh_timing;
  std::int64_t images_processed = 0;
  coord.BeginPhase(static_cast<int>(pending.size()));
  // Fetch the next shard while this one is featurized (network/disk overlaps compute).
  std::optional<int> item = coord.NextItem();
  std::future<FetchedShard> next;
  const std::size_t max_bytes = o.limits.max_bytes;
  if (item) next = std::async(std::launch::async, FetchShard, std::ref(*source), std::cref(*pending[*item]), max_bytes);
  while (item) {
    const ShardPlan& shard = *pending[static_cast<std::size_t>(*item)];
    const double shard_start = NowSeconds();
    FetchedShard fetched = next.get();
    item = coord.NextItem();
    if (item) next = std::async(std::launch::async, FetchShard, std::ref(*source), std::cref(*pending[*item]), max_bytes);
    ShardOutput result = FeaturizeShard(*source, std::move(fetched), *featurizer, wcfg);
    const double write_start = NowSeconds();
    ShardRecord record;
    record.index = shard.index;
    record.run_id = shard.run_id;
    record.part_key = ResultsPartKey(shard.index, shard.run_id);
    record.stats_key = StatsKey(shard.index);
    record.rows = static_cast<std::int64_t>(result.features.rows.size());
    record.rejected = result.rejected;
    const std::string part = parquet::WriteParquet(ResultsTable(result.features), wopt);
    const std::string stats = result.stats.Serialize();
    record.timing = result.timing;
    record.timing["worker"] = worker;
    record.timing["start"] = shard_start;
    const double commit_time = NowSeconds();
    record.timing["write"] = json::array({write_start, commit_time});
    record.timing["end"] = commit_time;
    CommitShard(*out, record, part, stats);
    mine.Merge(result.stats);
    processed.push_back(shard.index);
    fresh_timing[shard.index] = record.timing;
    images_processed += static_cast<std::int64_t>(shard.images.size());
  }
  progress.Finish();
  // Each rank featurized its own shards; the run's counts are the sums (root reports them).
  std::int64_t images_total = 0, shards_total = 0;
  for (const auto& s : coord.Gather(json::array({images_processed, processed.size()}).dump())) {
    const json counts = json::parse(s);
    images_total += counts.at(0).get<std::int64_t>();
    shards_total += counts.at(1).get<std::int64_t>();
  }

  json run = {{"command", o.command},
              {"run_id", plan.run_id.empty() ? plan.plan.shards.empty() ? "" : plan.plan.shards.back().run_id : plan.run_id},
              {"images_processed", images_total},
              {"list_seconds", list_seconds},
              {"shards_processed", shards_total},
              {"workers", {{"processes", coord.size()}, {"threads_per_process", threads},
                           {"cores", std::thread::hardware_concurrency()}, {"mode", o.worker_mode}}},
              {"model", {{"name", card.name}, {"sha256", card.sha256}, {"card", card.card_path},
                         {"backend", featurizer->backend_name()}, {"precision", fopt.precision},
                         {"input_size", featurizer->input_spec().width}, {"dim", featurizer->dim()}}}};
  featurizer.reset();  // free the engine's buffers before the PCA stage

  if (!o.pca_stage) {
    coord.Barrier();
    if (independent) return run;  // array workers: `fruitpipe reduce` finishes the dataset
    if (coord.is_root()) return Finish(o, *out, coord, run, list_rejects, nullptr, fresh_timing, start);
    return run;
  }
  coord.Barrier();
  PcaStageOutcome pca_outcome = PcaStage(o, *out, coord, mine, processed, threads);
  if (!coord.is_root()) return run;
  return Finish(o, *out, coord, run, list_rejects, &pca_outcome, fresh_timing, start);
}

nlohmann::json RunPcaOnly(const RunOptions& o, Coordinator& coord) {
  const double start = NowSeconds();
  const int threads = ThreadsPerProcess(o.threads, coord.local_size());
  omp_set_num_threads(threads);
  auto out = storage::OpenStorage(o.output, o.storage);
  if (!out->Exists(kPlanKey)) throw InvalidArgumentError(out.get()->Uri("") + ": not a fruitpipe dataset (no _plan.json)");
  out->Delete(kSuccessKey);
  PcaStageOutcome pca_outcome = PcaStage(o, *out, coord, pca::PcaStats(), {}, threads);
  if (!coord.is_root()) return {};
  // Keep the figures of the run that featurized, add this stage's.
  json run = json::object();
  if (auto previous = out->GetIfExists(kRunJsonKey)) run = json::parse(*previous);
  run["command"] = o.command;
  run["images_processed"] = 0;
  for (const char* k : {"seconds", "images_per_second", "stages", "shard_timeline", "pca"}) run.erase(k);
  return Finish(o, *out, coord, run, {}, &pca_outcome, {}, start);
}

}  // namespace fruitpipe::pipeline
