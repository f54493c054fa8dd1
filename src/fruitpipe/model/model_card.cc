#include "fruitpipe/model/model_card.h"

#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>

#include "fruitpipe/common/env_vars.h"
#include "fruitpipe/common/error.h"
#include "fruitpipe/common/hash.h"

namespace fruitpipe::model {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Reads fields with one-line errors naming the card and the dotted field path.
class CardReader {
 public:
  explicit CardReader(std::string card_path) : card_path_(std::move(card_path)) {}

  [[noreturn]] void Fail(const std::string& field, const std::string& what) const {
    throw InvalidArgumentError("model card " + card_path_ + ": field '" + field + "' " + what);
  }

  const json& Object(const json& parent, const std::string& key, const std::string& path) const {
    const json* v = Find(parent, key, path, /*required=*/true);
    if (!v->is_object()) Fail(path, "must be an object, got " + Show(*v));
    return *v;
  }

  std::string String(const json& parent, const std::string& key, const std::string& path, bool required,
                     const std::string& fallback = "") const {
    const json* v = Find(parent, key, path, required);
    if (v == nullptr) return fallback;
    if (!v->is_string()) Fail(path, "must be a string, got " + Show(*v));
    const std::string s = v->get<std::string>();
    if (required && s.empty()) Fail(path, "must not be empty");
    return s;
  }

  int PositiveInt(const json& parent, const std::string& key, const std::string& path, int max) const {
    const json* v = Find(parent, key, path, /*required=*/true);
    if (!v->is_number_integer() || v->get<std::int64_t>() <= 0 || v->get<std::int64_t>() > max) {
      Fail(path, "must be an integer from 1 to " + std::to_string(max) + ", got " + Show(*v));
    }
    return v->get<int>();
  }

  float Number(const json& parent, const std::string& key, const std::string& path, bool required,
               float fallback) const {
    const json* v = Find(parent, key, path, required);
    if (v == nullptr) return fallback;
    if (!v->is_number()) Fail(path, "must be a number, got " + Show(*v));
    return v->get<float>();
  }

  // Three per-channel numbers, or one number meaning the same for every channel.
  std::array<float, 3> Triple(const json& parent, const std::string& key, const std::string& path,
                              float fallback) const {
    const json* v = Find(parent, key, path, /*required=*/false);
    if (v == nullptr) return {fallback, fallback, fallback};
    if (v->is_number()) {
      const float f = v->get<float>();
      return {f, f, f};
    }
    if (!v->is_array() || v->size() != 3 || !(*v)[0].is_number() || !(*v)[1].is_number() ||
        !(*v)[2].is_number()) {
      Fail(path, "must be a number or an array of 3 numbers, got " + Show(*v));
    }
    return {(*v)[0].get<float>(), (*v)[1].get<float>(), (*v)[2].get<float>()};
  }

  std::string OneOf(const json& parent, const std::string& key, const std::string& path,
                    const std::vector<std::string>& allowed) const {
    const std::string s = String(parent, key, path, /*required=*/true);
    for (const auto& a : allowed) {
      if (s == a) return s;
    }
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : " or ") + a;
    Fail(path, "must be " + list + ", got \"" + s + "\"");
  }

  // Typos in the sections that drive preprocessing ("sdt") would silently change the features,
  // so only documented keys are allowed there.
  void OnlyKeys(const json& obj, const std::string& path, const std::set<std::string>& keys) const {
    for (const auto& item : obj.items()) {
      if (!keys.count(item.key())) Fail(path + "." + item.key(), "is not a known field (see docs/model-card.md)");
    }
  }

 private:
  const json* Find(const json& parent, const std::string& key, const std::string& path, bool required) const {
    const auto it = parent.find(key);
    if (it == parent.end() || it->is_null()) {
      if (required) Fail(path, "is missing");
      return nullptr;
    }
    return &*it;
  }

  static std::string Show(const json& v) {
    std::string s = v.dump();
    if (s.size() > 40) s = s.substr(0, 37) + "...";
    return s;
  }

  std::string card_path_;
};

bool IsLowerHex64(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

ModelCard ParseModelCard(const std::string& json_text, const std::string& card_path) {
  json doc;
  try {
    doc = json::parse(json_text);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1E999
    std::string what = e.what();  // "[json.exception.parse_error.101] parse error at line 1, ..."
    const auto bracket = what.find("] ");
    if (bracket != std::string::npos) what = what.substr(bracket + 2);
    throw InvalidArgumentError("model card " + card_path + ": invalid JSON: " + what);
  }
  const CardReader r(card_path);
  if (!doc.is_object()) throw InvalidArgumentError("model card " + card_path + ": must be a JSON object");

  ModelCard card;
  card.card_path = card_path;
  card.name = r.String(doc, "name", "name", true);
  card.description = r.String(doc, "description", "description", false);
  card.format = r.String(doc, "format", "format", false, "onnx");
  if (card.format != "onnx") r.Fail("format", "must be \"onnx\", got \"" + card.format + "\"");

  const std::string file = r.String(doc, "file", "file", true);
  const fs::path file_path(file);
  card.file = file_path.is_absolute()
                  ? file_path.string()
                  : (fs::path(card_path).parent_path() / file_path).lexically_normal().string();

  card.sha256 = Lower(r.String(doc, "sha256", "sha256", true));
  if (!IsLowerHex64(card.sha256)) r.Fail("sha256", "must be 64 hexadecimal digits");

  card.url = r.String(doc, "url", "url", false);
  if (!card.url.empty() && card.url.rfind("https://", 0) != 0 && card.url.rfind("http://", 0) != 0) {
    r.Fail("url", "must be an http:// or https:// URL, got \"" + card.url + "\"");
  }

  const json& in = r.Object(doc, "input", "input");
  r.OnlyKeys(in, "input", {"name", "layout", "width", "height", "color", "scale", "mean", "std", "formula"});
  card.input_name = r.String(in, "name", "input.name", true);
  image::PreprocessSpec& spec = card.input;
  spec.nchw = r.OneOf(in, "layout", "input.layout", {"NCHW", "NHWC"}) == "NCHW";
  spec.width = r.PositiveInt(in, "width", "input.width", 8192);
  spec.height = r.PositiveInt(in, "height", "input.height", 8192);
  spec.rgb = r.OneOf(in, "color", "input.color", {"RGB", "BGR"}) == "RGB";
  spec.scale = r.Number(in, "scale", "input.scale", true, 1.0f);
  if (!(spec.scale > 0)) r.Fail("input.scale", "must be positive");
  spec.mean = r.Triple(in, "mean", "input.mean", 0.0f);
  spec.std = r.Triple(in, "std", "input.std", 1.0f);
  for (float s : spec.std) {
    if (!(s > 0)) r.Fail("input.std", "must be positive");
  }
  spec.interpolation = cv::INTER_LINEAR;

  const json& out = r.Object(doc, "output", "output");
  r.OnlyKeys(out, "output", {"name", "dim", "labels"});
  card.output_name = r.String(out, "name", "output.name", true);
  card.dim = r.PositiveInt(out, "dim", "output.dim", 1 << 20);
  return card;
}

ModelCard LoadModelCard(const std::string& card_path) {
  std::string text;
  try {
    text = ReadLocalFile(card_path);
  } catch (const NotFoundError&) {
    throw NotFoundError("model card " + card_path + ": no such file");
  }
  return ParseModelCard(text, card_path);
}

std::string Sha256OfFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    if (err == ENOENT) throw NotFoundError("model file " + path + ": no such file");
    throw IOError("model file " + path + ": " + std::strerror(err));
  }
  Sha256Hasher hasher;
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    hasher.Update(std::string_view(buf.data(), static_cast<std::size_t>(in.gcount())));
  }
  if (in.bad()) throw IOError("model file " + path + ": read failed");
  return hasher.FinishHex();
}

void VerifyModelFile(const ModelCard& card) {
  std::string actual;
  try {
    actual = Sha256OfFile(card.file);
  } catch (const NotFoundError&) {
    throw NotFoundError("model file " + card.file + ": no such file (named by " + card.card_path +
                        "; see docs/export-model.md to fetch or export it)");
  }
  if (actual != card.sha256) {
    throw CorruptionError("model file " + card.file + ": sha256 mismatch (card says " + card.sha256.substr(0, 12) +
                          "..., file is " + actual.substr(0, 12) + "...)");
  }
}

std::string ResolveModelCardPath(const std::string& explicit_path) {
  if (!explicit_path.empty()) return explicit_path;
  if (auto env = GetEnv("FRUITPIPE_MODEL")) return *env;
  throw InvalidArgumentError("no model: pass --model CARD.json or set FRUITPIPE_MODEL (see docs/export-model.md)");
}

}  // namespace fruitpipe::model
