#include "fruitpipe/dataset/layout.h"

#include <cstdio>

#include "fruitpipe/common/hash.h"

namespace fruitpipe::dataset {
namespace {

std::string_view CodecSuffix(parquet::Compression codec) {
  switch (codec) {
    case parquet::Compression::kSnappy: return ".snappy.parquet";
    case parquet::Compression::kZstd: return ".zstd.parquet";
    case parquet::Compression::kUncompressed: break;
  }
  return ".parquet";
}

std::string PartKey(const char* dir, int index, std::string_view id, parquet::Compression codec) {
  std::string key = std::string(dir) + "/part-" + ShardName(index) + "-";
  key += id;
  key += CodecSuffix(codec);
  return key;
}

std::string_view BaseName(std::string_view key) {
  const auto slash = key.rfind('/');
  return slash == std::string_view::npos ? key : key.substr(slash + 1);
}

}  // namespace

std::string ContentId(std::string_view bytes) { return Sha256Hex(bytes).substr(0, 12); }

std::string ShardName(int index) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%05d", index);
  return buf;
}

std::string ResultsPartKey(int index, std::string_view run_id, parquet::Compression codec) {
  return PartKey(kResultsDir, index, run_id, codec);
}

std::string ResultsPcaPartKey(int index, std::string_view model_id, parquet::Compression codec) {
  return PartKey(kResultsPcaDir, index, model_id, codec);
}

std::string StatsKey(int index) { return std::string(kStatsDir) + "/shard-" + ShardName(index) + ".bin"; }

std::string StatsKey(int index, std::string_view id) {
  return std::string(kStatsDir) + "/shard-" + ShardName(index) + "-" + std::string(id) + ".bin";
}

std::string ShardRecordKey(int index) { return std::string(kShardsDir) + "/shard-" + ShardName(index) + ".json"; }

int ShardIndexOf(std::string_view key) {
  std::string_view name = BaseName(key);
  for (std::string_view prefix : {"part-", "shard-"}) {
    if (!name.starts_with(prefix)) continue;
    name.remove_prefix(prefix.size());
    if (name.size() < 5) return -1;
    int v = 0;
    for (int i = 0; i < 5; ++i) {
      if (name[i] < '0' || name[i] > '9') return -1;
      v = v * 10 + (name[i] - '0');
    }
    return v;
  }
  return -1;
}

bool IsPartOfModel(std::string_view key, std::string_view model_id) {
  const std::string needle = "-" + std::string(model_id) + ".";
  return BaseName(key).find(needle) != std::string_view::npos;
}

}  // namespace fruitpipe::dataset
