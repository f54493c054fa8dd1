// train, evaluate, predict: the fruit identifier on PCA features (docs/serving.md).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <thread>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "options.h"
#include "fruitpipe/common/env_vars.h"
#include "fruitpipe/common/error.h"
#include "fruitpipe/report/report.h"
#include "fruitpipe/serve/identifier.h"
#include "fruitpipe/serve/model_dir.h"

namespace fruitpipe::cli {
namespace {

using nlohmann::json;

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

struct TrainArgs {
  std::string train_out;
  std::string model_dir;
  storage::StorageOptions storage;
  double l2 = 1e-3;
  int threads = 0;
};

void Train(const TrainArgs& a) {
  const auto start = std::chrono::steady_clock::now();
  classify::IdentifierOptions options;
  options.regression.l2 = a.l2;
  options.regression.threads = a.threads;
  const serve::TrainSummary s = serve::TrainModel(a.train_out, a.model_dir, a.storage, options);
  const json& m = s.manifest;
  const json& t = m["training"];
  std::fprintf(stderr, "train: %s -> %s\n", a.train_out.c_str(), a.model_dir.c_str());
  std::fprintf(stderr, "  rows           %lld (%d classes), %d PCA features\n", static_cast<long long>(s.rows), s.classes,
               s.k);
  std::fprintf(stderr, "  time           %.2f s (read %.2f s, fit %.2f s)\n", Seconds(start), s.load_seconds,
               s.fit_seconds);
  std::fprintf(stderr, "  train accuracy %.4f (fit rows), %.4f on held-out Training rows\n",
               t.value("train_accuracy", 0.0), t.value("calibration_accuracy", 0.0));
  std::fprintf(stderr, "  unknown rule   top probability >= %.3f and near the class centroid\n",
               t.value("min_confidence", 0.0));
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
  std::string test_out;
  storage::StorageOptions storage;
  int worst = 5;
  bool json_output = false;
  bool no_report = false;
};

void Evaluate(const EvaluateArgs& a) {
  const serve::IdentifyModel model = serve::LoadIdentifyModel(a.model_dir, a.storage);
  auto test = storage::OpenStorage(a.test_out, a.storage);
  const json ev = serve::EvaluateModel(model, *test);
  std::string report_uri;
  if (!a.no_report) report_uri = report::WriteReport(*test);
  if (a.json_output) {
    std::cout << ev.dump(2) << std::endl;
    return;
  }
  std::fprintf(stderr, "evaluate: %s on %s -> %s\n", model.id.c_str(), a.test_out.c_str(),
               test->Uri(serve::kEvaluationKey).c_str());
  std::fprintf(stderr, "  known images   %lld: top-1 %s, top-5 %s (top-1 of the accepted: %s)\n",
               static_cast<long long>(ev["n_known"].get<std::int64_t>()), Rate(ev["top1_accuracy"]).c_str(),
               Rate(ev["top5_accuracy"]).c_str(), Rate(ev["top1_accuracy_accepted"]).c_str());
  std::fprintf(stderr, "  unknown        %lld images of classes not in Training: %s flagged unknown\n",
               static_cast<long long>(ev["n_unknown"].get<std::int64_t>()), Rate(ev["unknown_flagged_rate"]).c_str());
  std::fprintf(stderr, "  false unknown  %s of known images flagged unknown\n",
               Rate(ev["known_false_unknown_rate"]).c_str());
  std::vector<std::pair<double, std::string>> recall;
  for (auto& [label, c] : ev["per_class"].items()) {
    if (c["support"].get<std::int64_t>() > 0) recall.emplace_back(c["recall"].get<double>(), label);
  }
  std::sort(recall.begin(), recall.end());
  if (!recall.empty() && a.worst > 0) {
    std::fprintf(stderr, "  worst classes  %-28s %9s %9s %7s\n", "", "recall", "precision", "support");
    for (int i = 0; i < a.worst && i < static_cast<int>(recall.size()); ++i) {
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
        const serve::Identification& id = o.result;
        json top5 = json::array();
        for (const auto& p : id.top5) top5.push_back({{"label", p.label}, {"probability", p.probability}});
        r.update({{"label", id.label}, {"closest", id.closest}, {"confidence", id.confidence}, {"unknown", id.unknown},
                  {"top5", top5}, {"latency_ms", id.latency_ms}});
        if (id.unknown) r["reason"] = id.reason;
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
  std::printf("%-40s %-24s %6s %-7s %s\n", "IMAGE", "LABEL", "CONF", "UNKNOWN", "TOP-5");
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
    std::printf("%-40s %-24s %6.3f %-7s %s\n", shown.c_str(), r["label"].get<std::string>().c_str(),
                r["confidence"].get<double>(), r["unknown"].get<bool>() ? "yes" : "no", top.c_str());
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
  auto* train = app.add_subcommand("train", "train the fruit identifier on a Training run's PCA features");
  train->add_option("TRAIN_OUT", train_args.train_out, "a finished Training dataset (fruitpipe run)")->required();
  train->add_option("--out", train_args.model_dir, "model directory to write (folder or s3://)")->required();
  train->add_option("--l2", train_args.l2, "L2 penalty on the standardized weights")
      ->default_val(1e-3)
      ->check(CLI::Range(0.0, 10.0));
  train->add_option("--threads", train_args.threads, "threads for the optimiser (default: all cores; same result)")
      ->check(CLI::Range(1, 1024));
  AddStorageOptions(train, &train_args.storage);
  train->callback([] { Train(train_args); });

  static EvaluateArgs eval_args;
  auto* evaluate = app.add_subcommand("evaluate", "accuracy and unknown-fruit rates on a Test run -> TEST_OUT/evaluation.json");
  evaluate->add_option("MODEL_DIR", eval_args.model_dir, "a model directory (fruitpipe train)")->required();
  evaluate->add_option("TEST_OUT", eval_args.test_out, "a Test run transformed with --pca-model TRAIN_OUT")->required();
  evaluate->add_option("--worst", eval_args.worst, "classes to list by lowest recall")->default_val(5);
  evaluate->add_flag("--json", eval_args.json_output, "print evaluation.json instead of the table");
  evaluate->add_flag("--no-report", eval_args.no_report, "do not regenerate TEST_OUT/report.html");
  AddStorageOptions(evaluate, &eval_args.storage);
  evaluate->callback([] { Evaluate(eval_args); });

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
