#include "fruitpipe/privacy/erasure.h"

#include <algorithm>
#include <mutex>

#include "fruitpipe/common/error.h"
#include "fruitpipe/dataset/dataset.h"
#include "fruitpipe/pca/pca.h"
#include "fruitpipe/report/report.h"

namespace fruitpipe::privacy {
namespace {

using nlohmann::json;
using dataset::ShardRecord;
using dataset::Rejection;

// "<Label>/<file name>": how a photo is named across stores, plans and row paths.
std::string_view PhotoName(std::string_view path) {
  const auto slash = path.rfind('/');
  if (slash == std::string_view::npos || slash == 0) return path;
  const auto prev = path.rfind('/', slash - 1);
  return prev == std::string_view::npos ? path : path.substr(prev + 1);
}

struct ShardWork {
  ShardRecord record;
  std::string part;               // Results part bytes, when rows must go
  std::int64_t rows_selected = 0;
  std::int64_t rejected_selected = 0;
};

// The erasure in progress: the caller's selector merged with any pending one.
struct Marker {
  bool success = false;
  std::int64_t epoch = 0;  // the dataset's erasure epoch once this erasure is done
  ErasureSelector selector;

  std::string ToJson() const {
    return json{{"format", "fruitpipe-erasure/1"},
                {"success", success},
                {"epoch", epoch},
                {"subjects", selector.subjects},
                {"photos", selector.photos}}
        .dump();
  }
  static Marker FromJson(const std::string& text, const std::string& where) {
    try {
      const json j = json::parse(text);
      Marker m;
      m.success = j.at("success").get<bool>();
      m.epoch = j.value("epoch", std::int64_t{0});
      m.selector.subjects = j.at("subjects").get<std::set<std::string>>();
      m.selector.photos = j.at("photos").get<std::set<std::string>>();
      return m;
    } catch (const json::exception& e) {
      throw CorruptionError(where + ": " + e.what());
    }
  }
};

class DatasetEraser {
 public:
  DatasetEraser(storage::Storage& out, ErasureReport* report, const ErasureOptions& options)
      : out_(out), report_(report), options_(options) {}

  void Run(const ErasureSelector& requested) {
    auto plan = dataset::LoadPlan(out_);
    if (!plan) throw InvalidArgumentError(out_.Uri("") + ": not a fruitpipe dataset (no _plan.json)");
    plan_ = std::move(*plan);
    const auto marker_bytes = out_.GetIfExists(dataset::kErasureMarkerKey);
    bool pending = marker_bytes.has_value();
    if (pending) {
      marker_ = Marker::FromJson(*marker_bytes, out_.Uri(dataset::kErasureMarkerKey));
      report_->completed_pending = true;
    }
    marker_.selector.subjects.insert(requested.subjects.begin(), requested.subjects.end());
    marker_.selector.photos.insert(requested.photos.begin(), requested.photos.end());
    sel_ = &marker_.selector;

    records_ = dataset::LoadShardRecords(out_);
    const std::int64_t plan_hits = FilterPlan();
    // The plan says which shards hold the photos; after an interrupted erasure it may already
    // have forgotten them, so then every shard is read.
    scan_all_ = pending;
    Scan(pending);
    if (auto text = out_.GetIfExists(dataset::kRejectedKey)) {
      rejected_ = dataset::ParseRejectedJsonl(*text, out_.Uri(dataset::kRejectedKey));
    }
    const std::int64_t rejected_hits = std::erase_if(rejected_, [&](const Rejection& r) { return sel_->Matches(r.path); });
    const bool touched = plan_hits > 0 || rejected_hits > 0 ||
                         std::any_of(work_.begin(), work_.end(), [](const ShardWork& w) {
                           return w.rows_selected > 0 || w.rejected_selected > 0;
                         });
    if (!pending && !touched) return;  // nothing of theirs here: no write at all

    // 1. Tell readers and later erasures that the dataset is changing, and what is erased.
    if (!pending) {
      marker_.success = out_.Exists(dataset::kSuccessKey);
      marker_.epoch = dataset::LoadErasureRecord(out_).epoch + 1;  // fixed here: a re-run reuses it
    }
    out_.Put(dataset::kErasureMarkerKey, marker_.ToJson());
    out_.Delete(dataset::kSuccessKey);
    // Before any row goes: a crash later must not lose what keeps the photos from coming back.
    dataset::StoreErasureRecord(out_, marker_.epoch, erased_photos_);
    report_->photos_suppressed += static_cast<std::int64_t>(erased_photos_.size());
    // 2. The plan: nothing may re-featurize these photos.
    if (plan_hits > 0) {
      dataset::StorePlan(out_, plan_);
      report_->plan_entries_removed += plan_hits;
    }
    // 3. Shards, each switched at its commit record.
    for (ShardWork& w : work_) RewriteShard(w);
    // 4. Whatever no commit record names.
    records_ = dataset::LoadShardRecords(out_);
    report_->orphans_deleted += dataset::SweepOrphans(out_, records_);
    // 5. PCA.
    UpdatePca();
    // 6. The run's lists and figures, then the markers.
    if (rejected_hits > 0) {
      out_.Put(dataset::kRejectedKey, dataset::RejectedJsonl(rejected_));
      report_->rejected_entries_removed += rejected_hits;
    }
    UpdateRunJson();
    RefreshReport();
    // A write killed earlier (this erasure's or the run's) may have left a temporary copy of
    // the subject's rows: none may outlive the erasure.
    out_.RemoveAbandonedWrites("");
    if (marker_.success && report_->pca != "dropped") out_.Put(dataset::kSuccessKey, "");
    out_.Delete(dataset::kErasureMarkerKey);
  }

 private:
  static json ParseJson(const std::string& text, const std::string& where) {
    try {
      return json::parse(text);
    } catch (const json::exception& e) {
      throw CorruptionError(where + ": " + e.what());
    }
  }

  // Removes selected images from plan_, noting their shards; returns how many.
  std::int64_t FilterPlan() {
    std::int64_t removed = 0;
    for (auto& shard : plan_.shards) {
      const auto n = std::erase_if(shard.images, [&](const dataset::SourceImage& img) { return sel_->Matches(img.key); });
      if (n > 0) planned_shards_.insert(shard.index);
      removed += static_cast<std::int64_t>(n);
    }
    return removed;
  }

  // Finds the shards holding selected rows (decoding only the path and subject_id columns):
  // those the plan names, or every shard when `all`.
  void Scan(bool all) {
    std::map<std::string, std::size_t> by_part;
    std::vector<std::string> keys;
    for (const ShardRecord& r : records_) {
      if (!all && !planned_shards_.count(r.index)) continue;
      ShardWork w;
      w.record = r;
      for (const auto& rej : r.rejected) w.rejected_selected += sel_->Matches(rej.path) ? 1 : 0;
      by_part[r.part_key] = work_.size();
      keys.push_back(r.part_key);
      work_.push_back(std::move(w));
    }
    for (auto& [key, bytes] : dataset::FetchAll(out_, keys)) {
      ShardWork& w = work_[by_part.at(key)];
      const parquet::Table t = parquet::ReadParquet(bytes, {"path", "subject_id", "image_sha256"});
      const auto& path = std::get<parquet::StringColumn>(t.Get("path").data);
      const auto& subject = std::get<parquet::StringColumn>(t.Get("subject_id").data);
      const auto& sha = std::get<parquet::StringColumn>(t.Get("image_sha256").data);
      for (std::size_t i = 0; i < path.values.size(); ++i) {
        std::optional<std::string> sid;
        if (subject.valid.empty() || subject.valid[i]) sid = subject.values[i];
        if (!sel_->Matches(path.values[i], sid)) continue;
        ++w.rows_selected;
        erased_photos_.insert(sha.values[i]);
      }
      if (w.rows_selected > 0) w.part = std::move(bytes);
    }
    std::erase_if(work_, [](const ShardWork& w) { return w.rows_selected == 0 && w.rejected_selected == 0; });
  }

  void RewriteShard(ShardWork& w) {
    ShardRecord next = w.record;
    std::erase_if(next.rejected, [&](const Rejection& r) { return sel_->Matches(r.path); });
    report_->rejected_entries_removed += w.rejected_selected;
    if (w.rows_selected == 0) {
      out_.Put(dataset::ShardRecordKey(next.index), next.ToJson());
      return;
    }
    std::string erased_paths;
    const dataset::FeatureBatch kept = dataset::ParseResults(w.part).Filtered([&](const dataset::ImageRow& row) {
      if (!sel_->Matches(row.path, row.subject_id)) return true;
      erased_paths += row.path + "\n";
      ++report_->rows_removed;
      if (auto s = ErasureSelector::SubjectOf(row.path, row.subject_id)) ++report_->rows_by_subject[*s];
      return false;
    });
    // Recomputed from the kept rows, not subtracted: see the header.
    pca::PcaStats stats = kept.dim > 0 ? pca::PcaStats(kept.dim) : pca::PcaStats();
    if (!kept.rows.empty()) stats.AddBatch(kept.vectors.data(), static_cast<int>(kept.rows.size()));
    // Names derived from what is erased: a re-run after a crash writes the same files.
    const std::string id = dataset::ContentId(w.record.part_key + "\n" + erased_paths);
    next.part_key = dataset::ResultsPartKey(next.index, id, options_.compression);
    next.stats_key = dataset::StatsKey(next.index, id);
    next.rows = static_cast<std::int64_t>(kept.rows.size());
    parquet::WriteOptions wopt;
    wopt.compression = options_.compression;
    dataset::CommitShard(out_, next, parquet::WriteParquet(dataset::ResultsTable(kept), wopt), stats.Serialize());
    if (w.record.part_key != next.part_key) out_.Delete(w.record.part_key);
    if (w.record.stats_key != next.stats_key) out_.Delete(w.record.stats_key);
    ++report_->shards_rewritten;
    rewritten_.insert(next.index);
    w.part.clear();
  }

  bool ModelFittedHere() {
    // run.json says where the model came from; without it, refit: the safe side for privacy.
    const auto run = out_.GetIfExists(dataset::kRunJsonKey);
    if (!run) return true;
    const json j = ParseJson(*run, dataset::kRunJsonKey);
    if (!j.contains("pca") || !j["pca"].is_object()) return true;
    return j["pca"].value("fitted", true);
  }

  void UpdatePca() {
    const auto model_bytes = out_.GetIfExists(dataset::kPcaModelKey);
    if (!model_bytes) {
      dataset::DeletePcaPartsExcept(out_, {});
      report_->pca = "none";
      return;
    }
    if (ModelFittedHere()) {
      Refit(*model_bytes);
    } else {
      FilterPcaParts(dataset::ContentId(*model_bytes));
    }
  }

  void Refit(const std::string& old_bytes) {
    const pca::PcaModel old = pca::PcaModel::Deserialize(old_bytes, out_.Uri(dataset::kPcaModelKey));
    const pca::PcaStats total = dataset::SumShardStats(out_, records_);
    std::optional<pca::PcaModel> model;
    if (total.count() >= 2) {
      pca::PcaFitOptions fit;
      fit.k = static_cast<int>(std::min<std::int64_t>({old.k, total.dim(), total.count() - 1}));
      try {
        model = pca::FitPca(total, fit);
      } catch (const InvalidArgumentError&) {
        model.reset();  // e.g. the rows left have no variance
      }
    }
    if (!model) {
      // No model can describe what is left; keeping the old one would keep the erased rows'
      // contribution.
      out_.Delete(dataset::kPcaModelKey);
      out_.Delete(dataset::kPcaModelJsonKey);
      dataset::DeletePcaPartsExcept(out_, {});
      for (const ShardRecord& r : records_) report_->pca_rows_removed += r.rows;
      report_->pca_rows_removed += report_->rows_removed;
      report_->pca = "dropped";
      return;
    }
    const std::string id = dataset::StorePcaModel(out_, model->Serialize());
    std::set<std::string> existing, wanted;
    for (const auto& obj : out_.List(std::string(dataset::kResultsPcaDir) + "/")) existing.insert(obj.key);
    for (const ShardRecord& r : records_) {
      const std::string key = dataset::ResultsPcaPartKey(r.index, id, options_.compression);
      wanted.insert(key);
      if (existing.count(key)) continue;
      dataset::WritePcaPart(out_, r, *model, id, options_.compression);
      ++report_->pca_parts_written;
    }
    dataset::DeletePcaPartsExcept(out_, wanted);
    // Every row's projection changes with the model; those of the erased rows are gone.
    report_->pca_rows_removed += report_->rows_removed;
    report_->pca = "refit";
  }

  void FilterPcaParts(const std::string& model_id) {
    std::set<int> committed;
    for (const ShardRecord& r : records_) committed.insert(r.index);
    std::set<std::string> keep;
    std::vector<std::string> keys;
    for (const auto& obj : out_.List(std::string(dataset::kResultsPcaDir) + "/")) {
      const int index = dataset::ShardIndexOf(obj.key);
      if (committed.count(index) && dataset::IsPartOfModel(obj.key, model_id)) {
        keep.insert(obj.key);
        // Parts of shards no selected row was in are unchanged (unless an erasure was pending).
        if (scan_all_ || rewritten_.count(index)) keys.push_back(obj.key);
      }
    }
    parquet::WriteOptions wopt;
    wopt.compression = options_.compression;
    for (const auto& [key, bytes] : dataset::FetchAll(out_, keys)) {
      const dataset::PcaBatch batch = dataset::ParseResultsPca(bytes);
      const dataset::PcaBatch kept =
          batch.Filtered([&](const dataset::ImageRow& row) { return !sel_->Matches(row.path, row.subject_id); });
      if (kept.rows.size() == batch.rows.size()) continue;
      // Same name: the part is derived data and Put is atomic, so a reader sees the old part
      // or the filtered one; the model, and so every other row's values, are unchanged.
      out_.Put(key, parquet::WriteParquet(dataset::ResultsPcaTable(kept), wopt));
      report_->pca_rows_removed += static_cast<std::int64_t>(batch.rows.size() - kept.rows.size());
      ++report_->pca_parts_written;
    }
    dataset::DeletePcaPartsExcept(out_, keep);
    report_->pca = "filtered";
  }

  // Counts in run.json that erasure changes, recomputed from the dataset as it is now.
  void UpdateRunJson() {
    const auto text = out_.GetIfExists(dataset::kRunJsonKey);
    if (!text) return;
    json run = ParseJson(*text, dataset::kRunJsonKey);
    dataset::CountDataset(plan_, records_, rejected_).WriteTo(run);
    std::map<int, const ShardRecord*> by_index;
    for (const ShardRecord& r : records_) by_index[r.index] = &r;
    if (run.contains("shard_timeline") && run["shard_timeline"].is_array()) {
      for (auto& entry : run["shard_timeline"]) {
        auto it = by_index.find(entry.value("shard", -1));
        if (it == by_index.end()) continue;
        entry["rows"] = it->second->rows;
        entry["rejected"] = it->second->rejected.size();
      }
    }
    if (report_->pca == "refit") {
      const std::string bytes = out_.Get(dataset::kPcaModelKey);
      run["pca"] = dataset::PcaSummary(pca::PcaModel::Deserialize(bytes), dataset::ContentId(bytes), true, "fit");
    } else if (report_->pca == "dropped") {
      run.erase("pca");
    }
    const std::string updated = run.dump(2);
    if (updated != *text) out_.Put(dataset::kRunJsonKey, updated);
  }

  // report.html lists rows and rejected paths: drawn again from what is left, or removed when
  // it cannot be (it would keep naming the erased photos).
  void RefreshReport() {
    if (!out_.Exists(dataset::kReportKey)) return;
    try {
      report::WriteReport(out_);
    } catch (const Error&) {
      out_.Delete(dataset::kReportKey);
      report_->report = "deleted";
      return;
    }
    report_->report = "regenerated";
  }

  storage::Storage& out_;
  ErasureReport* report_;
  ErasureOptions options_;
  Marker marker_;
  const ErasureSelector* sel_ = nullptr;
  dataset::DatasetPlan plan_;
  std::vector<ShardRecord> records_;
  std::vector<ShardWork> work_;
  std::set<int> planned_shards_;  // shards whose plan entries were selected
  std::set<int> rewritten_;       // shards whose Results part lost rows now
  bool scan_all_ = false;
  std::vector<Rejection> rejected_;  // rejected.jsonl, once filtered
  std::set<std::string> erased_photos_;  // SHA-256 of the selected rows' photos
};

}  // namespace

std::optional<std::string> ErasureSelector::SubjectOf(std::string_view key_or_uri,
                                                      const std::optional<std::string>& subject_id) {
  if (subject_id) return subject_id;
  return dataset::SubjectFromKey(key_or_uri);
}

bool ErasureSelector::Matches(std::string_view key_or_uri, const std::optional<std::string>& subject_id) const {
  if (subject_id && subjects.count(*subject_id)) return true;
  const auto from_name = dataset::SubjectFromKey(key_or_uri);
  if (!from_name) return false;  // catalogue image
  if (subjects.count(*from_name)) return true;
  return !photos.empty() && photos.count(std::string(PhotoName(key_or_uri))) > 0;
}

json ErasureReport::ToJson() const {
  return {{"photos_deleted", photos_deleted},
          {"rows_removed", rows_removed},
          {"pca_rows_removed", pca_rows_removed},
          {"shards_rewritten", shards_rewritten},
          {"plan_entries_removed", plan_entries_removed},
          {"rejected_entries_removed", rejected_entries_removed},
          {"orphans_deleted", orphans_deleted},
          {"pca_parts_written", pca_parts_written},
          {"photos_suppressed", photos_suppressed},
          {"datasets_reprojected", datasets_reprojected},
          {"pca", pca},
          {"report", report},
          {"completed_pending", completed_pending}};
}

void DeletePhotos(storage::Storage& store, const ErasureSelector& selector, ErasureReport* report) {
  if (selector.empty()) return;
  for (const auto& obj : store.List("")) {
    if (!selector.Matches(obj.key)) continue;
    store.Delete(obj.key);
    ++report->photos_deleted;
    if (auto s = ErasureSelector::SubjectOf(obj.key)) ++report->photos_by_subject[*s];
  }
}

void EraseFromDataset(storage::Storage& out, const ErasureSelector& selector, ErasureReport* report,
                      const ErasureOptions& options) {
  DatasetEraser(out, report, options).Run(selector);
}

namespace {

// The id of the PCA model a dataset holds, and whether it was fitted there (run.json).
struct PcaOrigin {
  std::string model_id;  // "" without a model
  bool fitted = true;
};

PcaOrigin PcaOriginOf(storage::Storage& out) {
  PcaOrigin o;
  if (auto bytes = out.GetIfExists(dataset::kPcaModelKey)) o.model_id = dataset::ContentId(*bytes);
  if (auto run = out.GetIfExists(dataset::kRunJsonKey)) {
    const json j = json::parse(*run, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.contains("pca") && j["pca"].is_object()) o.fitted = j["pca"].value("fitted", true);
  }
  return o;
}

// Projects every shard of `out` with `model_bytes` (a model fitted elsewhere), keeping
// run.json's account of where the model came from. Idempotent: parts already written for the
// model are kept, so a re-run after a crash finishes the job.
void Reproject(storage::Storage& out, const std::string& model_bytes, const ErasureOptions& options,
               ErasureReport* report) {
  const pca::PcaModel model = pca::PcaModel::Deserialize(model_bytes);
  const bool was_complete = out.Exists(dataset::kSuccessKey);
  out.Delete(dataset::kSuccessKey);
  const std::string id = dataset::StorePcaModel(out, model_bytes);
  std::set<std::string> existing, wanted;
  for (const auto& obj : out.List(std::string(dataset::kResultsPcaDir) + "/")) existing.insert(obj.key);
  for (const auto& r : dataset::LoadShardRecords(out)) {
    const std::string key = dataset::ResultsPcaPartKey(r.index, id, options.compression);
    wanted.insert(key);
    if (existing.count(key)) continue;
    dataset::WritePcaPart(out, r, model, id, options.compression);
    ++report->pca_parts_written;
  }
  dataset::DeletePcaPartsExcept(out, wanted);
  if (auto text = out.GetIfExists(dataset::kRunJsonKey)) {
    json run = json::parse(*text);
    const std::string source = run.contains("pca") ? run["pca"].value("source", "") : "";
    run["pca"] = dataset::PcaSummary(model, id, /*fitted=*/false, source);
    const std::string updated = run.dump(2);
    if (updated != *text) out.Put(dataset::kRunJsonKey, updated);
  }
  if (out.Exists(dataset::kReportKey)) report::WriteReport(out);
  // run.json is written just before _SUCCESS: a finished dataset (this one was, unless a
  // crash came after the Delete above) gets it back.
  if (was_complete || out.Exists(dataset::kRunJsonKey)) out.Put(dataset::kSuccessKey, "");
  ++report->datasets_reprojected;
}

}  // namespace

void EraseFromDatasets(const std::vector<storage::Storage*>& datasets, const ErasureSelector& selector,
                       ErasureReport* report, const ErasureOptions& options) {
  std::vector<PcaOrigin> before;
  for (auto* out : datasets) before.push_back(PcaOriginOf(*out));
  for (auto* out : datasets) EraseFromDataset(*out, selector, report, options);
  // A dataset projected with another one's model (run --pca-model TRAIN) holds projections
  // by a model fitted with the erased rows: it is projected again with the refitted model.
  // Matched by model id, before or after the refit, so a re-run after a crash completes it.
  for (std::size_t d = 0; d < datasets.size(); ++d) {
    if (before[d].fitted || before[d].model_id.empty()) continue;
    for (std::size_t e = 0; e < datasets.size(); ++e) {
      if (e == d || !before[e].fitted) continue;
      const auto model = datasets[e]->GetIfExists(dataset::kPcaModelKey);
      if (!model) continue;
      if (before[d].model_id != before[e].model_id && before[d].model_id != dataset::ContentId(*model)) continue;
      Reproject(*datasets[d], *model, options, report);
      break;
    }
  }
}

}  // namespace fruitpipe::privacy
