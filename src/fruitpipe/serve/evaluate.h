// Evaluating a model on photos it has not been trained on, the way the app sees them: each
// photo's bytes are read back by the dataset's `path` and identified (all views, the unknown
// rules), so the figures are those of `predict` and `/v1/identify`.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "fruitpipe/serve/identifier.h"
#include "fruitpipe/storage/storage.h"

namespace fruitpipe::serve {

struct EvaluateOptions {
  std::string dataset;       // a finished run (labels from its folders); "" for none
  std::string offtopic_dir;  // a flat folder of photos of no fruit; "" for none
  storage::StorageOptions storage;
  std::function<void(std::int64_t, std::int64_t)> progress;  // (photos done, photos in all)
};

// classify::Evaluate's keys (top-1, top-5, species top-1, flagged rates, ECE, per-class
// recall, confusion) over the dataset, plus "offtopic" {images, flagged, flagged_rate},
// "errors" (photos that could not be read or identified), "model", "dataset", "rows". With a
// dataset, also written to DATASET/evaluation.json. Throws InvalidArgumentError when neither
// is given or a folder holds no photo.
nlohmann::json EvaluateModel(Identifier& identifier, const EvaluateOptions& options);

}  // namespace fruitpipe::serve
