#include "fruitpipe/serve/model_dir.h"

#include <chrono>
#include <filesystem>
#include <map>

#include "fruitpipe/classify/metrics.h"
#include "fruitpipe/common/error.h"
#include "fruitpipe/common/hash.h"
#include "fruitpipe/pipeline/dataset.h"

namespace fruitpipe::serve {
namespace {

using nlohmann::json;

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

json ParseJson(const std::string& text, const std::string& where) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw CorruptionError(where + ": not valid JSON (" + e.what() + ")");
  }
}

// "Results_PCA/part-00003-0123456789ab.snappy.parquet" -> "0123456789ab".
std::string PartModelId(const std::string& key) {
  const std::string name = key.substr(key.find_last_of('/') + 1);
  const auto dash = name.find('-', 5);
  const auto dot = name.find('.');
  if (name.rfind("part-", 0) != 0 || dash == std::string::npos || dot == std::string::npos || dot < dash) return "";
  return name.substr(dash + 1, dot - dash - 1);
}

}  // namespace

json FeatureModelRef::ToJson() const {
  return {{"name", name}, {"sha256", sha256},       {"card", card}, {"backend", backend},
          {"precision", precision}, {"input_size", input_size}, {"dim", dim}};
}

FeatureModelRef FeatureModelRef::FromJson(const json& j) {
  FeatureModelRef r;
  r.name = j.at("name").get<std::string>();
  r.sha256 = j.at("sha256").get<std::string>();
  r.card = j.value("card", "");
  r.backend = j.value("backend", "");
  r.precision = j.value("precision", "fp32");
  r.input_size = j.at("input_size").get<int>();
  r.dim = j.at("dim").get<int>();
  return r;
}

classify::Prediction IdentifyModel::PredictFeatures(const float* features) const {
  std::vector<double> z(static_cast<std::size_t>(pca.k));
  pca.Transform(features, z.data());
  return classifier.Predict(z.data());
}

PcaDataset LoadPcaDataset(storage::Storage& out) {
  PcaDataset d;
  d.uri = out.Uri("");
  if (!out.Exists(pipeline::kSuccessKey)) {
    throw InvalidArgumentError(d.uri + ": no _SUCCESS: not a finished fruitpipe run (finish it with --resume)");
  }
  const auto model_bytes = out.GetIfExists(pipeline::kPcaModelKey);
  if (!model_bytes) throw InvalidArgumentError(d.uri + ": no _pca_model.bin: the run had no PCA stage");
  // Canonical bytes: a model loaded and written again (--pca-model) compares equal to its source.
  d.pca_bytes = pca::PcaModel::Deserialize(*model_bytes, out.Uri(pipeline::kPcaModelKey)).Serialize();
  d.pca_sha256 = Sha256Hex(d.pca_bytes);
  const std::string stored_id = Sha256Hex(*model_bytes).substr(0, 12);
  if (auto run = out.GetIfExists(pipeline::kRunJsonKey)) {
    d.run = ParseJson(*run, out.Uri(pipeline::kRunJsonKey));
  } else {
    throw InvalidArgumentError(d.uri + ": no run.json: not a fruitpipe run");
  }

  std::vector<std::string> keys;
  for (const auto& obj : out.List(std::string(pipeline::kResultsPcaDir) + "/")) {
    if (obj.key.size() < 8 || obj.key.compare(obj.key.size() - 8, 8, ".parquet") != 0) continue;
    if (PartModelId(obj.key) != stored_id) {
      throw InvalidArgumentError(out.Uri(obj.key) + ": part of another PCA model than " +
                                 out.Uri(pipeline::kPcaModelKey) + " (" + stored_id + ")");
    }
    keys.push_back(obj.key);
  }
  if (keys.empty()) throw InvalidArgumentError(d.uri + ": no Results_PCA parts");
  for (const auto& key : keys) {
    pipeline::PcaBatch part;
    try {
      part = pipeline::ParseResultsPca(out.Get(key));
    } catch (const Error& e) {
      throw CorruptionError(out.Uri(key) + ": " + e.what());
    }
    if (d.rows.rows.empty()) d.rows.dim = part.dim;
    if (part.dim != d.rows.dim) {
      throw CorruptionError(out.Uri(key) + ": pcaFeatures of " + std::to_string(part.dim) + " values, other parts have " +
                            std::to_string(d.rows.dim));
    }
    d.rows.rows.insert(d.rows.rows.end(), std::make_move_iterator(part.rows.begin()),
                       std::make_move_iterator(part.rows.end()));
    d.rows.vectors.insert(d.rows.vectors.end(), part.vectors.begin(), part.vectors.end());
  }
  if (d.run.contains("images") && d.run["images"].get<std::int64_t>() != static_cast<std::int64_t>(d.rows.rows.size())) {
    throw InvalidArgumentError(d.uri + ": run.json counts " + d.run["images"].dump() + " images but Results_PCA holds " +
                               std::to_string(d.rows.rows.size()) + " rows");
  }
  return d;
}

TrainSummary TrainModel(const std::string& train_uri, const std::string& model_dir,
                        const storage::StorageOptions& storage_options, const classify::IdentifierOptions& options) {
  TrainSummary s;
  const double t0 = Now();
  auto train = storage::OpenStorage(train_uri, storage_options);
  PcaDataset d = LoadPcaDataset(*train);
  if (!d.run.contains("model")) throw InvalidArgumentError(d.uri + ": run.json does not name the feature model");
  const FeatureModelRef feature_model = FeatureModelRef::FromJson(d.run["model"]);
  const pca::PcaModel pca_model = pca::PcaModel::Deserialize(d.pca_bytes);
  if (pca_model.dim != feature_model.dim || pca_model.k != d.rows.dim) {
    throw InvalidArgumentError(d.uri + ": PCA model (" + std::to_string(pca_model.dim) + " -> " +
                               std::to_string(pca_model.k) + ") does not match the features (" +
                               std::to_string(feature_model.dim) + ") and pcaFeatures (" + std::to_string(d.rows.dim) + ")");
  }
  std::vector<std::string> labels;
  labels.reserve(d.rows.rows.size());
  for (const auto& r : d.rows.rows) labels.push_back(r.label);
  const double t1 = Now();

  classify::FruitIdentifier classifier = classify::FruitIdentifier::Train(
      d.rows.vectors.data(), static_cast<int>(labels.size()), d.rows.dim, labels, options);
  classifier.metadata()["pca_model_sha256"] = d.pca_sha256;
  // Provenance without making the bytes depend on how the path was spelled.
  const std::string source =
      storage::IsRemoteUri(train_uri) ? d.uri : std::filesystem::weakly_canonical(std::filesystem::absolute(train_uri)).string();
  classifier.metadata()["source"] = source;
  const double t2 = Now();

  std::map<std::string, std::string> files = classifier.Serialize();
  Sha256Hasher hasher;  // the id covers every file predictions depend on
  for (const auto& [name, bytes] : files) {
    hasher.Update(name + "\n" + std::to_string(bytes.size()) + "\n");
    hasher.Update(bytes);
  }
  hasher.Update(d.pca_bytes);
  json file_list = json::array();
  for (const auto& [name, bytes] : files) file_list.push_back(name);
  file_list.push_back(kModelPcaKey);
  const json& meta = classifier.metadata();
  json manifest = {
      {"format", kModelFormat},
      {"id", feature_model.name + "-" + hasher.FinishHex().substr(0, 12)},
      {"classes", classifier.classes().size()},
      {"feature_model", feature_model.ToJson()},
      {"pca", {{"file", kModelPcaKey}, {"sha256", d.pca_sha256}, {"dim", pca_model.dim}, {"k", pca_model.k}}},
      {"training",
       {{"source", source},
        {"rows", d.rows.rows.size()},
        {"train_accuracy", meta.value("train_accuracy", 0.0)},
        {"calibration_accuracy", meta.value("calibration_accuracy", 0.0)},
        {"min_confidence", classifier.detector().min_confidence}}},
      {"files", file_list},
  };

  auto out = storage::OpenStorage(model_dir, storage_options);
  for (const auto& [name, bytes] : files) out->Put(name, bytes);
  out->Put(kModelPcaKey, d.pca_bytes);
  out->Put(kModelManifestKey, manifest.dump(2) + "\n");  // last: a model directory with a manifest is complete

  s.manifest = std::move(manifest);
  s.rows = static_cast<std::int64_t>(labels.size());
  s.classes = static_cast<int>(classifier.classes().size());
  s.k = d.rows.dim;
  s.load_seconds = t1 - t0;
  s.fit_seconds = t2 - t1;
  return s;
}

IdentifyModel LoadIdentifyModel(const std::string& model_dir, const storage::StorageOptions& storage_options) {
  auto dir = storage::OpenStorage(model_dir, storage_options);
  IdentifyModel m;
  m.uri = model_dir;
  const std::string where = dir->Uri(kModelManifestKey);
  const auto manifest_text = dir->GetIfExists(kModelManifestKey);
  if (!manifest_text) throw NotFoundError(model_dir + ": no model.json: not a model directory (fruitpipe train writes one)");
  m.manifest = ParseJson(*manifest_text, where);
  try {
    if (m.manifest.at("format").get<std::string>() != kModelFormat) {
      throw CorruptionError(where + ": format is not " + std::string(kModelFormat));
    }
    m.id = m.manifest.at("id").get<std::string>();
    m.feature_model = FeatureModelRef::FromJson(m.manifest.at("feature_model"));
    m.pca_sha256 = m.manifest.at("pca").at("sha256").get<std::string>();
  } catch (const json::exception& e) {
    throw CorruptionError(where + ": " + e.what());
  }

  const std::string pca_bytes = dir->Get(kModelPcaKey);
  if (Sha256Hex(pca_bytes) != m.pca_sha256) {
    throw CorruptionError(dir->Uri(kModelPcaKey) + ": sha256 differs from model.json");
  }
  m.pca = pca::PcaModel::Deserialize(pca_bytes, dir->Uri(kModelPcaKey));

  std::map<std::string, std::string> files;
  for (const auto& name : m.manifest.at("files")) {
    const std::string n = name.get<std::string>();
    if (n != kModelPcaKey) files[n] = dir->Get(n);
  }
  m.classifier = classify::FruitIdentifier::Deserialize(files, model_dir);
  if (m.classifier.dim() != m.pca.k || m.pca.dim != m.feature_model.dim) {
    throw CorruptionError(model_dir + ": classifier expects " + std::to_string(m.classifier.dim()) +
                          " PCA features, the PCA model gives " + std::to_string(m.pca.k) + " from " +
                          std::to_string(m.pca.dim));
  }
  return m;
}

json EvaluateModel(const IdentifyModel& model, storage::Storage& test) {
  const PcaDataset d = LoadPcaDataset(test);
  if (d.pca_sha256 != model.pca_sha256) {
    throw InvalidArgumentError(d.uri + ": transformed with another PCA model (sha256 " + d.pca_sha256.substr(0, 12) +
                               ") than " + model.uri + " (" + model.pca_sha256.substr(0, 12) +
                               "): transform the Test run with --pca-model TRAIN_OUT");
  }
  std::vector<std::string> truth;
  std::vector<classify::Prediction> predictions;
  truth.reserve(d.rows.rows.size());
  predictions.reserve(d.rows.rows.size());
  for (std::size_t i = 0; i < d.rows.rows.size(); ++i) {
    truth.push_back(d.rows.rows[i].label);
    predictions.push_back(model.classifier.Predict(d.rows.vectors.data() + i * static_cast<std::size_t>(d.rows.dim)));
  }
  json ev = classify::Evaluate(model.classes(), truth, predictions);
  ev["model"] = {{"id", model.id}, {"uri", model.uri}};
  ev["dataset"] = d.uri;
  ev["rows"] = d.rows.rows.size();
  test.Put(kEvaluationKey, ev.dump(2) + "\n");
  return ev;
}

}  // namespace fruitpipe::serve
