#include "fruitpipe/privacy/erasure.h"

#include <algorithm>
#include <mutex>

#include "fruitpipe/common/error.h"
#include "fruitpipe/common/hash.h"
#include "fruitpipe/pca/pca.h"
#include "fruitpipe/pipeline/dataset.h"
#include "fruitpipe/pipeline/manifest.h"
#include "fruitpipe/pipeline/results.h"
#include "fruitpipe/report/report.h"

namespace fruitpipe::privacy {
namespace {

using nlohmann::json;
using pipeline::ShardRecord;

std::string_view BaseName(std::string_view path) {
  const auto slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

// "<Label>/<file name>": how a photo is named across stores, plans and row paths.
std::string_view PhotoName(std::string_view path) {
  const auto slash = path.rfind('/');
  if (slash == std::string_view::npos || slash == 0) return path;
  const auto prev = path.rfind('/', slash - 1);
  return prev == std::string_view::npos ? path : path.substr(prev + 1);
}

// Index of a "part-SSSSS-..." or "shard-SSSSS..." file name; -1 when it is neither.
int IndexOf(std::string_view key) {
  std::string_view name = BaseName(key);
  for (std::string_view prefix : {"part-", "shard-"}) {
    if (name.substr(0, prefix.size()) == prefix) {
      name.remove_prefix(prefix.size());
      if (name.size() < 5) return -1;
      int v = 0;
      for (int i = 0; i < 5; ++i) {
        if (name[i] < '0' || name[i] > '9') return -1;
        v = v * 10 + (name[i] - '0');
      }
      return v;
    }
  }
  return -1;
}

// Fetches `keys` (many in flight on remote stores) and hands each to `fn` in key order.
void ForEachObject(storage::Storage& out, const std::vector<std::string>& keys,
                   const std::function<void(const std::string& key, std::string&& bytes)>& fn) {
  std::map<std::string, std::string> got;
  std::string error;
  std::mutex mu;
  out.GetMany(keys, [&](storage::FetchResult&& r) {
    std::lock_guard lock(mu);
    if (!r.ok) {
      if (error.empty()) error = r.error;
      return;
    }
    got[r.key] = std::move(r.data);
  });
  if (!error.empty()) throw IOError(error);
  for (auto& [key, bytes] : got) fn(key, std::move(bytes));
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
  ErasureSelector selector;

  std::string ToJson() const {
    return json{{"format", "fruitpipe-erasure/1"},
                {"success", success},
                {"subjects", selector.subjects},
                {"photos", selector.photos}}
        .dump();
  }
  static Marker FromJson(const std::string& text, const std::string& where) {
    try {
      const json j = json::parse(text);
      Marker m;
      m.success = j.at("success").get<bool>();
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
    const auto plan_bytes = out_.GetIfExists(pipeline::kPlanKey);
    if (!plan_bytes) throw InvalidArgumentError(out_.Uri("") + ": not a fruitpipe dataset (no _plan.json)");
    plan_ = ParseJson(*plan_bytes, pipeline::kPlanKey);
    const auto marker_bytes = out_.GetIfExists(kErasureMarkerKey);
    bool pending = marker_bytes.has_value();
    if (pending) {
      marker_ = Marker::FromJson(*marker_bytes, out_.Uri(kErasureMarkerKey));
      report_->completed_pending = true;
    }
    marker_.selector.subjects.insert(requested.subjects.begin(), requested.subjects.end());
    marker_.selector.photos.insert(requested.photos.begin(), requested.photos.end());
    sel_ = &marker_.selector;

    records_ = pipeline::LoadShardRecords(out_);
    const std::int64_t plan_hits = FilterPlan();
    // The plan says which shards hold the photos; after an interrupted erasure it may already
    // have forgotten them, so then every shard is read.
    scan_all_ = pending;
    Scan(pending);
    rejected_text_ = out_.GetIfExists(pipeline::kRejectedKey);
    const std::int64_t rejected_hits = FilterRejected();
    const bool touched = plan_hits > 0 || rejected_hits > 0 ||
                         std::any_of(work_.begin(), work_.end(), [](const ShardWork& w) {
                           return w.rows_selected > 0 || w.rejected_selected > 0;
                         });
    if (!pending && !touched) return;  // nothing of theirs here: no write at all

    // 1. Tell readers and later erasures that the dataset is changing, and what is erased.
    if (!pending) marker_.success = out_.Exists(pipeline::kSuccessKey);
    out_.Put(kErasureMarkerKey, marker_.ToJson());
    out_.Delete(pipeline::kSuccessKey);
    // 2. The plan: nothing may re-featurize these photos.
    if (plan_hits > 0) {
      out_.Put(pipeline::kPlanKey, plan_.dump());
      report_->plan_entries_removed += plan_hits;
    }
    // 3. Shards, each switched at its commit record.
    for (ShardWork& w : work_) RewriteShard(w);
    // 4. Whatever no commit record names.
    SweepOrphans();
    // 5. PCA.
    UpdatePca();
    // 6. The run's lists and figures, then the markers.
    if (rejected_hits > 0) {
      out_.Put(pipeline::kRejectedKey, *rejected_text_);
      report_->rejected_entries_removed += rejected_hits;
    }
    UpdateRunJson();
    RefreshReport();
    // A write killed earlier (this erasure's or the run's) may have left a temporary copy of
    // the subject's rows: none may outlive the erasure.
    out_.RemoveAbandonedWrites("");
    if (marker_.success && report_->pca != "dropped") out_.Put(pipeline::kSuccessKey, "");
    out_.Delete(kErasureMarkerKey);
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
    try {
      for (auto& shard : plan_.at("shards")) {
        auto& images = shard.at("images");
        json kept = json::array();
        for (auto& img : images) {
          if (sel_->Matches(img.at(0).get<std::string>())) {
            ++removed;
            planned_shards_.insert(shard.at("index").get<int>());
          } else {
            kept.push_back(std::move(img));
          }
        }
        images = std::move(kept);
      }
    } catch (const json::exception& e) {
      throw CorruptionError(out_.Uri(pipeline::kPlanKey) + ": " + e.what());
    }
    return removed;
  }

  std::int64_t FilterRejected() {
    if (!rejected_text_) return 0;
    std::string kept;
    std::int64_t removed = 0;
    std::size_t pos = 0;
    while (pos < rejected_text_->size()) {
      auto nl = rejected_text_->find('\n', pos);
      if (nl == std::string::npos) nl = rejected_text_->size();
      const std::string line = rejected_text_->substr(pos, nl - pos);
      pos = nl + 1;
      if (line.empty()) continue;
      const json j = ParseJson(line, out_.Uri(pipeline::kRejectedKey));
      if (sel_->Matches(j.value("path", ""))) {
        ++removed;
      } else {
        kept += line + "\n";
      }
    }
    rejected_text_ = std::move(kept);
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
    ForEachObject(out_, keys, [&](const std::string& key, std::string&& bytes) {
      ShardWork& w = work_[by_part.at(key)];
      const parquet::Table t = parquet::ReadParquet(bytes, {"path", "subject_id"});
      const auto& path = std::get<parquet::StringColumn>(t.Get("path").data);
      const auto& subject = std::get<parquet::StringColumn>(t.Get("subject_id").data);
      for (std::size_t i = 0; i < path.values.size(); ++i) {
        std::optional<std::string> sid;
        if (subject.valid.empty() || subject.valid[i]) sid = subject.values[i];
        if (sel_->Matches(path.values[i], sid)) ++w.rows_selected;
      }
      if (w.rows_selected > 0) w.part = std::move(bytes);
    });
    std::erase_if(work_, [](const ShardWork& w) { return w.rows_selected == 0 && w.rejected_selected == 0; });
  }

  void RewriteShard(ShardWork& w) {
    ShardRecord next = w.record;
    std::erase_if(next.rejected, [&](const pipeline::Rejection& r) { return sel_->Matches(r.path); });
    report_->rejected_entries_removed += w.rejected_selected;
    if (w.rows_selected == 0) {
      out_.Put(pipeline::ShardRecordKey(next.index), next.ToJson());
      return;
    }
    pipeline::FeatureBatch batch = pipeline::ParseResults(w.part);
    pipeline::FeatureBatch kept;
    kept.dim = batch.dim;
    std::string erased_paths;
    for (std::size_t i = 0; i < batch.rows.size(); ++i) {
      const pipeline::ImageRow& row = batch.rows[i];
      if (sel_->Matches(row.path, row.subject_id)) {
        erased_paths += row.path + "\n";
        ++report_->rows_removed;
        if (auto s = ErasureSelector::SubjectOf(row.path, row.subject_id)) ++report_->rows_by_subject[*s];
        continue;
      }
      kept.rows.push_back(row);
      const float* v = batch.vectors.data() + i * static_cast<std::size_t>(batch.dim);
      kept.vectors.insert(kept.vectors.end(), v, v + batch.dim);
    }
    // Recomputed from the kept rows, not subtracted: see the header.
    pca::PcaStats stats = kept.dim > 0 ? pca::PcaStats(kept.dim) : pca::PcaStats();
    if (!kept.rows.empty()) stats.AddBatch(kept.vectors.data(), static_cast<int>(kept.rows.size()));
    // Names derived from what is erased: a re-run after a crash writes the same files.
    const std::string id = Sha256Hex(w.record.part_key + "\n" + erased_paths).substr(0, 12);
    next.part_key = pipeline::ResultsPartKey(next.index, id);
    next.stats_key = "_stats/shard-" + pipeline::ShardName(next.index) + "-" + id + ".bin";
    next.rows = static_cast<std::int64_t>(kept.rows.size());
    parquet::WriteOptions wopt;
    wopt.compression = options_.compression;
    pipeline::CommitShard(out_, next, parquet::WriteParquet(pipeline::ResultsTable(kept), wopt), stats.Serialize());
    if (w.record.part_key != next.part_key) out_.Delete(w.record.part_key);
    if (w.record.stats_key != next.stats_key) out_.Delete(w.record.stats_key);
    ++report_->shards_rewritten;
    rewritten_.insert(next.index);
    w.part.clear();
  }

  void SweepOrphans() {
    records_ = pipeline::LoadShardRecords(out_);
    std::set<std::string> live;
    for (const ShardRecord& r : records_) {
      live.insert(r.part_key);
      live.insert(r.stats_key);
    }
    for (const char* dir : {"Results/", "_stats/"}) {
      for (const auto& obj : out_.List(dir)) {
        if (live.count(obj.key)) continue;
        out_.Delete(obj.key);
        ++report_->orphans_deleted;
      }
    }
  }

  bool ModelFittedHere() {
    // run.json says where the model came from; without it, refit: the safe side for privacy.
    const auto run = out_.GetIfExists(pipeline::kRunJsonKey);
    if (!run) return true;
    const json j = ParseJson(*run, pipeline::kRunJsonKey);
    if (!j.contains("pca") || !j["pca"].is_object()) return true;
    return j["pca"].value("fitted", true);
  }

  void DeletePcaParts(const std::set<std::string>& keep) {
    for (const auto& obj : out_.List(std::string(pipeline::kResultsPcaDir) + "/")) {
      if (keep.count(obj.key)) continue;
      out_.Delete(obj.key);
    }
  }

  void UpdatePca() {
    const auto model_bytes = out_.GetIfExists(pipeline::kPcaModelKey);
    if (!model_bytes) {
      DeletePcaParts({});
      report_->pca = "none";
      return;
    }
    if (ModelFittedHere()) {
      Refit(*model_bytes);
    } else {
      FilterPcaParts(Sha256Hex(*model_bytes).substr(0, 12));
    }
  }

  void Refit(const std::string& old_bytes) {
    const pca::PcaModel old = pca::PcaModel::Deserialize(old_bytes, out_.Uri(pipeline::kPcaModelKey));
    const std::string old_id = Sha256Hex(old_bytes).substr(0, 12);
    std::vector<std::string> keys;
    for (const ShardRecord& r : records_) keys.push_back(r.stats_key);
    std::map<std::string, pca::PcaStats> by_key;
    ForEachObject(out_, keys, [&](const std::string& key, std::string&& bytes) {
      by_key[key] = pca::PcaStats::Deserialize(bytes, out_.Uri(key));
    });
    pca::PcaStats total;
    for (const ShardRecord& r : records_) total.Merge(by_key.at(r.stats_key));  // index order

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
      out_.Delete(pipeline::kPcaModelKey);
      out_.Delete(pipeline::kPcaModelJsonKey);
      DeletePcaParts({});
      for (const ShardRecord& r : records_) report_->pca_rows_removed += r.rows;
      report_->pca_rows_removed += report_->rows_removed;
      report_->pca = "dropped";
      return;
    }
    const std::string bytes = model->Serialize();
    const std::string id = Sha256Hex(bytes).substr(0, 12);
    if (bytes != old_bytes) out_.Put(pipeline::kPcaModelKey, bytes);
    // Compared on its own: a crash may have come between the two writes.
    const std::string summary = model->ToJson();
    if (out_.GetIfExists(pipeline::kPcaModelJsonKey) != summary) out_.Put(pipeline::kPcaModelJsonKey, summary);
    std::set<std::string> existing, wanted;
    for (const auto& obj : out_.List(std::string(pipeline::kResultsPcaDir) + "/")) existing.insert(obj.key);
    parquet::WriteOptions wopt;
    wopt.compression = options_.compression;
    for (const ShardRecord& r : records_) {
      const std::string key = pipeline::ResultsPcaPartKey(r.index, id);
      wanted.insert(key);
      if (existing.count(key)) continue;
      pipeline::FeatureBatch features = pipeline::ParseResults(out_.Get(r.part_key));
      pipeline::PcaBatch projected;
      projected.dim = model->k;
      projected.rows = std::move(features.rows);
      projected.vectors.resize(projected.rows.size() * static_cast<std::size_t>(model->k));
      if (!projected.rows.empty()) {
        model->TransformBatch(features.vectors.data(), static_cast<int>(projected.rows.size()), projected.vectors.data());
      }
      out_.Put(key, parquet::WriteParquet(pipeline::ResultsPcaTable(projected), wopt));
      ++report_->pca_parts_written;
    }
    DeletePcaParts(wanted);
    // Every row's projection changes with the model; those of the erased rows are gone.
    report_->pca_rows_removed += report_->rows_removed;
    report_->pca = "refit";
  }

  void FilterPcaParts(const std::string& model_id) {
    std::map<int, const ShardRecord*> by_index;
    for (const ShardRecord& r : records_) by_index[r.index] = &r;
    std::set<std::string> keep;
    std::vector<std::string> keys;
    for (const auto& obj : out_.List(std::string(pipeline::kResultsPcaDir) + "/")) {
      const int index = IndexOf(obj.key);
      if (by_index.count(index) && obj.key.find("-" + model_id + ".") != std::string::npos) {
        keep.insert(obj.key);
        // Parts of shards no selected row was in are unchanged (unless an erasure was pending).
        if (scan_all_ || rewritten_.count(index)) keys.push_back(obj.key);
      }
    }
    parquet::WriteOptions wopt;
    wopt.compression = options_.compression;
    ForEachObject(out_, keys, [&](const std::string& key, std::string&& bytes) {
      pipeline::PcaBatch batch = pipeline::ParseResultsPca(bytes);
      pipeline::PcaBatch kept;
      kept.dim = batch.dim;
      for (std::size_t i = 0; i < batch.rows.size(); ++i) {
        if (sel_->Matches(batch.rows[i].path, batch.rows[i].subject_id)) continue;
        kept.rows.push_back(batch.rows[i]);
        const double* v = batch.vectors.data() + i * static_cast<std::size_t>(batch.dim);
        kept.vectors.insert(kept.vectors.end(), v, v + batch.dim);
      }
      if (kept.rows.size() == batch.rows.size()) return;
      // Same name: the part is derived data and Put is atomic, so a reader sees the old part
      // or the filtered one; the model, and so every other row's values, are unchanged.
      out_.Put(key, parquet::WriteParquet(pipeline::ResultsPcaTable(kept), wopt));
      report_->pca_rows_removed += static_cast<std::int64_t>(batch.rows.size() - kept.rows.size());
      ++report_->pca_parts_written;
    });
    DeletePcaParts(keep);
    report_->pca = "filtered";
  }

  // Counts in run.json that erasure changes, recomputed from the dataset as it is now.
  void UpdateRunJson() {
    const auto text = out_.GetIfExists(pipeline::kRunJsonKey);
    if (!text) return;
    json run = ParseJson(*text, pipeline::kRunJsonKey);
    std::int64_t rows = 0, record_rejections = 0;
    std::map<int, const ShardRecord*> by_index;
    for (const ShardRecord& r : records_) {
      rows += r.rows;
      record_rejections += static_cast<std::int64_t>(r.rejected.size());
      by_index[r.index] = &r;
    }
    std::int64_t rejected_lines = 0;
    std::set<std::string> rejected_paths;
    if (rejected_text_) {
      std::size_t pos = 0;
      while (pos < rejected_text_->size()) {
        auto nl = rejected_text_->find('\n', pos);
        if (nl == std::string::npos) nl = rejected_text_->size();
        if (nl > pos) {
          ++rejected_lines;
          rejected_paths.insert(json::parse(rejected_text_->substr(pos, nl - pos)).value("path", ""));
        }
        pos = nl + 1;
      }
    }
    // As the pipeline counts them: planned images that were not rejected, by label.
    const std::string source = plan_.value("source", "");
    std::map<std::string, std::int64_t> labels;
    std::int64_t planned = 0;
    for (const auto& shard : plan_.at("shards")) {
      for (const auto& img : shard.at("images")) {
        ++planned;
        if (!rejected_paths.count(storage::JoinKey(source, img.at(0).get<std::string>()))) {
          ++labels[img.at(1).get<std::string>()];
        }
      }
    }
    run["images"] = rows;
    run["rejected"] = rejected_lines;
    if (run.contains("listed")) run["listed"] = planned + (rejected_lines - record_rejections);
    if (run.contains("labels")) run["labels"] = labels;
    if (run.contains("shards_total")) run["shards_total"] = records_.size();
    if (run.contains("shard_timeline") && run["shard_timeline"].is_array()) {
      for (auto& entry : run["shard_timeline"]) {
        auto it = by_index.find(entry.value("shard", -1));
        if (it == by_index.end()) continue;
        entry["rows"] = it->second->rows;
        entry["rejected"] = it->second->rejected.size();
      }
    }
    if (report_->pca == "refit") {
      const std::string bytes = out_.Get(pipeline::kPcaModelKey);
      const pca::PcaModel model = pca::PcaModel::Deserialize(bytes);
      json pca = json::parse(model.ToJson());
      pca["fitted"] = true;
      pca["model_id"] = Sha256Hex(bytes).substr(0, 12);
      pca["source"] = "fit";
      run["pca"] = std::move(pca);
    } else if (report_->pca == "dropped") {
      run.erase("pca");
    }
    const std::string updated = run.dump(2);
    if (updated != *text) out_.Put(pipeline::kRunJsonKey, updated);
  }

  // report.html lists rows and rejected paths: drawn again from what is left, or removed when
  // it cannot be (it would keep naming the erased photos).
  void RefreshReport() {
    if (!out_.Exists(report::kReportKey)) return;
    try {
      report::WriteReport(out_);
    } catch (const Error&) {
      out_.Delete(report::kReportKey);
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
  json plan_;
  std::vector<ShardRecord> records_;
  std::vector<ShardWork> work_;
  std::set<int> planned_shards_;  // shards whose plan entries were selected
  std::set<int> rewritten_;       // shards whose Results part lost rows now
  bool scan_all_ = false;
  std::optional<std::string> rejected_text_;
};

}  // namespace

std::optional<std::string> ErasureSelector::SubjectOf(std::string_view key_or_uri,
                                                      const std::optional<std::string>& subject_id) {
  if (subject_id) return subject_id;
  return pipeline::SubjectFromKey(BaseName(key_or_uri));
}

bool ErasureSelector::Matches(std::string_view key_or_uri, const std::optional<std::string>& subject_id) const {
  if (subject_id && subjects.count(*subject_id)) return true;
  const auto from_name = pipeline::SubjectFromKey(BaseName(key_or_uri));
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

}  // namespace fruitpipe::privacy
