// MODEL_DIR: what `fruitpipe train` writes and `evaluate`, `predict` and `serve` read (local
// folder or s3://). See docs/serving.md.
//
//   model.json          manifest: format, id, feature model reference, PCA reference, training
//                       figures, the list of files
//   pca_model.bin       the Training run's PCA model (canonical serialization)
//   classifier.json     } classify::FruitIdentifier::Serialize (weights, standardization,
//   classifier.weights  }   classes, unknown-detector thresholds)
//
// Nothing in it depends on the clock or on the number of threads: the same Training dataset
// gives the same bytes.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fruitpipe/classify/identifier.h"
#include "fruitpipe/pca/pca.h"
#include "fruitpipe/pipeline/results.h"
#include "fruitpipe/storage/storage.h"

namespace fruitpipe::serve {

inline constexpr char kModelManifestKey[] = "model.json";
inline constexpr char kModelPcaKey[] = "pca_model.bin";
inline constexpr char kModelFormat[] = "fruitpipe-identifier/1";
inline constexpr char kEvaluationKey[] = "evaluation.json";  // in the Test dataset

// The featurizer whose features the classifier was trained on (from the Training run.json).
struct FeatureModelRef {
  std::string name;
  std::string sha256;      // of the ONNX file
  std::string card;        // card path the Training run used (a hint: may not exist here)
  std::string backend;     // onednn | opencv
  std::string precision;   // fp32 | int8
  int input_size = 0;
  int dim = 0;

  nlohmann::json ToJson() const;
  static FeatureModelRef FromJson(const nlohmann::json& j);
};

struct IdentifyModel {
  std::string uri;                     // MODEL_DIR as given
  std::string id;                      // "<feature model>-<12 hex of the classifier files' sha256>"
  FeatureModelRef feature_model;
  pca::PcaModel pca;
  std::string pca_sha256;              // of pca_model.bin
  classify::FruitIdentifier classifier;
  nlohmann::json manifest;

  const std::vector<std::string>& classes() const { return classifier.classes(); }
  // One feature vector (feature_model.dim floats) -> PCA -> classifier.
  classify::Prediction PredictFeatures(const float* features) const;
};

// The rows of a finished dataset's Results_PCA/, checked to belong to its _pca_model.bin.
struct PcaDataset {
  std::string uri;
  std::string pca_bytes;               // canonical serialization of _pca_model.bin
  std::string pca_sha256;              // of pca_bytes
  nlohmann::json run;                  // run.json
  pipeline::PcaBatch rows;             // every part, in part (shard) order
};

// Throws InvalidArgumentError naming the dataset when it is unfinished (no _SUCCESS), has no
// PCA stage, or holds parts of another PCA model; CorruptionError on unreadable files.
PcaDataset LoadPcaDataset(storage::Storage& dataset);

struct TrainSummary {
  nlohmann::json manifest;
  std::int64_t rows = 0;
  int classes = 0;
  int k = 0;
  double load_seconds = 0;
  double fit_seconds = 0;
};

// Reads the Training dataset at `train_uri`, trains, and writes MODEL_DIR at `model_dir`.
TrainSummary TrainModel(const std::string& train_uri, const std::string& model_dir,
                        const storage::StorageOptions& storage_options,
                        const classify::IdentifierOptions& options = {});

// Throws NotFoundError / CorruptionError naming the model directory.
IdentifyModel LoadIdentifyModel(const std::string& model_dir, const storage::StorageOptions& storage_options);

// Evaluates the model on a Test dataset transformed with the Training PCA: refuses
// (InvalidArgumentError) a dataset transformed with another PCA model. Writes
// evaluation.json into the dataset and returns it (classify::Evaluate's keys plus "model",
// "dataset", "rows").
nlohmann::json EvaluateModel(const IdentifyModel& model, storage::Storage& test_dataset);

}  // namespace fruitpipe::serve
