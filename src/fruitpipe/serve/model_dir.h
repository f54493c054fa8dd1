// MODEL_DIR: what `fruitpipe train` writes and `evaluate`, `predict` and `serve` read (local
// folder or s3://). See docs/serving.md and docs/formats/classifier.md.
//
//   model.json              manifest: format, id, feature model reference, lineage (every
//                           training dataset), training figures, the list of files
//   classifier.json         } classify::FruitIdentifier::Serialize (weights, standardization,
//   classifier.weights      }   classes, species, unknown-detection thresholds)
//   imagenet_head.weights   the backbone's ImageNet head (the prior), when one was used
//   taxonomy.tsv            the taxonomy the species answers come from
//
// Nothing in it depends on the clock or on the number of threads: the same training datasets
// give the same bytes.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fruitpipe/classify/identifier.h"
#include "fruitpipe/dataset/results.h"
#include "fruitpipe/storage/storage.h"

namespace fruitpipe::serve {

inline constexpr char kModelManifestKey[] = "model.json";
inline constexpr char kModelFormat[] = "fruitpipe-identifier/2";

// The featurizer whose features the classifier was trained on (from the datasets' run.json).
struct FeatureModelRef {
  std::string name;
  std::string sha256;      // of the ONNX file
  std::string card;        // card path the run used (a hint: may not exist here)
  std::string backend;     // onednn | opencv
  std::string precision;   // fp32 | int8
  int input_size = 0;
  int dim = 0;

  nlohmann::json ToJson() const;
  static FeatureModelRef FromJson(const nlohmann::json& j);
};

struct IdentifyModel {
  std::string uri;                     // MODEL_DIR as given
  std::string id;                      // "<feature model>-<12 hex of the model files' sha256>"
  FeatureModelRef feature_model;
  classify::FruitIdentifier classifier;
  nlohmann::json manifest;

  const std::vector<std::string>& classes() const { return classifier.classes(); }
};

// The Results/ rows of a finished dataset (every part, in part order).
struct ResultsDataset {
  std::string uri;
  nlohmann::json run;                  // run.json
  FeatureModelRef feature_model;       // run.json's "model"
  dataset::FeatureBatch rows;
  std::string sha256;                  // over the parts' names and bytes: the lineage record
  std::int64_t erasure_epoch = 0;      // erasures that have changed it (dataset::ErasureRecord)
};

// Throws InvalidArgumentError naming the dataset when it is unfinished (no _SUCCESS), is not a
// fruitpipe run, or its row count differs from run.json; CorruptionError on unreadable parts.
ResultsDataset LoadResultsDataset(storage::Storage& dataset);

struct TrainOptions {
  std::vector<std::string> datasets;   // labelled: classes are the union of their labels
  std::vector<std::string> negatives;  // photos of no known fruit: labels ignored
  // The backbone's ImageNet classifier card for the prior: "" looks for
  // $FRUITPIPE_IMAGENET_MODEL, then mobilenet_v2_imagenet.json beside the feature card;
  // "none" trains without a prior.
  std::string imagenet_card;
  std::string feature_card;            // "": the card the datasets' run.json names, else $FRUITPIPE_MODEL
  int augment_images = 2048;           // photos per dataset whose extra views are learnt (0: none)
  int threads = 0;                     // optimiser and featurizer threads (0: all cores)
  classify::IdentifierOptions identifier;
  // Called during augmentation with (photos done, photos to do).
  std::function<void(std::int64_t, std::int64_t)> progress;
};

struct TrainSummary {
  nlohmann::json manifest;
  std::int64_t rows = 0;             // training rows, views included
  std::int64_t photos = 0;
  std::int64_t augmented_photos = 0;
  std::int64_t unreadable_sources = 0;  // photos whose source could not be read back (no views)
  int classes = 0;
  std::string imagenet_card;         // the prior's card, "" without a prior
  double read_seconds = 0;
  double augment_seconds = 0;
  double fit_seconds = 0;
  double write_seconds = 0;
};

// Reads the datasets, adds views of their photos, trains, and writes MODEL_DIR.
TrainSummary TrainModel(const TrainOptions& options, const std::string& model_dir,
                        const storage::StorageOptions& storage_options);

// The options that train the model of `manifest` (model.json) again, on the datasets of its
// lineage as they are now: `forget --model-dir` retrains with them, and the result is
// byte-identical to `fruitpipe train` with the same arguments on the erased datasets.
TrainOptions RetrainOptions(const nlohmann::json& manifest, const std::string& where);

// The lineage datasets erased from since the model was trained (its rows may hold a person's
// features who asked to be forgotten), or that cannot be checked (named with the reason).
std::vector<std::string> StaleDatasets(const nlohmann::json& manifest, const storage::StorageOptions& storage_options);
// Prints one warning line per stale dataset to stderr; returns whether there was any.
bool WarnIfStale(const IdentifyModel& model, const storage::StorageOptions& storage_options);

// Throws NotFoundError / CorruptionError naming the model directory.
IdentifyModel LoadIdentifyModel(const std::string& model_dir, const storage::StorageOptions& storage_options);

// The bytes of a photo by the `path` a dataset records (a local file or an object URI).
std::string ReadSourcePhoto(const std::string& path, const storage::StorageOptions& storage_options);

}  // namespace fruitpipe::serve
