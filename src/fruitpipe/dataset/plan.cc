#include "fruitpipe/dataset/plan.h"

#include <nlohmann/json.hpp>

#include "fruitpipe/common/error.h"
#include "fruitpipe/common/utf8.h"
#include "fruitpipe/dataset/layout.h"

namespace fruitpipe::dataset {
namespace {

bool IsHiddenOrMeta(std::string_view key) {
  std::size_t start = 0;
  while (start <= key.size()) {
    const std::size_t end = std::min(key.find('/', start), key.size());
    const std::string_view part = key.substr(start, end - start);
    if (!part.empty() && (part.front() == '.' || part.front() == '_')) return true;
    start = end + 1;
  }
  return false;
}

}  // namespace

std::optional<std::string> SubjectFromKey(std::string_view key) {
  constexpr std::string_view kPrefix = "contrib-";
  const auto slash = key.rfind('/');
  const std::string_view name = slash == std::string_view::npos ? key : key.substr(slash + 1);
  if (name.size() < kPrefix.size() + 65 || name.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  const std::string_view id = name.substr(kPrefix.size(), 64);
  if (name[kPrefix.size() + 64] != '-') return std::nullopt;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return std::nullopt;
  }
  return std::string(id);
}

std::vector<SourceImage> ListSource(storage::Storage& source, std::vector<Rejection>* rejected) {
  std::vector<SourceImage> images;
  for (auto& obj : source.List("")) {
    if (IsHiddenOrMeta(obj.key)) continue;
    if (!IsValidUtf8(obj.key)) {
      if (rejected) rejected->push_back({source.Uri(obj.key), "file name is not valid UTF-8 (paths are UTF-8 strings in Parquet and JSON): rename it"});
      continue;
    }
    const auto slash = obj.key.rfind('/');
    if (slash == std::string::npos) {
      if (rejected) rejected->push_back({source.Uri(obj.key), "no class folder: images must be in <Label>/ folders"});
      continue;
    }
    const auto parent_start = obj.key.rfind('/', slash - 1);
    std::string label = obj.key.substr(parent_start == std::string::npos ? 0 : parent_start + 1,
                                       slash - (parent_start == std::string::npos ? 0 : parent_start + 1));
    auto subject = SubjectFromKey(obj.key);
    images.push_back({std::move(obj.key), std::move(label), obj.size, std::move(subject)});
  }
  return images;
}

std::vector<ShardPlan> CutShards(const std::vector<SourceImage>& images, int shard_size,
                                 int first_index, const std::string& run_id) {
  if (shard_size <= 0) throw InvalidArgumentError("shard size must be positive");
  std::vector<ShardPlan> shards;
  for (std::size_t i = 0; i < images.size(); i += static_cast<std::size_t>(shard_size)) {
    ShardPlan shard;
    shard.index = first_index + static_cast<int>(shards.size());
    shard.run_id = run_id;
    const std::size_t end = std::min(images.size(), i + static_cast<std::size_t>(shard_size));
    shard.images.assign(images.begin() + static_cast<std::ptrdiff_t>(i),
                        images.begin() + static_cast<std::ptrdiff_t>(end));
    shards.push_back(std::move(shard));
  }
  return shards;
}

std::string RunId(const std::string& source, const std::vector<SourceImage>& images, int shard_size) {
  std::string text = source + "\n" + std::to_string(shard_size) + "\n";
  for (const auto& img : images) text += img.key + "\n";
  return ContentId(text);
}

std::optional<DatasetPlan> LoadPlan(storage::Storage& out) {
  const auto bytes = out.GetIfExists(kPlanKey);
  if (!bytes) return std::nullopt;
  try {
    return DatasetPlan::FromJson(*bytes);
  } catch (const CorruptionError& e) {
    throw CorruptionError(out.Uri("") + ": " + e.what());
  }
}

void StorePlan(storage::Storage& out, const DatasetPlan& plan) {
  const std::string bytes = plan.ToJson();
  if (out.GetIfExists(kPlanKey) != bytes) out.Put(kPlanKey, bytes);
}

std::size_t DatasetPlan::num_images() const {
  std::size_t n = 0;
  for (const auto& s : shards) n += s.images.size();
  return n;
}

std::string DatasetPlan::ToJson() const {
  nlohmann::json j;
  j["format"] = "fruitpipe-plan/1";
  j["source"] = source;
  j["shard_size"] = shard_size;
  auto& arr = j["shards"] = nlohmann::json::array();
  for (const auto& s : shards) {
    nlohmann::json keys = nlohmann::json::array();
    for (const auto& img : s.images) keys.push_back({img.key, img.label, img.size});
    arr.push_back({{"index", s.index}, {"run_id", s.run_id}, {"images", std::move(keys)}});
  }
  j["model"] = model;
  return j.dump();
}

DatasetPlan DatasetPlan::FromJson(const std::string& text) {
  try {
    const auto j = nlohmann::json::parse(text);
    if (j.at("format") != "fruitpipe-plan/1") throw CorruptionError("_plan.json: unknown format");
    DatasetPlan plan;
    plan.source = j.at("source").get<std::string>();
    plan.shard_size = j.at("shard_size").get<int>();
    for (const auto& s : j.at("shards")) {
      ShardPlan shard;
      shard.index = s.at("index").get<int>();
      shard.run_id = s.at("run_id").get<std::string>();
      for (const auto& img : s.at("images")) {
        shard.images.push_back({img.at(0).get<std::string>(), img.at(1).get<std::string>(),
                                img.at(2).get<std::uint64_t>(), SubjectFromKey(img.at(0).get<std::string>())});
      }
      plan.shards.push_back(std::move(shard));
    }
    plan.model = j.value("model", nlohmann::json::object());
    return plan;
  } catch (const nlohmann::json::exception& e) {
    throw CorruptionError(std::string("_plan.json: ") + e.what());
  }
}

}  // namespace fruitpipe::dataset
