#include "fruitpipe/serve/identifier.h"

#include <cstdio>
#include <exception>
#include <filesystem>
#include <thread>

#include "fruitpipe/common/error.h"
#include "fruitpipe/image/augment.h"
#include "fruitpipe/image/preprocess.h"
#include "fruitpipe/model/model_card.h"

namespace fruitpipe::serve {
namespace {

double Ms(Identifier::Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

std::string Fixed(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  return buf;
}

IdentifyOutcome Reject(const char* category, std::string reason) {
  IdentifyOutcome out;
  out.category = category;
  out.reason = std::move(reason);
  return out;
}

std::string CardPath(const IdentifierOptions& o, const FeatureModelRef& ref) {
  if (!o.model_card.empty()) return o.model_card;
  if (!ref.card.empty() && std::filesystem::exists(ref.card)) return ref.card;
  return model::ResolveModelCardPath("");
}

}  // namespace

// A featurizer checked out of the pool, returned on destruction.
class Identifier::Lease {
 public:
  Lease(Identifier* owner, model::Featurizer* f) : owner_(owner), f_(f) {}
  ~Lease() {
    if (f_) owner_->Release(f_);
  }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  model::Featurizer* get() const { return f_; }

 private:
  Identifier* owner_;
  model::Featurizer* f_;
};

Identifier::Identifier(const std::string& model_dir, const IdentifierOptions& o,
                       const storage::StorageOptions& storage_options)
    : model_(LoadIdentifyModel(model_dir, storage_options)), limits_(o.limits) {
  const FeatureModelRef& ref = model_.feature_model;
  const std::string card_path = CardPath(o, ref);
  const model::ModelCard card = model::LoadModelCard(card_path);
  if (card.sha256 != ref.sha256) {
    throw InvalidArgumentError(card_path + ": model sha256 " + card.sha256.substr(0, 12) + " is not the one " + model_dir +
                               " was trained on (" + ref.name + ", " + ref.sha256.substr(0, 12) + ")");
  }
  model::FeaturizerOptions f;
  f.backend = o.backend.empty() ? (ref.backend.empty() ? "auto" : ref.backend) : o.backend;
  f.threads = 1;  // concurrency comes from the workers, one request each
  f.input_size = ref.input_size;
  f.precision = ref.precision;
  f.calibration_dir = o.calibration_dir;
  const int workers = o.workers > 0 ? o.workers : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  for (int i = 0; i < workers; ++i) {
    featurizers_.push_back(model::CreateFeaturizer(card, f));
    if (featurizers_.back()->dim() != ref.dim) {
      throw InvalidArgumentError(card_path + ": featurizer gives " + std::to_string(featurizers_.back()->dim()) +
                                 " features, " + model_dir + " expects " + std::to_string(ref.dim));
    }
    idle_.push_back(featurizers_.back().get());
  }
  backend_ = featurizers_.front()->backend_name();
  // Engines build their primitives on the first Run; doing it now keeps that cost out of the
  // first requests. In parallel: startup with many workers stays short.
  std::vector<std::thread> warmups;
  std::vector<std::exception_ptr> errors(featurizers_.size());
  for (std::size_t i = 0; i < featurizers_.size(); ++i) {
    warmups.emplace_back([f = featurizers_[i].get(), error = &errors[i]] {
      try {
        std::vector<float> tensor(f->input_spec().TensorSize(), 0.0f), features(static_cast<std::size_t>(f->dim()));
        f->Run(tensor.data(), 1, features.data());
      } catch (...) {
        *error = std::current_exception();
      }
    });
  }
  for (auto& t : warmups) t.join();
  for (const auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

nlohmann::json IdentificationJson(const Identification& r) {
  nlohmann::json top5 = nlohmann::json::array();
  for (const auto& p : r.top5) top5.push_back({{"label", p.label}, {"probability", p.probability}});
  nlohmann::json j = {{"label", r.label},
                      {"closest", r.closest},
                      {"confidence", r.confidence},
                      {"species", r.species},
                      {"species_confidence", r.species_confidence},
                      {"variety_uncertain", r.variety_uncertain},
                      {"unknown", r.unknown},
                      {"top5", top5},
                      {"latency_ms", r.latency_ms}};
  if (r.unknown) j["reason"] = r.reason;
  return j;
}

Identifier::~Identifier() = default;

model::Featurizer* Identifier::Acquire(Clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_until(lock, deadline, [this] { return !idle_.empty(); })) return nullptr;
  model::Featurizer* f = idle_.back();
  idle_.pop_back();
  return f;
}

void Identifier::Release(model::Featurizer* f) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    idle_.push_back(f);
  }
  cv_.notify_one();
}

IdentifyOutcome Identifier::Identify(std::string_view bytes, Clock::time_point deadline) {
  if (bytes.empty()) return Reject(kRejectEmpty, "empty body: send the image bytes");
  if (bytes.size() > limits_.max_bytes) {
    return Reject(kRejectTooLarge, "image of " + std::to_string(bytes.size()) + " bytes exceeds the limit of " +
                                       std::to_string(limits_.max_bytes));
  }
  // The header alone decides the cheap refusals, before a worker or any pixel memory is used.
  image::HeaderInfo header;
  std::string reason;
  if (!image::ReadHeader(bytes, &header, &reason)) {
    return Reject(header.format.empty() ? kRejectNotImage : kRejectCorrupt, reason);
  }
  if (header.format == "gif" || header.format == "tiff") {
    return Reject(kRejectUnsupportedFormat, "unsupported format " + header.format + ": send JPEG or PNG");
  }
  const std::string dims = std::to_string(header.width) + "x" + std::to_string(header.height);
  if (std::int64_t{header.width} * header.height > limits_.max_pixels) {
    return Reject(kRejectTooManyPixels,
                  "declared " + dims + " pixels exceeds the limit of " + std::to_string(limits_.max_pixels));
  }
  if (header.width < limits_.min_side || header.height < limits_.min_side) {
    return Reject(kRejectTooSmall, "declared " + dims + " pixels is below the minimum side of " +
                                       std::to_string(limits_.min_side));
  }

  // Decoding runs inside the worker slot too: it bounds the pixel memory of concurrent
  // requests to workers × max_pixels, whatever the number of connections.
  Lease lease(this, Acquire(deadline));
  if (!lease.get()) {
    return Reject(kRejectBusy, "all " + std::to_string(workers()) + " workers stayed busy until the request timeout");
  }
  const Clock::time_point begin = Clock::now();
  image::DecodeOutcome decoded = image::DecodeImage(bytes, limits_);
  if (!decoded.ok) return Reject(kRejectCorrupt, decoded.reason);
  model::Featurizer& featurizer = *lease.get();
  const image::PreprocessSpec& spec = featurizer.input_spec();
  const int views = model_.classifier.predict_views();
  std::vector<float> tensor(spec.TensorSize() * static_cast<std::size_t>(views));
  for (int v = 0; v < views; ++v) {
    image::Preprocess(image::MakeView(decoded.image.rgb, static_cast<image::View>(v)), spec,
                      tensor.data() + spec.TensorSize() * static_cast<std::size_t>(v));
  }
  std::vector<float> features(static_cast<std::size_t>(featurizer.dim()) * static_cast<std::size_t>(views));
  featurizer.Run(tensor.data(), views, features.data());
  const classify::Prediction p = model_.classifier.Predict(features.data(), views);

  IdentifyOutcome out;
  out.ok = true;
  Identification& r = out.result;
  r.closest = p.label;
  r.unknown = p.unknown;
  r.label = p.unknown ? "unknown" : p.label;
  r.confidence = p.confidence;
  r.species = p.species;
  r.species_confidence = p.species_confidence;
  r.variety_uncertain = p.variety_uncertain;
  if (p.unknown) {
    // The classifier's reasons are codes; the client gets them spelled out with the figures.
    std::string why;
    const auto add = [&why](const std::string& part) { why += (why.empty() ? "" : "; ") + part; };
    if (p.unknown_reason.find("no_known_fruit") != std::string::npos) {
      add("looks like the photos of no known fruit (probability " + Fixed(p.no_fruit_probability) + ")");
    }
    if (p.unknown_reason.find("far_from_class") != std::string::npos) {
      add("far from the " + p.label + " photos seen in training (distance " + Fixed(p.distance) + " > " +
          Fixed(p.distance_threshold) + ")");
    }
    if (p.unknown_reason.find("low_confidence") != std::string::npos) {
      add("low confidence " + Fixed(p.species_confidence) + " < " + Fixed(model_.classifier.detector().min_confidence));
    }
    r.reason = why;
  }
  for (std::size_t i = 0; i < p.top.size() && i < 5; ++i) r.top5.push_back({p.top[i].label, p.top[i].probability});
  r.latency_ms = Ms(Clock::now() - begin);
  return out;
}

}  // namespace fruitpipe::serve
