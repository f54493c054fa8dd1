#include "fruitpipe/parquet/column_reader.h"

#include <algorithm>

#include "fruitpipe/common/error.h"

namespace fruitpipe::parquet {

namespace {

class ReaderBase : public ColumnReader {
 public:
  ReaderBase(const ColumnSchema& schema, std::string what)
      : schema_(schema), what_(std::move(what)), leaf_{schema.physical, schema.max_def, schema.max_rep} {}

 protected:
  [[noreturn]] void Corrupt(const std::string& cause) const { throw CorruptionError(what_ + ": " + cause); }
  [[noreturn]] void Unrepresentable(const std::string& cause) const {
    throw InvalidArgumentError(what_ + ": " + cause);
  }
  void CheckRows(std::size_t got, std::int64_t want) const {
    if (static_cast<std::int64_t>(got) != want) {
      Corrupt("holds " + std::to_string(got) + " rows in a row group of " + std::to_string(want));
    }
  }

  ColumnSchema schema_;
  std::string what_;
  LeafColumn leaf_;
  ChunkLevels levels_;  // reused per row group
};

// ---------------------------------------------------------------- int32, int64, double

template <typename T, typename ColumnT>
class FixedWidthReader final : public ReaderBase {
 public:
  using ReaderBase::ReaderBase;

  void ReadRowGroup(std::string_view pages, const format::ColumnMetaData& meta, std::int64_t num_rows,
                    DecodeContext* ctx) override {
    levels_ = {};
    const std::size_t before = data_.values.size();
    ReadColumnChunk(pages, meta, leaf_, ctx, what_, &levels_, &data_.values);
    CheckRows(levels_.entries, num_rows);
    if (data_.values.size() - before != levels_.entries) {
      Unrepresentable("holds nulls, which fruitpipe's " + schema_.description + " columns cannot represent");
    }
  }

  Column Finish() override { return Column{schema_.name, std::move(data_)}; }

 private:
  ColumnT data_;
};

// ---------------------------------------------------------------- string

class StringReader final : public ReaderBase {
 public:
  StringReader(const ColumnSchema& schema, std::string what) : ReaderBase(schema, std::move(what)) {
    data_.nullable = schema.optional;
  }

  void ReadRowGroup(std::string_view pages, const format::ColumnMetaData& meta, std::int64_t num_rows,
                    DecodeContext* ctx) override {
    levels_ = {};
    present_.clear();
    ReadColumnChunk(pages, meta, leaf_, ctx, what_, &levels_, &present_);
    CheckRows(levels_.entries, num_rows);
    if (!schema_.optional) {
      std::move(present_.begin(), present_.end(), std::back_inserter(data_.values));
      return;
    }
    // Spread the non-null values over the rows; nulls hold "" and a false flag.
    std::size_t next = 0;
    for (std::uint8_t def : levels_.defs) {
      const bool valid = def == 1;
      data_.valid.push_back(valid);
      data_.values.push_back(valid ? std::move(present_[next++]) : std::string());
    }
  }

  Column Finish() override { return Column{schema_.name, std::move(data_)}; }

 private:
  StringColumn data_;
  std::vector<std::string> present_;
};

// ---------------------------------------------------------------- list<float>, list<double>

template <typename T>
class ListReader final : public ReaderBase {
 public:
  using ReaderBase::ReaderBase;

  void ReadRowGroup(std::string_view pages, const format::ColumnMetaData& meta, std::int64_t num_rows,
                    DecodeContext* ctx) override {
    levels_ = {};
    std::size_t count = data_.values.size();
    ReadColumnChunk(pages, meta, leaf_, ctx, what_, &levels_, &data_.values);
    const auto max_def = static_cast<std::uint8_t>(schema_.max_def);
    const auto empty = static_cast<std::uint8_t>(schema_.def_empty_list);
    const std::size_t n = levels_.entries;
    std::size_t rows = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint8_t def = levels_.defs[i];  // a list leaf always has max_def >= 1
      if (levels_.reps[i] == 0) {
        if (i > 0) data_.offsets.push_back(count);
        ++rows;
        if (def == empty) continue;  // an empty list: one entry, no value
        if (def < empty) Unrepresentable("holds a null list, which fruitpipe's list columns cannot represent");
      } else if (i == 0) {
        Corrupt("column chunk starts in the middle of a row");
      } else if (def <= empty) {
        Corrupt("an empty or null list continues a row");
      }
      if (def != max_def) Unrepresentable("holds a null list element, which fruitpipe's list columns cannot represent");
      ++count;
    }
    if (n > 0) data_.offsets.push_back(count);
    CheckRows(rows, num_rows);
    if (count != data_.values.size()) Corrupt("list values do not match their levels");
  }

  Column Finish() override { return Column{schema_.name, std::move(data_)}; }

 private:
  ListColumn<T> data_;
};

}  // namespace

std::unique_ptr<ColumnReader> MakeColumnReader(const ColumnSchema& schema, std::string what) {
  switch (schema.kind) {
    case ColumnKind::kString: return std::make_unique<StringReader>(schema, std::move(what));
    case ColumnKind::kInt32: return std::make_unique<FixedWidthReader<std::int32_t, Int32Column>>(schema, std::move(what));
    case ColumnKind::kInt64: return std::make_unique<FixedWidthReader<std::int64_t, Int64Column>>(schema, std::move(what));
    case ColumnKind::kDouble: return std::make_unique<FixedWidthReader<double, DoubleColumn>>(schema, std::move(what));
    case ColumnKind::kFloatList: return std::make_unique<ListReader<float>>(schema, std::move(what));
    case ColumnKind::kDoubleList: return std::make_unique<ListReader<double>>(schema, std::move(what));
    case ColumnKind::kUnsupported: break;
  }
  throw InvalidArgumentError(what + ": column type " + schema.description + " is not supported");
}

}  // namespace fruitpipe::parquet
