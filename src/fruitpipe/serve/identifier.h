// Identifying the fruit in one photo: decode -> views (the whole image first, exactly the path
// the training runs' features took) -> preprocess -> featurize as one batch -> classifier ->
// unknown check. Loaded once; Identify is thread-safe and runs
// up to `workers` images at once, each on its own featurizer instance with one thread.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "fruitpipe/image/decode.h"
#include "fruitpipe/model/featurizer.h"
#include "fruitpipe/serve/model_dir.h"
#include "fruitpipe/storage/storage.h"

namespace fruitpipe::serve {

// Rejection categories: fixed strings, used as metrics labels and in JSON errors.
inline constexpr char kRejectEmpty[] = "empty_body";
inline constexpr char kRejectTooLarge[] = "body_too_large";
inline constexpr char kRejectNotImage[] = "not_an_image";
inline constexpr char kRejectUnsupportedFormat[] = "unsupported_format";
inline constexpr char kRejectTooManyPixels[] = "too_many_pixels";
inline constexpr char kRejectTooSmall[] = "too_small";
inline constexpr char kRejectCorrupt[] = "corrupt_image";
inline constexpr char kRejectBusy[] = "busy";

struct IdentifierOptions {
  // Feature model card; empty: the card MODEL_DIR records, else $FRUITPIPE_MODEL. Its sha256
  // must be the one the Training run used.
  std::string model_card;
  std::string backend;              // empty: the backend the Training run used
  std::string calibration_dir;      // int8 feature models only
  int workers = 0;                  // concurrent identifications; 0: all cores
  image::DecodeLimits limits{20u << 20, 25'000'000, 1};  // bytes, pixels, min side
};

struct LabelProbability {
  std::string label;
  double probability = 0;
};

struct Identification {
  std::string label;           // a known class, or "unknown"
  std::string closest;         // the most likely known class (== label unless unknown)
  double confidence = 0;       // its probability
  std::string species;         // the most likely species ("Apple"), from the model's taxonomy
  double species_confidence = 0;
  bool variety_uncertain = false;  // sure of the species, not of the variety (label)
  bool unknown = false;
  std::string reason;          // why the answer is "unknown"; empty otherwise
  std::vector<LabelProbability> top5;
  double latency_ms = 0;       // decode to answer, excluding the wait for a worker
};

// The answer's JSON, the same from `predict --json` and `/v1/identify`: label, closest,
// confidence, species, species_confidence, variety_uncertain, unknown, reason (when unknown),
// top5, latency_ms.
nlohmann::json IdentificationJson(const Identification& r);

// Identification or the reason the input was refused (not an error of the service).
struct IdentifyOutcome {
  bool ok = false;
  std::string category;  // one of kReject*, set when !ok
  std::string reason;    // one line for the client, set when !ok
  Identification result;
};

class Identifier {
 public:
  using Clock = std::chrono::steady_clock;

  // Loads MODEL_DIR and builds the featurizers. Throws (InvalidArgumentError, NotFoundError,
  // CorruptionError) naming the model directory or card on any mismatch.
  Identifier(const std::string& model_dir, const IdentifierOptions& options,
             const storage::StorageOptions& storage_options = {});
  ~Identifier();
  Identifier(const Identifier&) = delete;
  Identifier& operator=(const Identifier&) = delete;

  // Never throws on bad input: hostile bytes become a rejection. Waits for a free worker
  // until `deadline` (then rejects with kRejectBusy).
  IdentifyOutcome Identify(std::string_view bytes, Clock::time_point deadline = Clock::time_point::max());

  const IdentifyModel& model() const { return model_; }
  const std::string& feature_backend() const { return backend_; }
  int workers() const { return static_cast<int>(featurizers_.size()); }
  const image::DecodeLimits& limits() const { return limits_; }

 private:
  // A featurizer checked out of the pool for one identification.
  class Lease;
  model::Featurizer* Acquire(Clock::time_point deadline);
  void Release(model::Featurizer* f);

  IdentifyModel model_;
  image::DecodeLimits limits_;
  std::string backend_;
  std::vector<std::unique_ptr<model::Featurizer>> featurizers_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<model::Featurizer*> idle_;
};

}  // namespace fruitpipe::serve
