// fruitpipe model info|verify|fetch: look at a model card, check its ONNX file, download one.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <vector>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "fruitpipe/common/error.h"
#include "fruitpipe/common/time.h"
#include "fruitpipe/model/featurizer.h"
#include "fruitpipe/model/fetch.h"
#include "fruitpipe/model/model_card.h"

namespace fruitpipe::cli {
namespace {

std::string Short(const std::string& hex) { return hex.substr(0, 16) + "..."; }

std::string Triple(const std::array<float, 3>& v) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "[%g, %g, %g]", v[0], v[1], v[2]);
  return buf;
}

// The model commands take the card as an argument, so the hint names that rather than --model.
std::string CardPath(const std::string& arg) {
  try {
    return model::ResolveModelCardPath(arg);
  } catch (const InvalidArgumentError&) {
    throw InvalidArgumentError("no model: pass CARD.json or set FRUITPIPE_MODEL (see docs/export-model.md)");
  }
}

// "ok", "missing" or "mismatch", plus the file's actual sha256 when it could be read.
std::string FileStatus(const model::ModelCard& card, std::string* actual) {
  try {
    *actual = model::Sha256OfFile(card.file);
  } catch (const NotFoundError&) {
    return "missing";
  }
  return *actual == card.sha256 ? "ok" : "mismatch";
}

void Info(const std::string& card_arg, bool as_json) {
  const model::ModelCard card = model::LoadModelCard(CardPath(card_arg));
  std::string actual;
  const std::string status = FileStatus(card, &actual);
  const image::PreprocessSpec& in = card.input;
  if (as_json) {
    nlohmann::json j = {
        {"card", card.card_path}, {"name", card.name}, {"description", card.description},
        {"file", card.file}, {"sha256", card.sha256}, {"file_sha256", actual}, {"status", status},
        {"url", card.url},
        {"input", {{"name", card.input_name}, {"layout", in.nchw ? "NCHW" : "NHWC"}, {"width", in.width},
                   {"height", in.height}, {"color", in.rgb ? "RGB" : "BGR"}, {"scale", in.scale},
                   {"mean", in.mean}, {"std", in.std}}},
        {"output", {{"name", card.output_name}, {"dim", card.dim}}}};
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("card         %s\n", card.card_path.c_str());
  std::printf("name         %s\n", card.name.c_str());
  if (!card.description.empty()) std::printf("description  %s\n", card.description.c_str());
  std::printf("file         %s\n", card.file.c_str());
  std::printf("sha256       %s\n", card.sha256.c_str());
  if (status == "ok") {
    std::printf("status       ok (%ju bytes, sha256 matches)\n",
                static_cast<std::uintmax_t>(std::filesystem::file_size(card.file)));
  } else if (status == "missing") {
    std::printf("status       MISSING (run: fruitpipe model fetch --card %s --out DIR)\n", card.card_path.c_str());
  } else {
    std::printf("status       MISMATCH (file is %s)\n", actual.c_str());
  }
  std::printf("input        '%s' %s %dx%d %s, value = (pixel - %s) * %g / %s\n", card.input_name.c_str(),
              in.nchw ? "NCHW" : "NHWC", in.width, in.height, in.rgb ? "RGB" : "BGR", Triple(in.mean).c_str(),
              in.scale, Triple(in.std).c_str());
  std::printf("output       '%s', %d values per image\n", card.output_name.c_str(), card.dim);
  std::printf("url          %s\n", card.url.empty() ? "(none)" : card.url.c_str());
}

void Verify(const std::string& card_arg, bool load, const model::FeaturizerOptions& options) {
  const model::ModelCard card = model::LoadModelCard(CardPath(card_arg));
  model::VerifyModelFile(card);
  std::printf("%s: sha256 ok (%s)\n", card.file.c_str(), Short(card.sha256).c_str());
  if (!load) return;
  const double start = MonotonicSeconds();
  const std::unique_ptr<model::Featurizer> f = model::CreateFeaturizer(card, options);
  const image::PreprocessSpec& spec = f->input_spec();
  const cv::Mat grey(spec.height, spec.width, CV_8UC3, cv::Scalar(128, 128, 128));
  std::vector<float> input(spec.TensorSize());
  std::vector<float> output(static_cast<std::size_t>(f->dim()));
  image::Preprocess(grey, spec, input.data());
  f->Run(input.data(), 1, output.data());
  const double ms = (MonotonicSeconds() - start) * 1000.0;
  std::printf("%s: loads with backend %s, %dx%d input, %d-d output (%.0f ms)\n", card.file.c_str(),
              f->backend_name().c_str(), spec.width, spec.height, f->dim(), ms);
}

struct FetchArgs {
  std::string url;
  std::string sha256;
  std::string out_dir;
  std::string card;
};

void Fetch(const FetchArgs& a) {
  model::FetchResult r;
  std::string card_out;
  if (!a.card.empty()) {
    const model::ModelCard card = model::LoadModelCard(a.card);
    if (!a.sha256.empty() && a.sha256 != card.sha256) {
      throw InvalidArgumentError("model fetch: --sha256 " + Short(a.sha256) + " differs from the card's " +
                                 Short(card.sha256));
    }
    card_out = model::FetchModelForCard(a.card, a.out_dir, a.url, &r);
  } else {
    if (a.url.empty()) throw InvalidArgumentError("model fetch: pass a URL, or --card CARD.json with a url");
    if (a.sha256.empty()) throw InvalidArgumentError("model fetch: pass --sha256 HEX (or --card CARD.json)");
    model::FetchRequest req;
    req.url = a.url;
    req.sha256 = a.sha256;
    req.out_dir = a.out_dir;
    r = model::FetchModelFile(req);
  }
  if (r.downloaded) {
    std::printf("%s: downloaded %ju bytes, sha256 ok\n", r.path.c_str(), static_cast<std::uintmax_t>(r.bytes));
  } else {
    std::printf("%s: already present, sha256 ok\n", r.path.c_str());
  }
  if (!card_out.empty()) std::printf("card: %s (use --model %s)\n", card_out.c_str(), card_out.c_str());
}

}  // namespace

void AddModelCommands(CLI::App& app) {
  CLI::App* model = app.add_subcommand("model", "Inspect, verify and download models (ONNX file + JSON card)");
  model->require_subcommand(1);
  model->footer("A model is an ONNX file and a JSON card beside it; see docs/model-card.md and docs/export-model.md.");

  CLI::App* info = model->add_subcommand("info", "Print a model card and whether its file matches the card's sha256");
  auto info_card = std::make_shared<std::string>();
  auto info_json = std::make_shared<bool>(false);
  info->add_option("card", *info_card, "model card JSON (default: $FRUITPIPE_MODEL)");
  info->add_flag("--json", *info_json, "print as JSON");
  info->footer("Exits 0 whenever the card is valid; the status line says whether the file is ok, missing or "
               "mismatched. Use 'model verify' to fail on a bad file.");
  info->callback([info_card, info_json] {
    Info(*info_card, *info_json);
    ExitCode() = kExitOk;
  });

  CLI::App* verify = model->add_subcommand("verify", "Check the model file's sha256 against its card (exit 1 if not)");
  auto verify_card = std::make_shared<std::string>();
  auto verify_load = std::make_shared<bool>(false);
  auto verify_options = std::make_shared<model::FeaturizerOptions>();
  verify->add_option("card", *verify_card, "model card JSON (default: $FRUITPIPE_MODEL)");
  verify->add_flag("--load", *verify_load, "also build the featurizer and run one image through it");
  verify->add_option("--backend", verify_options->backend, "with --load: auto, onednn or opencv")
      ->check(CLI::IsMember({"auto", "onednn", "opencv"}))
      ->default_val("auto");
  verify->callback([verify_card, verify_load, verify_options] {
    Verify(*verify_card, *verify_load, *verify_options);
    ExitCode() = kExitOk;
  });

  CLI::App* fetch = model->add_subcommand("fetch", "Download a model file over HTTP(S), checked against its sha256");
  auto args = std::make_shared<FetchArgs>();
  fetch->add_option("url", args->url, "where to download from (default with --card: the card's url)");
  fetch->add_option("--sha256", args->sha256, "expected sha256 of the file (64 hex digits; default: the card's)");
  fetch->add_option("--out", args->out_dir, "folder to put the model (and card) in")->required();
  fetch->add_option("--card", args->card,
                    "model card: names the file, supplies url and sha256, and is copied into --out next to it");
  fetch->footer("The download goes to a temporary file and is renamed into place only if its sha256 matches; "
                "an existing file with the right sha256 is not downloaded again. Proxies come from "
                "https_proxy/http_proxy as usual for libcurl.");
  fetch->callback([args] {
    Fetch(*args);
    ExitCode() = kExitOk;
  });
}

}  // namespace fruitpipe::cli
