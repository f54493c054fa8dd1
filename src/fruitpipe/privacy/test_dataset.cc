#include "fruitpipe/privacy/test_dataset.h"

#include <random>

#include <nlohmann/json.hpp>

#include "fruitpipe/common/hash.h"
#include "fruitpipe/parquet/parquet.h"
#include "fruitpipe/dataset/dataset.h"

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
  dataset::DatasetPlan plan;
  plan.source = spec.source;
  plan.shard_size = spec.shard_size;
  plan.model = {{"name", "synthetic"}, {"sha256", std::string(64, '0')}, {"input_size", 224}, {"precision", "fp32"}};
  std::vector<dataset::ShardRecord> records;
  std::vector<pca::PcaStats> stats;
  std::vector<dataset::Rejection> all_rejected = spec.list_rejects;
  for (std::size_t start = 0, index = 0; start < spec.photos.size(); start += spec.shard_size, ++index) {
    const std::size_t end = std::min(spec.photos.size(), start + static_cast<std::size_t>(spec.shard_size));
    dataset::ShardPlan shard;
    shard.index = static_cast<int>(index);
    shard.run_id = run_id;
    dataset::ShardRecord rec;
    rec.index = shard.index;
    rec.run_id = run_id;
    rec.part_key = dataset::ResultsPartKey(rec.index, run_id, parquet::Compression::kSnappy);
    rec.stats_key = dataset::StatsKey(rec.index);
    rec.timing = {{"worker", "local"}};
    dataset::FeatureBatch batch;
    batch.dim = spec.dim;
    for (std::size_t i = start; i < end; ++i) {
      const Photo& p = spec.photos[i];
      shard.images.push_back({p.key, p.label, 1000 + i, p.subject});
      const std::string uri = storage::JoinKey(spec.source, p.key);
      if (!p.rejected_reason.empty()) {
        rec.rejected.push_back({uri, p.rejected_reason});
        continue;
      }
      batch.rows.push_back({uri, p.label, Sha256Hex(p.key), 100, 100, p.subject});
      const auto v = FeatureOf(p.key, p.label, spec.dim);
      batch.vectors.insert(batch.vectors.end(), v.begin(), v.end());
    }
    plan.shards.push_back(std::move(shard));
    pca::PcaStats s(spec.dim);
    if (!batch.rows.empty()) s.AddBatch(batch.vectors.data(), static_cast<int>(batch.rows.size()));
    rec.rows = static_cast<std::int64_t>(batch.rows.size());
    dataset::CommitShard(out, rec, parquet::WriteParquet(dataset::ResultsTable(batch)), s.Serialize());
    all_rejected.insert(all_rejected.end(), rec.rejected.begin(), rec.rejected.end());
    records.push_back(rec);
    stats.push_back(std::move(s));
  }
  dataset::StorePlan(out, plan);

  pca::PcaFitOptions fit;
  fit.k = spec.pca_k;
  const pca::PcaModel model =
      spec.applied_model.empty() ? pca::FitPca(pca::MergeInOrder(stats), fit) : pca::PcaModel::Deserialize(spec.applied_model);
  const std::string model_id = dataset::StorePcaModel(out, model.Serialize());
  json timeline = json::array();
  for (const auto& rec : records) {
    dataset::WritePcaPart(out, rec, model, model_id, parquet::Compression::kSnappy);
    timeline.push_back({{"shard", rec.index}, {"rows", rec.rows}, {"rejected", rec.rejected.size()}});
  }
  out.Put(dataset::kRejectedKey, dataset::RejectedJsonl(all_rejected));
  json run = {{"command", "run"},
              {"shard_timeline", timeline},
              {"pca", dataset::PcaSummary(model, model_id, spec.fitted, spec.fitted ? "fit" : "/elsewhere/Training")}};
  dataset::CountDataset(plan, records, all_rejected).WriteTo(run);
  out.Put(dataset::kRunJsonKey, run.dump(2));
  out.Put(dataset::kSuccessKey, "");
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
  for (const auto& rec : dataset::LoadShardRecords(out)) AddRows(dataset::ParseResults(out.Get(rec.part_key)), &rows);
  return rows;
}

std::map<std::string, Row> PcaRows(storage::Storage& out) {
  std::map<std::string, Row> rows;
  const auto model = out.GetIfExists(dataset::kPcaModelKey);
  if (!model) return rows;
  const std::string id = dataset::ContentId(*model);
  for (const auto& obj : out.List(std::string(dataset::kResultsPcaDir) + "/")) {
    if (!dataset::IsPartOfModel(obj.key, id)) continue;
    AddRows(dataset::ParseResultsPca(out.Get(obj.key)), &rows);
  }
  return rows;
}

std::map<int, pca::PcaStats> ShardStats(storage::Storage& out) {
  std::map<int, pca::PcaStats> stats;
  for (const auto& rec : dataset::LoadShardRecords(out)) {
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
