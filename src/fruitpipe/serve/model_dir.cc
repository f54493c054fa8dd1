#include "fruitpipe/serve/model_dir.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>

#include "fruitpipe/common/env_vars.h"
#include "fruitpipe/common/error.h"
#include "fruitpipe/common/time.h"
#include "fruitpipe/common/hash.h"
#include "fruitpipe/image/augment.h"
#include "fruitpipe/image/decode.h"
#include "fruitpipe/image/preprocess.h"
#include "fruitpipe/model/featurizer.h"
#include "fruitpipe/dataset/dataset.h"

namespace fruitpipe::serve {
namespace {

using nlohmann::json;


json ParseJson(const std::string& text, const std::string& where) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw CorruptionError(where + ": not valid JSON (" + e.what() + ")");
  }
}

// Provenance without making the bytes depend on how the path was spelled.
std::string CanonicalUri(const std::string& uri) {
  return storage::IsRemoteUri(uri) ? uri : std::filesystem::weakly_canonical(std::filesystem::absolute(uri)).string();
}

std::string FeatureCardPath(const TrainOptions& o, const FeatureModelRef& ref) {
  if (!o.feature_card.empty()) return o.feature_card;
  if (!ref.card.empty() && std::filesystem::exists(ref.card)) return ref.card;
  return model::ResolveModelCardPath("");
}

// "" when no prior is to be used.
std::string ImagenetCardPath(const TrainOptions& o, const std::string& feature_card) {
  if (o.imagenet_card == "none") return "";
  if (!o.imagenet_card.empty()) return o.imagenet_card;
  if (const char* env = std::getenv("FRUITPIPE_IMAGENET_MODEL"); env != nullptr && *env != '\0') {
    return std::string(env) == "none" ? "" : env;
  }
  const auto beside = std::filesystem::path(feature_card).parent_path() / "mobilenet_v2_imagenet.json";
  return std::filesystem::exists(beside) ? beside.string() : "";
}

classify::ImagenetPrior LoadPrior(const std::string& card_path, const model::ModelCard& features) {
  const model::LinearHead head = model::LoadLinearHead(model::LoadModelCard(card_path), features);
  if (head.outputs != 1000) {
    throw InvalidArgumentError(card_path + ": an ImageNet-1k head has 1000 outputs, this one " +
                               std::to_string(head.outputs));
  }
  classify::ImagenetPrior prior;
  prior.head.resize(head.inputs + 1, head.outputs);
  for (int o = 0; o < head.outputs; ++o) {
    for (int i = 0; i < head.inputs; ++i) prior.head(i, o) = head.weights[static_cast<std::size_t>(o) * head.inputs + i];
    prior.head(head.inputs, o) = head.bias[static_cast<std::size_t>(o)];
  }
  return prior;
}

// The photos of a dataset whose extra views are learnt: `count` spread evenly over the rows.
std::vector<std::size_t> AugmentedRows(std::size_t rows, int count) {
  std::vector<std::size_t> out;
  if (count <= 0 || rows == 0) return out;
  const std::size_t n = std::min<std::size_t>(rows, static_cast<std::size_t>(count));
  for (std::size_t k = 0; k < n; ++k) out.push_back(k * rows / n);
  return out;
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

ResultsDataset LoadResultsDataset(storage::Storage& out) {
  ResultsDataset d;
  d.uri = out.Uri("");
  d.erasure_epoch = dataset::LoadErasureRecord(out).epoch;
  if (!out.Exists(dataset::kSuccessKey)) {
    throw InvalidArgumentError(d.uri + ": no _SUCCESS: not a finished fruitpipe run (finish it with --resume)");
  }
  const auto run = out.GetIfExists(dataset::kRunJsonKey);
  if (!run) throw InvalidArgumentError(d.uri + ": no run.json: not a fruitpipe run");
  d.run = ParseJson(*run, out.Uri(dataset::kRunJsonKey));
  if (!d.run.contains("model")) throw InvalidArgumentError(d.uri + ": run.json does not name the feature model");
  try {
    d.feature_model = FeatureModelRef::FromJson(d.run["model"]);
  } catch (const json::exception& e) {
    throw CorruptionError(out.Uri(dataset::kRunJsonKey) + ": model: " + e.what());
  }
  std::vector<std::string> keys;  // the committed parts, in shard order
  for (const auto& record : dataset::LoadShardRecords(out)) keys.push_back(record.part_key);
  if (keys.empty()) throw InvalidArgumentError(d.uri + ": no Results parts");
  Sha256Hasher hasher;
  d.rows.dim = d.feature_model.dim;
  for (const auto& key : keys) {
    const std::string bytes = out.Get(key);
    hasher.Update(key + "\n" + std::to_string(bytes.size()) + "\n");
    hasher.Update(bytes);
    dataset::FeatureBatch part;
    try {
      part = dataset::ParseResults(bytes);
    } catch (const Error& e) {
      throw CorruptionError(out.Uri(key) + ": " + e.what());
    }
    if (!part.rows.empty() && part.dim != d.rows.dim) {
      throw CorruptionError(out.Uri(key) + ": features of " + std::to_string(part.dim) + " values, run.json says " +
                            std::to_string(d.rows.dim));
    }
    d.rows.rows.insert(d.rows.rows.end(), std::make_move_iterator(part.rows.begin()),
                       std::make_move_iterator(part.rows.end()));
    d.rows.vectors.insert(d.rows.vectors.end(), part.vectors.begin(), part.vectors.end());
  }
  d.sha256 = hasher.FinishHex();
  if (d.run.contains("images") && d.run["images"].get<std::int64_t>() != static_cast<std::int64_t>(d.rows.rows.size())) {
    throw InvalidArgumentError(d.uri + ": run.json counts " + d.run["images"].dump() + " images but Results holds " +
                               std::to_string(d.rows.rows.size()) + " rows");
  }
  return d;
}

std::string ReadSourcePhoto(const std::string& path, const storage::StorageOptions& storage_options) {
  if (!storage::IsRemoteUri(path)) return ReadLocalFile(path);
  const auto slash = path.find_last_of('/');
  auto dir = storage::OpenStorage(path.substr(0, slash), storage_options);
  return dir->Get(path.substr(slash + 1));
}

TrainSummary TrainModel(const TrainOptions& o, const std::string& model_dir,
                        const storage::StorageOptions& storage_options) {
  if (o.datasets.empty()) throw InvalidArgumentError("train: no training dataset given");
  TrainSummary s;
  double t = MonotonicSeconds();

  // Read: every dataset must come from the same feature model.
  std::vector<ResultsDataset> sets;
  std::vector<bool> negative;
  for (const auto* list : {&o.datasets, &o.negatives}) {
    for (const std::string& uri : *list) {
      auto dataset = storage::OpenStorage(uri, storage_options);
      sets.push_back(LoadResultsDataset(*dataset));
      sets.back().uri = CanonicalUri(uri);
      negative.push_back(list == &o.negatives);
      const FeatureModelRef& first = sets.front().feature_model;
      const FeatureModelRef& ref = sets.back().feature_model;
      if (ref.sha256 != first.sha256 || ref.input_size != first.input_size || ref.precision != first.precision) {
        throw InvalidArgumentError(uri + ": features from " + ref.name + " (" + ref.sha256.substr(0, 12) + ", " +
                                   ref.precision + ", " + std::to_string(ref.input_size) + " px), " + sets.front().uri +
                                   " from " + first.name + " (" + first.sha256.substr(0, 12) + ", " + first.precision +
                                   ", " + std::to_string(first.input_size) + " px): train on runs of one feature model");
      }
    }
  }
  const FeatureModelRef feature_model = sets.front().feature_model;
  const int dim = feature_model.dim;
  s.read_seconds = MonotonicSeconds() - t;

  // Augment: the extra views of up to augment_images photos per dataset, featurized with the
  // datasets' own feature model.
  t = MonotonicSeconds();
  const std::string card_path = FeatureCardPath(o, feature_model);
  const model::ModelCard card = model::LoadModelCard(card_path);
  if (card.sha256 != feature_model.sha256) {
    throw InvalidArgumentError(card_path + ": model sha256 " + card.sha256.substr(0, 12) + " is not the one the datasets used (" +
                               feature_model.name + ", " + feature_model.sha256.substr(0, 12) + ")");
  }
  s.imagenet_card = ImagenetCardPath(o, card_path);
  classify::ImagenetPrior prior;
  if (!s.imagenet_card.empty()) prior = LoadPrior(s.imagenet_card, card);

  classify::TrainingSet train;
  train.dim = dim;
  std::vector<std::vector<std::size_t>> augmented(sets.size());
  std::int64_t to_augment = 0;
  for (std::size_t d = 0; d < sets.size(); ++d) {
    augmented[d] = AugmentedRows(sets[d].rows.rows.size(), o.augment_images);
    to_augment += static_cast<std::int64_t>(augmented[d].size());
  }
  std::unique_ptr<model::Featurizer> featurizer;
  if (to_augment > 0) {
    model::FeaturizerOptions f;
    f.backend = feature_model.backend.empty() ? "auto" : feature_model.backend;
    f.threads = o.threads;
    f.input_size = feature_model.input_size;
    f.precision = feature_model.precision;
    featurizer = model::CreateFeaturizer(card, f);
  }
  int photo = 0;
  std::int64_t done = 0;
  constexpr int kExtraViews = image::kViewCount - 1;
  std::vector<float> tensors, features(static_cast<std::size_t>(kExtraViews) * dim);
  for (std::size_t d = 0; d < sets.size(); ++d) {
    const dataset::FeatureBatch& b = sets[d].rows;
    std::size_t next_augmented = 0;
    for (std::size_t i = 0; i < b.rows.size(); ++i, ++photo) {
      const float* row = b.vectors.data() + i * static_cast<std::size_t>(dim);
      train.Add(row, b.rows[i].label, static_cast<int>(d), negative[d], photo, 0);
      if (next_augmented >= augmented[d].size() || augmented[d][next_augmented] != i) continue;
      ++next_augmented;
      image::DecodeOutcome decoded;
      try {
        decoded = image::DecodeImage(ReadSourcePhoto(b.rows[i].path, storage_options));
      } catch (const Error&) {
        decoded.ok = false;
      }
      if (o.progress) o.progress(++done, to_augment);
      if (!decoded.ok) {
        ++s.unreadable_sources;
        continue;
      }
      const image::PreprocessSpec& spec = featurizer->input_spec();
      tensors.resize(spec.TensorSize() * kExtraViews);
      for (int v = 1; v <= kExtraViews; ++v) {
        image::Preprocess(image::MakeView(decoded.image.rgb, static_cast<image::View>(v)), spec,
                          tensors.data() + spec.TensorSize() * static_cast<std::size_t>(v - 1));
      }
      featurizer->Run(tensors.data(), kExtraViews, features.data());
      for (int v = 1; v <= kExtraViews; ++v) {
        train.Add(features.data() + static_cast<std::size_t>(v - 1) * dim, b.rows[i].label, static_cast<int>(d),
                  negative[d], photo, v);
      }
      ++s.augmented_photos;
    }
  }
  s.photos = photo;
  s.augment_seconds = MonotonicSeconds() - t;

  t = MonotonicSeconds();
  classify::IdentifierOptions options = o.identifier;
  options.regression.threads = o.threads;
  classify::FruitIdentifier classifier =
      classify::FruitIdentifier::Train(train, classify::Taxonomy::Builtin(), prior, options);
  s.fit_seconds = MonotonicSeconds() - t;

  t = MonotonicSeconds();
  json lineage = json::array();
  for (std::size_t d = 0; d < sets.size(); ++d) {
    lineage.push_back({{"uri", sets[d].uri}, {"role", negative[d] ? "negatives" : "training"}, {"domain", d},
                       {"rows", sets[d].rows.rows.size()}, {"results_sha256", sets[d].sha256},
                       {"augmented_photos", augmented[d].size()}, {"erasure_epoch", sets[d].erasure_epoch}});
  }
  classifier.metadata()["lineage"] = lineage;
  std::map<std::string, std::string> files = classifier.Serialize();
  Sha256Hasher hasher;  // the id covers every file predictions depend on
  json file_list = json::array();
  for (const auto& [name, bytes] : files) {
    hasher.Update(name + "\n" + std::to_string(bytes.size()) + "\n");
    hasher.Update(bytes);
    file_list.push_back(name);
  }
  const json& meta = classifier.metadata();
  json manifest = {
      {"format", kModelFormat},
      {"id", feature_model.name + "-" + hasher.FinishHex().substr(0, 12)},
      {"classes", classifier.classes().size()},
      {"feature_model", feature_model.ToJson()},
      {"lineage", lineage},
      // What RetrainModel needs to train the same model again on the same (erased) datasets.
      {"train_options",
       {{"augment_images", o.augment_images},
        {"feature_card", CanonicalUri(card_path)},
        {"imagenet_card", s.imagenet_card.empty() ? "none" : CanonicalUri(s.imagenet_card)},
        {"l2", o.identifier.regression.l2},
        {"class_balance", o.identifier.class_balance},
        {"prior_weight", o.identifier.prior_weight}}},
      {"imagenet_prior", classifier.has_prior() ? json(std::filesystem::path(s.imagenet_card).filename().string()) : json(nullptr)},
      {"training",
       {{"rows", train.rows()},
        {"photos", s.photos},
        {"augmented_photos", s.augmented_photos},
        {"unreadable_sources", s.unreadable_sources},
        {"train_accuracy", meta.value("train_accuracy", 0.0)},
        {"calibration", meta.value("calibration", json::array())},
        {"min_confidence", classifier.detector().min_confidence}}},
      {"files", file_list},
  };
  auto out = storage::OpenStorage(model_dir, storage_options);
  for (const auto& [name, bytes] : files) out->Put(name, bytes);
  out->Put(kModelManifestKey, manifest.dump(2) + "\n");  // last: a model directory with a manifest is complete
  s.write_seconds = MonotonicSeconds() - t;

  s.manifest = std::move(manifest);
  s.rows = train.rows();
  s.classes = static_cast<int>(classifier.classes().size());
  return s;
}

TrainOptions RetrainOptions(const nlohmann::json& manifest, const std::string& where) {
  TrainOptions o;
  try {
    for (const auto& d : manifest.at("lineage")) {
      (d.at("role") == "negatives" ? o.negatives : o.datasets).push_back(d.at("uri").get<std::string>());
    }
    const json& t = manifest.at("train_options");
    o.augment_images = t.at("augment_images").get<int>();
    o.feature_card = t.at("feature_card").get<std::string>();
    o.imagenet_card = t.at("imagenet_card").get<std::string>();
    o.identifier.regression.l2 = t.at("l2").get<double>();
    o.identifier.class_balance = t.at("class_balance").get<double>();
    o.identifier.prior_weight = t.at("prior_weight").get<double>();
  } catch (const json::exception& e) {
    throw CorruptionError(where + ": cannot retrain from its manifest (" + e.what() + "); train it again by hand");
  }
  return o;
}

std::vector<std::string> StaleDatasets(const nlohmann::json& manifest, const storage::StorageOptions& storage_options) {
  std::vector<std::string> stale;
  for (const auto& d : manifest.value("lineage", json::array())) {
    const std::string uri = d.value("uri", "");
    std::int64_t now = 0;
    try {
      auto out = storage::OpenStorage(uri, storage_options);
      now = dataset::LoadErasureRecord(*out).epoch;
    } catch (const Error& e) {
      stale.push_back(uri + " (cannot check: " + e.what() + ")");
      continue;
    }
    if (now > d.value("erasure_epoch", std::int64_t{0})) stale.push_back(uri);
  }
  return stale;
}

bool WarnIfStale(const IdentifyModel& model, const storage::StorageOptions& storage_options) {
  const std::vector<std::string> stale = StaleDatasets(model.manifest, storage_options);
  for (const auto& uri : stale) {
    std::fprintf(stderr,
                 "fruitpipe: warning: model %s was trained on %s, which has been erased from since: retrain it "
                 "(fruitpipe forget --model-dir %s, or fruitpipe train)\n",
                 model.uri.c_str(), uri.c_str(), model.uri.c_str());
  }
  return !stale.empty();
}

IdentifyModel LoadIdentifyModel(const std::string& model_dir, const storage::StorageOptions& storage_options) {
  auto dir = storage::OpenStorage(model_dir, storage_options);
  IdentifyModel m;
  m.uri = model_dir;
  const std::string where = dir->Uri(kModelManifestKey);
  const auto manifest_text = dir->GetIfExists(kModelManifestKey);
  if (!manifest_text) throw NotFoundError(model_dir + ": no model.json: not a model directory (fruitpipe train writes one)");
  m.manifest = ParseJson(*manifest_text, where);
  std::map<std::string, std::string> files;
  try {
    if (m.manifest.at("format").get<std::string>() != kModelFormat) {
      throw CorruptionError(where + ": format is not " + std::string(kModelFormat) + " (retrain with fruitpipe train)");
    }
    m.id = m.manifest.at("id").get<std::string>();
    m.feature_model = FeatureModelRef::FromJson(m.manifest.at("feature_model"));
    for (const auto& name : m.manifest.at("files")) {
      const std::string n = name.get<std::string>();
      files[n] = dir->Get(n);
    }
  } catch (const json::exception& e) {
    throw CorruptionError(where + ": " + e.what());
  }
  m.classifier = classify::FruitIdentifier::Deserialize(files, model_dir);
  if (m.classifier.dim() != m.feature_model.dim) {
    throw CorruptionError(model_dir + ": classifier expects " + std::to_string(m.classifier.dim()) +
                          " features, the feature model gives " + std::to_string(m.feature_model.dim));
  }
  return m;
}

}  // namespace fruitpipe::serve
