#include "fruitpipe/privacy/test_dataset.h"

#include <random>

#include <nlohmann/json.hpp>

#include "fruitpipe/common/hash.h"
#include "fruitpipe/parquet/parquet.h"
#include "fruitpipe/pipeline/dataset.h"

namespace fruitpipe::privacy::testdata {

using nlohmann::json;

std::string ContribKey(const std::string& label, const std::string& subject, int n) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016x", n);
  return label + "/contrib-" + subject + "-" + hex + ".jpg";
}

std::vector<float> FeatureOf(const std::string& key, const std::string& label, int dim) {
  const Sha256Digest k = Sha256(key), l = Sha256(label);
  std::mt19937 rng(static_cast<std::uint32_t>(k[0] | (k[1] << 8) | (k[2] << 16) | (k[3] << 24)));
  std::normal_distribution<float> noise(0.0f, 1.0f);
  std::vector<float> v(static_cast<std::size_t>(dim));
  for (int i = 0; i < dim; ++i) v[i] = 2.0f + 3.0f * (l[i % 32] / 255.0f) + noise(rng);  // ReLU-like features
  return v;
}

std::vector<Photo> MixedPhotos(const std::vector<std::string>& subjects, int labels, int per_label) {
  std::vector<Photo> photos;
  int n = 0;
  for (int l = 0; l < labels; ++l) {
    const std::string label = "Fruit " + std::to_string(l);
    for (int i = 0; i < per_label; ++i, ++n) {
      if (!subjects.empty() && i % 3 != 0) {
        const std::string& s = subjects[static_cast<std::size_t>(n) % subjects.size()];
        photos.push_back({ContribKey(label, s, n), label, s, ""});
      } else {
        photos.push_back({label + "/" + std::to_string(n) + "_100.jpg", label, std::nullopt, ""});
      }
    }
  }
  std::sort(photos.begin(), photos.end(), [](const Photo& a, const Photo& b) { return a.key < b.key; });
  return photos;
}

void BuildDataset(storage::Storage& out, const DatasetSpec& spec) {
  const std::string run_id = "a1b2c3d4e5f6";
  json plan = {{"format", "fruitpipe-plan/1"},
               {"source", spec.source},
               {"shard_size", spec.shard_size},
               {"shards", json::array()},
               {"model", {{"name", "synthetic"}, {"sha256", std::string(64, '0')}, {"input_size", 224}, {"precision", "fp32"}}}};
  std::vector<pipeline::ShardRecord> records;
  std::vector<pipeline::FeatureBatch> batches;
  std::vector<pca::PcaStats> stats;
  std::vector<pipeline::Rejection> all_rejected = spec.list_rejects;
  std::map<std::string, std::int64_t> labels;
  for (std::size_t start = 0, index = 0; start < spec.photos.size(); start += spec.shard_size, ++index) {
    const std::size_t end = std::min(spec.photos.size(), start + static_cast<std::size_t>(spec.shard_size));
    json images = json::array();
    pipeline::ShardRecord rec;
    rec.index = static_cast<int>(index);
    rec.run_id = run_id;
    rec.part_key = pipeline::ResultsPartKey(rec.index, run_id);
    rec.stats_key = pipeline::StatsKey(rec.index);
    rec.timing = {{"worker", "local"}};
    pipeline::FeatureBatch batch;
    batch.dim = spec.dim;
    for (std::size_t i = start; i < end; ++i) {
      const Photo& p = spec.photos[i];
      images.push_back({p.key, p.label, 1000 + i});
      const std::string uri = storage::JoinKey(spec.source, p.key);
      if (!p.rejected_reason.empty()) {
        rec.rejected.push_back({uri, p.rejected_reason});
        continue;
      }
      ++labels[p.label];
      batch.rows.push_back({uri, p.label, Sha256Hex(p.key), 100, 100, p.subject});
      const auto v = FeatureOf(p.key, p.label, spec.dim);
      batch.vectors.insert(batch.vectors.end(), v.begin(), v.end());
    }
    plan["shards"].push_back({{"index", rec.index}, {"run_id", run_id}, {"images", images}});
    pca::PcaStats s(spec.dim);
    if (!batch.rows.empty()) s.AddBatch(batch.vectors.data(), static_cast<int>(batch.rows.size()));
    rec.rows = static_cast<std::int64_t>(batch.rows.size());
    pipeline::CommitShard(out, rec, parquet::WriteParquet(pipeline::ResultsTable(batch)), s.Serialize());
    all_rejected.insert(all_rejected.end(), rec.rejected.begin(), rec.rejected.end());
    records.push_back(rec);
    batches.push_back(std::move(batch));
    stats.push_back(std::move(s));
  }
  out.Put(pipeline::kPlanKey, plan.dump());

  pca::PcaFitOptions fit;
  fit.k = spec.pca_k;
  const pca::PcaModel model = pca::FitPca(pca::MergeInOrder(stats), fit);
  const std::string model_bytes = model.Serialize();
  const std::string model_id = Sha256Hex(model_bytes).substr(0, 12);
  out.Put(pipeline::kPcaModelKey, model_bytes);
  out.Put(pipeline::kPcaModelJsonKey, model.ToJson());
  json timeline = json::array();
  std::int64_t rows = 0;
  for (std::size_t i = 0; i < records.size(); ++i) {
    pipeline::PcaBatch projected;
    projected.dim = model.k;
    projected.rows = batches[i].rows;
    projected.vectors.resize(projected.rows.size() * static_cast<std::size_t>(model.k));
    if (!projected.rows.empty()) {
      model.TransformBatch(batches[i].vectors.data(), static_cast<int>(projected.rows.size()), projected.vectors.data());
    }
    out.Put(pipeline::ResultsPcaPartKey(records[i].index, model_id),
            parquet::WriteParquet(pipeline::ResultsPcaTable(projected)));
    timeline.push_back({{"shard", records[i].index}, {"rows", records[i].rows}, {"rejected", records[i].rejected.size()}});
    rows += records[i].rows;
  }
  std::string rejected_text;
  for (const auto& r : all_rejected) rejected_text += json{{"path", r.path}, {"reason", r.reason}}.dump() + "\n";
  out.Put(pipeline::kRejectedKey, rejected_text);
  json pca = json::parse(model.ToJson());
  pca["fitted"] = spec.fitted;
  pca["model_id"] = model_id;
  pca["source"] = spec.fitted ? "fit" : "/elsewhere/Training";
  const json run = {{"command", "run"},
                    {"images", rows},
                    {"rejected", all_rejected.size()},
                    {"listed", spec.photos.size() + spec.list_rejects.size()},
                    {"labels", labels},
                    {"shards_total", records.size()},
                    {"shard_timeline", timeline},
                    {"pca", pca}};
  out.Put(pipeline::kRunJsonKey, run.dump(2));
  out.Put(pipeline::kSuccessKey, "");
}

bool operator==(const Row& a, const Row& b) {
  return a.row.path == b.row.path && a.row.label == b.row.label && a.row.image_sha256 == b.row.image_sha256 &&
         a.row.width == b.row.width && a.row.height == b.row.height && a.row.subject_id == b.row.subject_id &&
         a.values == b.values;
}

namespace {

template <typename Batch>
void AddRows(const Batch& batch, std::map<std::string, Row>* out) {
  for (std::size_t i = 0; i < batch.rows.size(); ++i) {
    Row r{batch.rows[i], {}};
    const auto* v = batch.vectors.data() + i * static_cast<std::size_t>(batch.dim);
    r.values.assign(v, v + batch.dim);
    (*out)[r.row.path] = std::move(r);
  }
}

}  // namespace

std::map<std::string, Row> CommittedRows(storage::Storage& out) {
  std::map<std::string, Row> rows;
  for (const auto& rec : pipeline::LoadShardRecords(out)) AddRows(pipeline::ParseResults(out.Get(rec.part_key)), &rows);
  return rows;
}

std::map<std::string, Row> PcaRows(storage::Storage& out) {
  std::map<std::string, Row> rows;
  const auto model = out.GetIfExists(pipeline::kPcaModelKey);
  if (!model) return rows;
  const std::string id = Sha256Hex(*model).substr(0, 12);
  for (const auto& obj : out.List(std::string(pipeline::kResultsPcaDir) + "/")) {
    if (obj.key.find("-" + id + ".") == std::string::npos) continue;
    AddRows(pipeline::ParseResultsPca(out.Get(obj.key)), &rows);
  }
  return rows;
}

std::map<int, pca::PcaStats> ShardStats(storage::Storage& out) {
  std::map<int, pca::PcaStats> stats;
  for (const auto& rec : pipeline::LoadShardRecords(out)) {
    stats[rec.index] = pca::PcaStats::Deserialize(out.Get(rec.stats_key), rec.stats_key);
  }
  return stats;
}

std::map<std::string, std::string> Snapshot(storage::Storage& store) {
  std::map<std::string, std::string> all;
  for (const auto& obj : store.List("")) all[obj.key] = store.Get(obj.key);
  return all;
}

}  // namespace fruitpipe::privacy::testdata
