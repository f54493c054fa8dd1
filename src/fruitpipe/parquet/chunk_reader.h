// Reads one column chunk: walks its pages (dictionary, DataPage V1 and V2), decompresses
// them, decodes levels and values (PLAIN, PLAIN_DICTIONARY/RLE_DICTIONARY, BYTE_STREAM_SPLIT),
// and appends level entries and non-null values to the caller's vectors.
//
// Input is hostile: every offset and length is checked against the file, and the memory a
// file may make us allocate is bounded by a DecodeBudget.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fruitpipe/parquet/compression.h"
#include "fruitpipe/parquet/metadata.h"

namespace fruitpipe::parquet {

// Caps the bytes decoding may allocate for one file, so a small hostile file (a zstd bomb,
// a page claiming billions of null values) fails fast instead of exhausting memory.
class DecodeBudget {
 public:
  DecodeBudget(std::uint64_t bytes, std::string_view what) : left_(bytes), what_(what) {}
  // Throws CorruptionError when the file would need more than its budget.
  void Charge(std::uint64_t bytes);

 private:
  std::uint64_t left_;
  std::string_view what_;
};

// What decoding one file shares across its column chunks.
struct DecodeContext {
  DecodeContext(std::uint64_t budget_bytes, std::string_view what) : budget(budget_bytes, what) {}
  DecodeBudget budget;
  PageCodec codec;
};

struct LeafColumn {
  format::Type type;
  int max_def = 0;
  int max_rep = 0;
};

struct ChunkLevels {
  std::vector<std::uint8_t> defs;  // one per level entry; left empty when max_def == 0
  std::vector<std::uint8_t> reps;  // one per level entry; left empty when max_rep == 0
  std::size_t entries = 0;         // level entries appended
};

// T is std::int32_t, std::int64_t, float, double or std::string, matching leaf.type.
// `pages` is the file up to its footer (offsets in `meta` count from the file's start).
// Appends to *levels and *values; `what` names the file and column in errors.
template <typename T>
void ReadColumnChunk(std::string_view pages, const format::ColumnMetaData& meta, const LeafColumn& leaf,
                     DecodeContext* ctx, const std::string& what, ChunkLevels* levels,
                     std::vector<T>* values);

}  // namespace fruitpipe::parquet
