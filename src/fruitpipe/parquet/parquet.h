// A small, spec-exact Parquet writer and reader for fruitpipe's outputs (see
// docs/formats/parquet.md). Whole files are built in memory: a part file holds one shard
// (about a thousand rows), which keeps writes atomic through Storage::Put.
//
// Column kinds: required/optional UTF-8 string, required int32/int64/double, and
// list<float>/list<double> in the standard 3-level LIST encoding
// (optional group <name> (LIST) { repeated group list { optional <type> element; } }).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace fruitpipe::parquet {

enum class Compression { kUncompressed, kSnappy, kZstd };

struct StringColumn {
  std::vector<std::string> values;
  std::vector<bool> valid;  // empty: required column (all valid); else one flag per row
  bool nullable = false;
};
struct Int32Column { std::vector<std::int32_t> values; };
struct Int64Column { std::vector<std::int64_t> values; };
struct DoubleColumn { std::vector<double> values; };
// Row i holds values[offsets[i] .. offsets[i+1]); offsets has rows+1 entries.
template <typename T>
struct ListColumn {
  std::vector<T> values;
  std::vector<std::uint64_t> offsets{0};
  void AppendRow(const T* data, std::size_t n) {
    values.insert(values.end(), data, data + n);
    offsets.push_back(values.size());
  }
  std::size_t rows() const { return offsets.size() - 1; }
};
using FloatListColumn = ListColumn<float>;
using DoubleListColumn = ListColumn<double>;

using ColumnData =
    std::variant<StringColumn, Int32Column, Int64Column, DoubleColumn, FloatListColumn, DoubleListColumn>;

struct Column {
  std::string name;
  ColumnData data;
};

struct Table {
  std::vector<Column> columns;
  std::map<std::string, std::string> metadata;  // file key/value metadata

  std::size_t num_rows() const;
  const Column* Find(std::string_view name) const;  // nullptr when absent
  const Column& Get(std::string_view name) const;   // throws when absent
};

struct WriteOptions {
  Compression compression = Compression::kSnappy;
  std::size_t row_group_rows = 1024;   // rows per row group
  std::size_t page_values = 64 * 1024; // values per data page (bounded page size)
  std::string created_by = "fruitpipe";
};

// Serializes `table` to a complete Parquet file. Throws InvalidArgumentError on ragged input.
std::string WriteParquet(const Table& table, const WriteOptions& options = {});

// Parses a Parquet file written by WriteParquet (or any writer using the same column kinds,
// plain/dictionary encodings, uncompressed/snappy/zstd/gzip pages). Throws CorruptionError on
// malformed input, never crashes. `columns` (if non-empty) selects columns to decode, in that
// order (NotFoundError for a missing one). Files that are valid Parquet but outside what the
// Table can hold (other column types, nulls in non-string columns, null lists or elements,
// encryption, LZO/Brotli/LZ4) throw InvalidArgumentError. `source` names the file in errors.
Table ReadParquet(std::string_view file, const std::vector<std::string>& columns = {},
                  std::string_view source = "parquet file");

// Schema and counts without decoding pages (for `fruitpipe inspect`).
struct FileSummary {
  std::int64_t num_rows = 0;
  std::size_t num_row_groups = 0;
  std::string created_by;
  std::vector<std::pair<std::string, std::string>> schema;  // column name, type description
  std::map<std::string, std::string> metadata;
};
FileSummary ReadSummary(std::string_view file, std::string_view source = "parquet file");

}  // namespace fruitpipe::parquet
