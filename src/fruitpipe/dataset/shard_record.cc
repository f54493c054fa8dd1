#include "fruitpipe/dataset/shard_record.h"

#include <algorithm>
#include <mutex>

#include "fruitpipe/common/error.h"
#include "fruitpipe/dataset/layout.h"

namespace fruitpipe::dataset {

std::string ShardRecord::ToJson() const {
  nlohmann::json j;
  j["index"] = index;
  j["run_id"] = run_id;
  j["part"] = part_key;
  j["stats"] = stats_key;
  j["rows"] = rows;
  auto& rej = j["rejected"] = nlohmann::json::array();
  for (const auto& r : rejected) rej.push_back({{"path", r.path}, {"reason", r.reason}});
  j["timing"] = timing;
  return j.dump();
}

ShardRecord ShardRecord::FromJson(const std::string& text) {
  try {
    const auto j = nlohmann::json::parse(text);
    ShardRecord r;
    r.index = j.at("index").get<int>();
    r.run_id = j.at("run_id").get<std::string>();
    r.part_key = j.at("part").get<std::string>();
    r.stats_key = j.at("stats").get<std::string>();
    r.rows = j.at("rows").get<std::int64_t>();
    for (const auto& x : j.at("rejected")) {
      r.rejected.push_back({x.at("path").get<std::string>(), x.at("reason").get<std::string>()});
    }
    r.timing = j.value("timing", nlohmann::json::object());
    return r;
  } catch (const nlohmann::json::exception& e) {
    throw CorruptionError(std::string("shard record: ") + e.what());
  }
}

std::vector<ShardRecord> LoadShardRecords(storage::Storage& out) {
  std::vector<ShardRecord> records;
  std::vector<std::string> keys;
  for (const auto& obj : out.List(std::string(kShardsDir) + "/")) keys.push_back(obj.key);
  std::vector<std::string> errors;
  std::mutex mu;  // GetMany may call back from several threads
  out.GetMany(keys, [&](storage::FetchResult&& r) {
    std::lock_guard lock(mu);
    if (!r.ok) {
      errors.push_back(r.error);
      return;
    }
    try {
      records.push_back(ShardRecord::FromJson(r.data));
    } catch (const CorruptionError& e) {
      errors.push_back(out.Uri(r.key) + ": " + e.what());
    }
  });
  if (!errors.empty()) throw CorruptionError(errors.front());
  std::sort(records.begin(), records.end(), [](const auto& a, const auto& b) { return a.index < b.index; });
  return records;
}

void CommitShard(storage::Storage& out, const ShardRecord& record, const std::string& part_bytes,
                 const std::string& stats_bytes) {
  out.Put(record.part_key, part_bytes);
  out.Put(record.stats_key, stats_bytes);
  out.Put(ShardRecordKey(record.index), record.ToJson());
}

}  // namespace fruitpipe::dataset
