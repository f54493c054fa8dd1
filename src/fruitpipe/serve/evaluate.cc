#include "fruitpipe/serve/evaluate.h"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <thread>

#include "fruitpipe/classify/metrics.h"
#include "fruitpipe/common/env_vars.h"
#include "fruitpipe/common/error.h"
#include "fruitpipe/dataset/layout.h"
#include "fruitpipe/serve/model_dir.h"

namespace fruitpipe::serve {
namespace {

using nlohmann::json;

struct Photo {
  std::string path;
  std::string label;  // "" for an off-topic photo
  bool offtopic = false;
};

bool HasImageExtension(const std::filesystem::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".webp" || ext == ".bmp";
}

classify::Prediction ToPrediction(const Identification& r) {
  classify::Prediction p;
  p.label = r.closest;
  p.confidence = r.confidence;
  p.species = r.species;
  p.species_confidence = r.species_confidence;
  p.unknown = r.unknown;
  for (const auto& t : r.top5) p.top.push_back({t.label, t.probability});
  return p;
}

}  // namespace

json EvaluateModel(Identifier& identifier, const EvaluateOptions& o) {
  if (o.dataset.empty() && o.offtopic_dir.empty()) {
    throw InvalidArgumentError("evaluate: give a dataset, an off-topic folder (--offtopic DIR), or both");
  }
  std::vector<Photo> photos;
  std::unique_ptr<storage::Storage> dataset;
  if (!o.dataset.empty()) {
    dataset = storage::OpenStorage(o.dataset, o.storage);
    const ResultsDataset d = LoadResultsDataset(*dataset);
    for (const auto& r : d.rows.rows) photos.push_back({r.path, r.label, false});
  }
  std::int64_t offtopic_total = 0;
  if (!o.offtopic_dir.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_directory(o.offtopic_dir, ec)) {
      throw InvalidArgumentError(o.offtopic_dir + ": not a folder (--offtopic wants a folder of photos)");
    }
    std::vector<std::string> files;
    for (const auto& entry : std::filesystem::directory_iterator(o.offtopic_dir)) {
      if (entry.is_regular_file() && HasImageExtension(entry.path())) files.push_back(entry.path().string());
    }
    std::sort(files.begin(), files.end());
    if (files.empty()) throw InvalidArgumentError(o.offtopic_dir + ": holds no image files (.jpg, .jpeg, .png, .webp, .bmp)");
    offtopic_total = static_cast<std::int64_t>(files.size());
    for (auto& f : files) photos.push_back({std::move(f), "", true});
  }

  std::vector<Identification> answers(photos.size());
  std::vector<char> ok(photos.size(), 0);
  std::atomic<std::size_t> next{0};
  std::atomic<std::int64_t> done{0};
  const auto work = [&] {
    for (std::size_t i = next++; i < photos.size(); i = next++) {
      try {
        const IdentifyOutcome out = identifier.Identify(ReadSourcePhoto(photos[i].path, o.storage));
        if (out.ok) {
          answers[i] = out.result;
          ok[i] = 1;
        }
      } catch (const Error&) {
        // An unreadable source counts in "errors".
      }
      const std::int64_t n = ++done;
      if (o.progress) o.progress(n, static_cast<std::int64_t>(photos.size()));
    }
  };
  {
    std::vector<std::jthread> threads;
    for (int t = 1; t < identifier.workers(); ++t) threads.emplace_back(work);
    work();
  }

  std::vector<std::string> truth;
  std::vector<classify::Prediction> predictions;
  std::int64_t errors = 0, offtopic_flagged = 0, offtopic_answered = 0;
  for (std::size_t i = 0; i < photos.size(); ++i) {
    if (!ok[i]) {
      ++errors;
      continue;
    }
    if (photos[i].offtopic) {
      ++offtopic_answered;
      offtopic_flagged += answers[i].unknown;
      continue;
    }
    truth.push_back(photos[i].label);
    predictions.push_back(ToPrediction(answers[i]));
  }
  const IdentifyModel& model = identifier.model();
  json ev = classify::Evaluate(model.classes(), truth, predictions, model.classifier.taxonomy());
  ev["model"] = {{"id", model.id}, {"uri", model.uri}};
  ev["dataset"] = dataset ? json(dataset->Uri("")) : json(nullptr);
  ev["rows"] = truth.size();
  ev["errors"] = errors;
  if (!o.offtopic_dir.empty()) {
    ev["offtopic"] = {{"folder", o.offtopic_dir},
                      {"images", offtopic_total},
                      {"flagged", offtopic_flagged},
                      {"flagged_rate", offtopic_answered == 0 ? json(nullptr)
                                                              : json(static_cast<double>(offtopic_flagged) /
                                                                     static_cast<double>(offtopic_answered))}};
  }
  if (dataset) dataset->Put(dataset::kEvaluationKey, ev.dump(2) + "\n");
  return ev;
}

}  // namespace fruitpipe::serve
