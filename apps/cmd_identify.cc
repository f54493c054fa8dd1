// train, evaluate, predict: the fruit identifier (docs/serving.md, docs/formats/classifier.md).
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "options.h"
#include "fruitpipe/common/env_vars.h"
#include "fruitpipe/common/error.h"
#include "fruitpipe/pipeline/progress.h"
#include "fruitpipe/report/report.h"
#include "fruitpipe/common/time.h"
#include "fruitpipe/serve/evaluate.h"
#include "fruitpipe/serve/identifier.h"
#include "fruitpipe/serve/model_dir.h"

namespace fruitpipe::cli {
namespace {

using nlohmann::json;

struct TrainArgs {
  serve::TrainOptions train;
  std::string model_dir;
  storage::StorageOptions storage;
  bool quiet = false;
};

void Train(TrainArgs* a) {
  const double start = MonotonicSeconds();
  std::unique_ptr<pipeline::Progress> progress;
  a->train.progress = [&](std::int64_t done, std::int64_t total) {
    if (!progress) progress = std::make_unique<pipeline::Progress>("train: views of", total, !a->quiet);
    progress->Add(1);
    if (done == total) progress->Finish();
  };
  const serve::TrainSummary s = serve::TrainModel(a->train, a->model_dir, a->storage);
  const json& m = s.manifest;
  const json& t = m["training"];
  std::fprintf(stderr, "train: %zu dataset(s) + %zu negative -> %s\n", a->train.datasets.size(),
               a->train.negatives.size(), a->model_dir.c_str());
  for (const auto& d : m["lineage"]) {
    std::fprintf(stderr, "  %-9s %s (%lld photos, %lld with views)\n", d["role"].get<std::string>().c_str(),
                 d["uri"].get<std::string>().c_str(), static_cast<long long>(d["rows"].get<std::int64_t>()),
                 static_cast<long long>(d["augmented_photos"].get<std::int64_t>()));
  }
  std::fprintf(stderr, "  rows           %lld (%lld photos, %lld with extra views, %lld sources unreadable), %d classes\n",
               static_cast<long long>(s.rows), static_cast<long long>(s.photos), static_cast<long long>(s.augmented_photos),
               static_cast<long long>(s.unreadable_sources), s.classes);
  std::fprintf(stderr, "  time           %.2f s (read %.2f s, views %.2f s, fit %.2f s, write %.2f s)\n", MonotonicSeconds() - start,
               s.read_seconds, s.augment_seconds, s.fit_seconds, s.write_seconds);
  std::fprintf(stderr, "  prior          %s\n",
               s.imagenet_card.empty() ? "none (no ImageNet head card found or --imagenet-head none)"
                                       : s.imagenet_card.c_str());
  std::fprintf(stderr, "  train accuracy %.4f (fit rows)\n", t.value("train_accuracy", 0.0));
  for (const auto& c : t["calibration"]) {
    const auto rate = [](const json& v) { return v.is_null() ? std::string("n/a") : std::to_string(v.get<double>()).substr(0, 6); };
    std::fprintf(stderr, "  held out       dataset %d: %lld known photos, top-1 %s, flagged %s; negatives flagged %s\n",
                 c["domain"].get<int>(), static_cast<long long>(c["known_photos"].get<std::int64_t>()),
                 rate(c["accuracy"]).c_str(), rate(c["known_flagged"]).c_str(), rate(c["negative_flagged"]).c_str());
  }
  std::fprintf(stderr, "  unknown rule   species probability >= %.3f, near the class centroid%s\n",
               t.value("min_confidence", 0.0), a->train.negatives.empty() ? "" : ", more fruit than no-fruit");
  std::fprintf(stderr, "  model          %s (features: %s, %d px)\n", m["id"].get<std::string>().c_str(),
               m["feature_model"]["name"].get<std::string>().c_str(), m["feature_model"]["input_size"].get<int>());
}

std::string Rate(const json& v) {
  if (v.is_null()) return "n/a";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", v.get<double>());
  return buf;
}

struct EvaluateArgs {
  std::string model_dir;
  serve::EvaluateOptions evaluate;
  serve::IdentifierOptions identifier;
  int worst = 5;
  bool json_output = false;
  bool no_report = false;
  bool quiet = false;
};

void Evaluate(EvaluateArgs* a) {
  if (a->identifier.workers <= 0) a->identifier.workers = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  serve::Identifier identifier(a->model_dir, a->identifier, a->evaluate.storage);
  std::unique_ptr<pipeline::Progress> progress;
  std::mutex progress_mu;
  a->evaluate.progress = [&](std::int64_t done, std::int64_t total) {
    const std::lock_guard lock(progress_mu);
    if (!progress) progress = std::make_unique<pipeline::Progress>("evaluate", total, !a->quiet && !a->json_output);
    progress->Add(1);
    if (done == total) progress->Finish();
  };
  const json ev = serve::EvaluateModel(identifier, a->evaluate);
  std::string report_uri;
  if (!a->no_report && !a->evaluate.dataset.empty()) {
    auto dataset = storage::OpenStorage(a->evaluate.dataset, a->evaluate.storage);
    report_uri = report::WriteReport(*dataset);
  }
  if (ev["errors"].get<std::int64_t>() > 0) ExitCode() = kExitPartial;
  if (a->json_output) {
    std::cout << ev.dump(2) << std::endl;
    return;
  }
  std::fprintf(stderr, "evaluate: %s on %s\n", identifier.model().id.c_str(),
               a->evaluate.dataset.empty() ? a->evaluate.offtopic_dir.c_str() : a->evaluate.dataset.c_str());
  if (ev["n_known"].get<std::int64_t>() > 0) {
    std::fprintf(stderr, "  known images   %lld: top-1 %s, top-5 %s, species top-1 %s (top-1 of the accepted: %s)\n",
                 static_cast<long long>(ev["n_known"].get<std::int64_t>()), Rate(ev["top1_accuracy"]).c_str(),
                 Rate(ev["top5_accuracy"]).c_str(), Rate(ev["species_top1_accuracy"]).c_str(),
                 Rate(ev["top1_accuracy_accepted"]).c_str());
    std::fprintf(stderr, "  false unknown  %s of known images flagged unknown\n",
                 Rate(ev["known_false_unknown_rate"]).c_str());
    std::fprintf(stderr, "  calibration    ECE %s (top-1 confidence against accuracy)\n",
                 Rate(ev["calibration"]["ece"]).c_str());
  }
  if (ev["n_unknown"].get<std::int64_t>() > 0) {
    std::fprintf(stderr, "  unknown        %lld images of classes the model does not know: %s flagged unknown\n",
                 static_cast<long long>(ev["n_unknown"].get<std::int64_t>()), Rate(ev["unknown_flagged_rate"]).c_str());
  }
  if (ev.contains("offtopic")) {
    std::fprintf(stderr, "  off-topic      %lld photos of no fruit: %s flagged unknown\n",
                 static_cast<long long>(ev["offtopic"]["images"].get<std::int64_t>()),
                 Rate(ev["offtopic"]["flagged_rate"]).c_str());
  }
  if (ev["errors"].get<std::int64_t>() > 0) {
    std::fprintf(stderr, "  errors         %lld photos could not be read back or identified\n",
                 static_cast<long long>(ev["errors"].get<std::int64_t>()));
  }
  std::vector<std::pair<double, std::string>> recall;
  for (auto& [label, c] : ev["per_class"].items()) {
    if (c["support"].get<std::int64_t>() > 0) recall.emplace_back(c["recall"].get<double>(), label);
  }
  std::sort(recall.begin(), recall.end());
  if (!recall.empty() && a->worst > 0) {
    std::fprintf(stderr, "  worst classes  %-28s %9s %9s %7s\n", "", "recall", "precision", "support");
    for (int i = 0; i < a->worst && i < static_cast<int>(recall.size()); ++i) {
      const json& c = ev["per_class"][recall[static_cast<std::size_t>(i)].second];
      std::fprintf(stderr, "                 %-28s %9.3f %9.3f %7lld\n", recall[static_cast<std::size_t>(i)].second.c_str(),
                   c["recall"].get<double>(), c["precision"].get<double>(),
                   static_cast<long long>(c["support"].get<std::int64_t>()));
    }
  }
  if (ev.contains("unknown_labels") && !ev["unknown_labels"].empty()) {
    std::string line;
    for (auto& [label, u] : ev["unknown_labels"].items()) {
      line += label + " " + std::to_string(u["flagged"].get<std::int64_t>()) + "/" +
              std::to_string(u["support"].get<std::int64_t>()) + ", ";
    }
    line.resize(line.size() - 2);
    std::fprintf(stderr, "  unknown flags  %s\n", line.c_str());
  }
  if (!report_uri.empty()) std::fprintf(stderr, "  report         %s\n", report_uri.c_str());
}

struct PredictArgs {
  std::string model_dir;
  std::vector<std::string> images;
  serve::IdentifierOptions identifier;
  storage::StorageOptions storage;
  bool json_output = false;
};

void Predict(PredictArgs* a) {
  a->identifier.workers = std::max(1, std::min<int>(a->identifier.workers > 0 ? a->identifier.workers : 1,
                                                    static_cast<int>(a->images.size())));
  serve::Identifier identifier(a->model_dir, a->identifier, a->storage);
  serve::WarnIfStale(identifier.model(), a->storage);
  std::vector<json> results(a->images.size());
  std::atomic<std::size_t> next{0};
  auto work = [&] {
    for (std::size_t i = next++; i < a->images.size(); i = next++) {
      const std::string& path = a->images[i];
      json r = {{"path", path}};
      std::string bytes;
      try {
        bytes = ReadLocalFile(path);
      } catch (const Error& e) {
        r["error"] = "unreadable";
        r["reason"] = e.what();
        results[i] = r;
        continue;
      }
      const serve::IdentifyOutcome o = identifier.Identify(bytes);
      if (!o.ok) {
        r["error"] = o.category;
        r["reason"] = o.reason;
      } else {
        r.update(serve::IdentificationJson(o.result));
      }
      results[i] = r;
    }
  };
  std::vector<std::thread> threads;
  for (int t = 1; t < identifier.workers(); ++t) threads.emplace_back(work);
  work();
  for (auto& t : threads) t.join();

  const bool any_failed = std::any_of(results.begin(), results.end(), [](const json& r) { return r.contains("error"); });
  if (any_failed) ExitCode() = kExitPartial;
  if (a->json_output) {
    std::cout << json{{"model", identifier.model().id}, {"images", results}}.dump(2) << std::endl;
    return;
  }
  std::printf("%-40s %-24s %6s %-14s %-7s %s\n", "IMAGE", "LABEL", "CONF", "SPECIES", "UNKNOWN", "TOP-5");
  for (const json& r : results) {
    std::string shown = r["path"].get<std::string>();
    if (shown.size() > 40) shown = "..." + shown.substr(shown.size() - 37);
    if (r.contains("error")) {
      std::printf("%-40s error: %s (%s)\n", shown.c_str(), r["error"].get<std::string>().c_str(),
                  r["reason"].get<std::string>().c_str());
      continue;
    }
    std::string top;
    for (const auto& p : r["top5"]) {
      char buf[96];
      std::snprintf(buf, sizeof buf, "%s%s %.3f", top.empty() ? "" : ", ", p["label"].get<std::string>().c_str(),
                    p["probability"].get<double>());
      top += buf;
    }
    std::printf("%-40s %-24s %6.3f %-14s %-7s %s\n", shown.c_str(), r["label"].get<std::string>().c_str(),
                r["confidence"].get<double>(), r["species"].get<std::string>().c_str(),
                r["unknown"].get<bool>() ? "yes" : "no", top.c_str());
  }
}

void AddFeatureModelOptions(CLI::App* cmd, serve::IdentifierOptions* o) {
  cmd->add_option("--model", o->model_card,
                  "feature model card (default: the one MODEL_DIR records, else $FRUITPIPE_MODEL)")
      ->group("Model");
  cmd->add_option("--backend", o->backend, "inference engine (default: the Training run's)")
      ->check(CLI::IsMember({"onednn", "opencv"}))
      ->group("Model");
  cmd->add_option("--calibration-dir", o->calibration_dir, "images for int8 calibration (int8 models)")->group("Model");
}

}  // namespace

void AddIdentifyCommands(CLI::App& app) {
  static TrainArgs train_args;
  auto* train = app.add_subcommand(
      "train", "train the fruit identifier on finished datasets (Fruits-360, real photos, ...) and negatives");
  train->add_option("DATASET", train_args.train.datasets,
                    "finished datasets (fruitpipe run); classes are the union of their labels")
      ->required();
  train->add_option("--negatives", train_args.train.negatives,
                    "finished datasets of photos of no known fruit (labels ignored): learnt and used to calibrate "
                    "the unknown answer");
  train->add_option("--out", train_args.model_dir, "model directory to write (folder or s3://)")->required();
  train->add_option("--imagenet-head", train_args.train.imagenet_card,
                    "card of the backbone with its ImageNet head, used as a prior (default: $FRUITPIPE_IMAGENET_MODEL, "
                    "else mobilenet_v2_imagenet.json beside the feature card; 'none': no prior)");
  train->add_option("--model", train_args.train.feature_card,
                    "feature model card (default: the one the datasets record, else $FRUITPIPE_MODEL)");
  train->add_option("--augment-images", train_args.train.augment_images,
                    "photos per dataset whose mirrored and cropped views are learnt (read back by path; 0: none)")
      ->default_val(2048)
      ->check(CLI::Range(0, 1 << 30));
  train->add_option("--l2", train_args.train.identifier.regression.l2, "L2 penalty on the standardized weights")
      ->default_val(1e-3)
      ->check(CLI::Range(0.0, 10.0));
  train->add_option("--class-balance", train_args.train.identifier.class_balance,
                    "within a dataset a class weighs rows^(1 - this): 1 every class the same, 0 every row the same")
      ->default_val(1.0)
      ->check(CLI::Range(0.0, 1.0));
  train->add_option("--prior-weight", train_args.train.identifier.prior_weight,
                    "weight of the ImageNet prior's log-probability (0: none)")
      ->default_val(0.25)
      ->check(CLI::Range(0.0, 10.0));
  train->add_option("--threads", train_args.train.threads, "threads (default: all cores; same result)")
      ->check(CLI::Range(1, 1024));
  train->add_flag("--quiet", train_args.quiet, "no progress line");
  AddStorageOptions(train, &train_args.storage);
  train->callback([] { Train(&train_args); });

  static EvaluateArgs eval_args;
  auto* evaluate = app.add_subcommand(
      "evaluate", "top-1, top-5, species, unknown rates, ECE on a dataset and/or an off-topic folder -> DATASET/evaluation.json");
  evaluate->add_option("MODEL_DIR", eval_args.model_dir, "a model directory (fruitpipe train)")->required();
  evaluate->add_option("DATASET", eval_args.evaluate.dataset,
                       "a finished run of labelled photos (classes the model lacks count as unknown)");
  evaluate->add_option("--offtopic", eval_args.evaluate.offtopic_dir,
                       "a flat folder of photos of no fruit: the share flagged unknown");
  evaluate->add_option("--threads", eval_args.identifier.workers, "photos identified at once (default: all cores)")
      ->check(CLI::Range(1, 1024));
  evaluate->add_option("--worst", eval_args.worst, "classes to list by lowest recall")->default_val(5);
  evaluate->add_flag("--json", eval_args.json_output, "print evaluation.json instead of the table");
  evaluate->add_flag("--no-report", eval_args.no_report, "do not regenerate DATASET/report.html");
  evaluate->add_flag("--quiet", eval_args.quiet, "no progress line");
  AddFeatureModelOptions(evaluate, &eval_args.identifier);
  AddStorageOptions(evaluate, &eval_args.evaluate.storage);
  evaluate->callback([] { Evaluate(&eval_args); });

  static PredictArgs predict_args;
  auto* predict = app.add_subcommand("predict", "identify the fruit in image files: label, confidence, unknown, top-5");
  predict->add_option("MODEL_DIR", predict_args.model_dir, "a model directory (fruitpipe train)")->required();
  predict->add_option("IMAGE", predict_args.images, "image files (JPEG, PNG, WebP, BMP)")->required();
  predict->add_flag("--json", predict_args.json_output, "JSON output");
  predict->add_option("--threads", predict_args.identifier.workers, "images identified at once (default 1)")
      ->check(CLI::Range(1, 1024));
  predict->add_option("--max-pixels", predict_args.identifier.limits.max_pixels,
                      "refuse images declaring more pixels than this")
      ->default_val(40'000'000);
  predict->add_option("--max-bytes", predict_args.identifier.limits.max_bytes, "refuse files larger than this")
      ->default_val(64u << 20);
  AddFeatureModelOptions(predict, &predict_args.identifier);
  AddStorageOptions(predict, &predict_args.storage);
  predict->callback([] { Predict(&predict_args); });
}

}  // namespace fruitpipe::cli
