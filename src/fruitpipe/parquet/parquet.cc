#include "fruitpipe/parquet/parquet.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <set>

#include "fruitpipe/common/error.h"
#include "fruitpipe/parquet/column_reader.h"
#include "fruitpipe/parquet/column_writer.h"
#include "fruitpipe/parquet/metadata.h"
#include "fruitpipe/parquet/schema.h"

namespace fruitpipe::parquet {

namespace {

constexpr std::string_view kMagic = "PAR1";
constexpr std::string_view kEncryptedMagic = "PARE";

// Decoding may allocate up to this many bytes per byte of file, and at least kMinBudget:
// plenty for real files (fruitpipe's parts expand about 1:1, very repetitive columns a few
// hundred times), while a few kilobytes of hostile input cannot claim gigabytes.
constexpr std::uint64_t kBudgetPerFileByte = 1024;
constexpr std::uint64_t kMinBudget = 256ull << 20;

std::size_t ColumnRows(const ColumnData& data) {
  return std::visit(
      [](const auto& d) -> std::size_t {
        using D = std::decay_t<decltype(d)>;
        if constexpr (std::is_same_v<D, FloatListColumn> || std::is_same_v<D, DoubleListColumn>) {
          return d.rows();
        } else {
          return d.values.size();
        }
      },
      data);
}

std::size_t RawBytes(const ColumnData& data) {
  return std::visit(
      [](const auto& d) -> std::size_t {
        using D = std::decay_t<decltype(d)>;
        if constexpr (std::is_same_v<D, StringColumn>) {
          std::size_t n = 0;
          for (const auto& v : d.values) n += 4 + v.size();
          return n;
        } else {
          return d.values.size() * sizeof(d.values[0]) + d.values.size() / 4;
        }
      },
      data);
}

struct Footer {
  format::FileMetaData meta;
  std::string_view pages;  // the file before the footer
};

Footer ReadFooter(std::string_view file, std::string_view source) {
  const std::string what(source);
  if (file.size() < 12) {
    throw CorruptionError(what + ": " + std::to_string(file.size()) + " bytes is too small for a parquet file");
  }
  if (file.substr(0, 4) != kMagic) throw CorruptionError(what + ": not a parquet file (no PAR1 magic at the start)");
  const std::string_view tail = file.substr(file.size() - 4);
  if (tail == kEncryptedMagic) throw InvalidArgumentError(what + ": encrypted parquet files are not supported");
  if (tail != kMagic) throw CorruptionError(what + ": truncated or not a parquet file (no PAR1 magic at the end)");
  std::uint32_t len;
  std::memcpy(&len, file.data() + file.size() - 8, 4);
  if (len > file.size() - 12) {
    throw CorruptionError(what + ": footer length " + std::to_string(len) + " exceeds the file");
  }
  const std::size_t footer_start = file.size() - 8 - len;
  Footer f;
  f.meta = format::DecodeFileMetaData(file.substr(footer_start, len), source);
  f.pages = file.substr(0, footer_start);
  if (f.meta.encrypted) throw InvalidArgumentError(what + ": encrypted parquet files are not supported");
  if (f.meta.num_rows < 0) throw CorruptionError(what + ": negative row count");
  return f;
}

void CheckRowGroups(const Footer& f, const FileSchema& schema, std::string_view source) {
  const std::string what(source);
  std::int64_t rows = 0;
  for (std::size_t i = 0; i < f.meta.row_groups.size(); ++i) {
    const format::RowGroup& g = f.meta.row_groups[i];
    const std::string where = what + ": row group " + std::to_string(i);
    if (g.columns.size() != schema.num_leaves) {
      throw CorruptionError(where + " has " + std::to_string(g.columns.size()) + " column chunks for " +
                            std::to_string(schema.num_leaves) + " schema columns");
    }
    if (g.num_rows < 0 || g.num_rows > f.meta.num_rows - rows) {
      throw CorruptionError(where + " has more rows than the file declares");
    }
    rows += g.num_rows;
  }
  if (rows != f.meta.num_rows) {
    throw CorruptionError(what + ": row groups hold " + std::to_string(rows) + " rows, the footer says " +
                          std::to_string(f.meta.num_rows));
  }
}

}  // namespace

std::size_t Table::num_rows() const { return columns.empty() ? 0 : ColumnRows(columns.front().data); }

const Column* Table::Find(std::string_view name) const {
  for (const Column& c : columns) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

const Column& Table::Get(std::string_view name) const {
  const Column* c = Find(name);
  if (!c) throw NotFoundError("table has no column '" + std::string(name) + "'");
  return *c;
}

std::string WriteParquet(const Table& table, const WriteOptions& options) {
  if (table.columns.empty()) throw InvalidArgumentError("parquet: a table needs at least one column");
  if (options.row_group_rows == 0) throw InvalidArgumentError("parquet: row_group_rows must be positive");
  if (options.page_values == 0) throw InvalidArgumentError("parquet: page_values must be positive");

  std::vector<std::unique_ptr<ColumnWriter>> writers;
  std::set<std::string_view> names;
  std::size_t raw_bytes = 0;
  for (const Column& c : table.columns) {
    if (!names.insert(c.name).second) throw InvalidArgumentError("parquet: column '" + c.name + "' appears twice");
    writers.push_back(MakeColumnWriter(c, options));
    raw_bytes += RawBytes(c.data);
  }
  const std::size_t rows = writers.front()->rows();
  for (std::size_t i = 1; i < writers.size(); ++i) {
    if (writers[i]->rows() != rows) {
      throw InvalidArgumentError("parquet: column '" + table.columns[i].name + "' has " +
                                 std::to_string(writers[i]->rows()) + " rows, column '" + table.columns[0].name +
                                 "' has " + std::to_string(rows));
    }
  }

  format::FileMetaData meta;
  meta.version = 1;
  format::SchemaElement root;
  root.name = "schema";
  root.num_children = static_cast<std::int32_t>(writers.size());
  meta.schema.push_back(std::move(root));
  for (const auto& w : writers) w->AppendSchema(&meta.schema);
  meta.num_rows = static_cast<std::int64_t>(rows);
  for (const auto& [k, v] : table.metadata) meta.key_value_metadata.push_back({k, v});
  meta.created_by = options.created_by;
  meta.column_orders.assign(writers.size(), 1);  // TYPE_ORDER for every leaf

  PageCodec codec;
  std::string file;
  file.reserve(raw_bytes + raw_bytes / 16 + 4096);
  file.append(kMagic);
  for (std::size_t begin = 0; begin < rows; begin += options.row_group_rows) {
    const std::size_t end = std::min(rows, begin + options.row_group_rows);
    format::RowGroup g;
    g.file_offset = static_cast<std::int64_t>(file.size());
    g.num_rows = static_cast<std::int64_t>(end - begin);
    std::int64_t compressed = 0;
    for (const auto& w : writers) {
      format::ColumnChunk chunk = w->WriteChunk(begin, end, &codec, &file);
      g.total_byte_size += chunk.meta_data->total_uncompressed_size;
      compressed += chunk.meta_data->total_compressed_size;
      g.columns.push_back(std::move(chunk));
    }
    g.total_compressed_size = compressed;
    if (meta.row_groups.size() <= static_cast<std::size_t>(std::numeric_limits<std::int16_t>::max())) {
      g.ordinal = static_cast<std::int16_t>(meta.row_groups.size());
    }
    meta.row_groups.push_back(std::move(g));
  }

  const std::size_t footer_start = file.size();
  format::AppendFileMetaData(meta, &file);
  const auto footer_len = static_cast<std::uint32_t>(file.size() - footer_start);
  file.append(reinterpret_cast<const char*>(&footer_len), 4);
  file.append(kMagic);
  return file;
}

Table ReadParquet(std::string_view file, const std::vector<std::string>& columns, std::string_view source) {
  const Footer f = ReadFooter(file, source);
  const FileSchema schema = InterpretSchema(f.meta.schema, source);
  CheckRowGroups(f, schema, source);

  std::vector<const ColumnSchema*> selected;
  if (columns.empty()) {
    for (const ColumnSchema& c : schema.columns) selected.push_back(&c);
  } else {
    for (const std::string& name : columns) {
      auto it = std::find_if(schema.columns.begin(), schema.columns.end(),
                             [&](const ColumnSchema& c) { return c.name == name; });
      if (it == schema.columns.end()) throw NotFoundError(std::string(source) + ": no column '" + name + "'");
      if (std::find(selected.begin(), selected.end(), &*it) != selected.end()) {
        throw InvalidArgumentError(std::string(source) + ": column '" + name + "' requested twice");
      }
      selected.push_back(&*it);
    }
  }

  std::vector<std::unique_ptr<ColumnReader>> readers;
  for (const ColumnSchema* c : selected) {
    readers.push_back(MakeColumnReader(*c, std::string(source) + ": column '" + c->name + "'"));
  }
  DecodeContext ctx(std::max<std::uint64_t>(kMinBudget, kBudgetPerFileByte * file.size()), source);
  for (std::size_t g = 0; g < f.meta.row_groups.size(); ++g) {
    const format::RowGroup& group = f.meta.row_groups[g];
    for (std::size_t i = 0; i < selected.size(); ++i) {
      const ColumnSchema& c = *selected[i];
      const format::ColumnChunk& chunk = group.columns[c.first_leaf];
      const std::string where = std::string(source) + ": column '" + c.name + "' in row group " + std::to_string(g);
      if (chunk.file_path) throw InvalidArgumentError(where + ": column data in another file is not supported");
      if (!chunk.meta_data) throw CorruptionError(where + ": column chunk has no metadata");
      if (chunk.meta_data->path_in_schema != c.leaf_path) {
        throw CorruptionError(where + ": column chunk path does not match the schema");
      }
      readers[i]->ReadRowGroup(f.pages, *chunk.meta_data, group.num_rows, &ctx);
    }
  }

  Table table;
  for (auto& r : readers) table.columns.push_back(r->Finish());
  for (const auto& kv : f.meta.key_value_metadata) table.metadata[kv.key] = kv.value.value_or("");
  return table;
}

FileSummary ReadSummary(std::string_view file, std::string_view source) {
  const Footer f = ReadFooter(file, source);
  const FileSchema schema = InterpretSchema(f.meta.schema, source);
  CheckRowGroups(f, schema, source);
  FileSummary s;
  s.num_rows = f.meta.num_rows;
  s.num_row_groups = f.meta.row_groups.size();
  s.created_by = f.meta.created_by.value_or("");
  for (const ColumnSchema& c : schema.columns) s.schema.emplace_back(c.name, c.description);
  for (const auto& kv : f.meta.key_value_metadata) s.metadata[kv.key] = kv.value.value_or("");
  return s;
}

}  // namespace fruitpipe::parquet
