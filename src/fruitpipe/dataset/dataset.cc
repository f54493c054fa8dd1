#include "fruitpipe/dataset/dataset.h"

#include <algorithm>
#include <mutex>

#include "fruitpipe/common/error.h"

namespace fruitpipe::dataset {

using nlohmann::json;

std::map<std::string, std::string> FetchAll(storage::Storage& out, const std::vector<std::string>& keys) {
  std::map<std::string, std::string> got;
  std::string error;
  std::mutex mu;  // GetMany may call back from several threads
  out.GetMany(keys, [&](storage::FetchResult&& r) {
    std::lock_guard lock(mu);
    if (!r.ok) {
      if (error.empty()) error = r.error;
      return;
    }
    got[r.key] = std::move(r.data);
  });
  if (!error.empty()) throw IOError(error);
  return got;
}

pca::PcaStats SumShardStats(storage::Storage& out, const std::vector<ShardRecord>& records,
                            const std::set<int>* indices) {
  std::vector<std::string> keys;
  for (const auto& r : records) {
    if (!indices || indices->count(r.index)) keys.push_back(r.stats_key);
  }
  const auto bytes = FetchAll(out, keys);
  pca::PcaStats total;
  for (const auto& key : keys) total.Merge(pca::PcaStats::Deserialize(bytes.at(key), out.Uri(key)));  // records are by index
  return total;
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

std::string StorePcaModel(storage::Storage& out, const std::string& model_bytes) {
  if (out.GetIfExists(kPcaModelKey) != model_bytes) out.Put(kPcaModelKey, model_bytes);
  const std::string summary = pca::PcaModel::Deserialize(model_bytes).ToJson();
  if (out.GetIfExists(kPcaModelJsonKey) != summary) out.Put(kPcaModelJsonKey, summary);
  return ContentId(model_bytes);
}

json PcaSummary(const pca::PcaModel& model, const std::string& model_id, bool fitted, const std::string& source) {
  json pca = json::parse(model.ToJson());
  pca["fitted"] = fitted;
  pca["model_id"] = model_id;
  pca["source"] = source;
  return pca;
}

std::string WritePcaPart(storage::Storage& out, const ShardRecord& record, const pca::PcaModel& model,
                         const std::string& model_id, parquet::Compression codec) {
  const std::string key = ResultsPcaPartKey(record.index, model_id, codec);
  parquet::WriteOptions options;
  options.compression = codec;
  out.Put(key, parquet::WriteParquet(ResultsPcaTable(Project(model, ParseResults(out.Get(record.part_key)))), options));
  return key;
}

std::int64_t DeletePcaPartsExcept(storage::Storage& out, const std::set<std::string>& keep) {
  std::int64_t deleted = 0;
  for (const auto& obj : out.List(std::string(kResultsPcaDir) + "/")) {
    if (keep.count(obj.key)) continue;
    out.Delete(obj.key);
    ++deleted;
  }
  return deleted;
}

std::int64_t SweepOrphans(storage::Storage& out, const std::vector<ShardRecord>& records) {
  std::set<std::string> live;
  for (const ShardRecord& r : records) {
    live.insert(r.part_key);
    live.insert(r.stats_key);
  }
  std::int64_t deleted = 0;
  for (const char* dir : {kResultsDir, kStatsDir}) {
    for (const auto& obj : out.List(std::string(dir) + "/")) {
      if (live.count(obj.key)) continue;
      out.Delete(obj.key);
      ++deleted;
    }
  }
  return deleted;
}

ErasureRecord LoadErasureRecord(storage::Storage& out) {
  const auto text = out.GetIfExists(kErasedPhotosKey);
  if (!text) return {};
  try {
    const json j = json::parse(*text);
    if (j.at("format") != "fruitpipe-erased-photos/1") throw CorruptionError("unknown format");
    return {j.at("epoch").get<std::int64_t>(), j.at("sha256").get<std::set<std::string>>()};
  } catch (const json::exception& e) {
    throw CorruptionError(out.Uri(kErasedPhotosKey) + ": " + e.what());
  } catch (const CorruptionError& e) {
    throw CorruptionError(out.Uri(kErasedPhotosKey) + ": " + e.what());
  }
}

std::set<std::string> LoadErasedPhotos(storage::Storage& out) { return LoadErasureRecord(out).sha256; }

void StoreErasureRecord(storage::Storage& out, std::int64_t epoch, const std::set<std::string>& sha256) {
  ErasureRecord r = LoadErasureRecord(out);
  const ErasureRecord before = r;
  r.epoch = std::max(r.epoch, epoch);
  r.sha256.insert(sha256.begin(), sha256.end());
  if (r.epoch == before.epoch && r.sha256 == before.sha256) return;
  out.Put(kErasedPhotosKey, json{{"format", "fruitpipe-erased-photos/1"}, {"epoch", r.epoch}, {"sha256", r.sha256}}.dump());
}

std::string RejectedJsonl(const std::vector<Rejection>& rejected) {
  std::string text;
  for (const auto& r : rejected) {
    text += json{{"path", r.path}, {"reason", r.reason}}.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  }
  return text;
}

std::vector<Rejection> ParseRejectedJsonl(std::string_view text, const std::string& uri) {
  std::vector<Rejection> rows;
  std::size_t line_no = 0, begin = 0;
  while (begin < text.size()) {
    std::size_t end = text.find('\n', begin);
    if (end == std::string_view::npos) end = text.size();
    ++line_no;
    const std::string_view line = text.substr(begin, end - begin);
    begin = end + 1;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    const json row = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!row.is_object() || !row.contains("path") || !row.contains("reason") || !row["path"].is_string() ||
        !row["reason"].is_string()) {
      throw CorruptionError(uri + ": line " + std::to_string(line_no) + " is not a {\"path\",\"reason\"} object");
    }
    rows.push_back({row["path"].get<std::string>(), row["reason"].get<std::string>()});
  }
  return rows;
}

void DatasetCounts::WriteTo(json& run) const {
  run["images"] = images;
  run["rejected"] = rejected;
  run["listed"] = listed;
  run["shards_total"] = shards;
  run["failed"] = failed;
  run["labels"] = labels;
}

DatasetCounts CountDataset(const DatasetPlan& plan, const std::vector<ShardRecord>& records,
                           const std::vector<Rejection>& rejected) {
  DatasetCounts c;
  std::int64_t in_records = 0;
  for (const auto& r : records) {
    c.images += r.rows;
    in_records += static_cast<std::int64_t>(r.rejected.size());
    for (const auto& x : r.rejected) c.failed += x.reason != kErasedReason;
  }
  c.shards = static_cast<std::int64_t>(records.size());
  c.rejected = static_cast<std::int64_t>(rejected.size());
  c.listed = static_cast<std::int64_t>(plan.num_images()) + (c.rejected - in_records);
  std::set<std::string> rejected_paths;
  for (const auto& r : rejected) rejected_paths.insert(r.path);
  for (const auto& s : plan.shards) {
    for (const auto& img : s.images) {
      if (!rejected_paths.count(storage::JoinKey(plan.source, img.key))) ++c.labels[img.label];
    }
  }
  return c;
}

}  // namespace fruitpipe::dataset
