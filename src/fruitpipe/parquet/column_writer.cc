#include "fruitpipe/parquet/column_writer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "fruitpipe/common/error.h"
#include "fruitpipe/parquet/chunk_writer.h"

namespace fruitpipe::parquet {

using format::ConvertedType;
using format::LogicalKind;
using format::Repetition;
using format::SchemaElement;
using format::Statistics;

namespace {

// Pages also end at this many value bytes, so long strings cannot make one huge page.
constexpr std::size_t kMaxPageBytes = 1 << 20;
// String min/max statistics are kept only up to this length: longer ones would bloat the
// footer, and truncating them needs care (a truncated max must still be an upper bound).
constexpr std::size_t kMaxStatBytes = 1024;

format::Codec ToCodec(Compression c) {
  switch (c) {
    case Compression::kUncompressed: return format::Codec::kUncompressed;
    case Compression::kSnappy: return format::Codec::kSnappy;
    case Compression::kZstd: return format::Codec::kZstd;
  }
  throw InvalidArgumentError("parquet: unknown compression " + std::to_string(static_cast<int>(c)));
}

template <typename T>
std::string PlainBytes(T v) {
  std::string s(sizeof(T), '\0');
  std::memcpy(s.data(), &v, sizeof(T));
  return s;
}

template <typename T>
void AppendPlain(const T* values, std::size_t n, std::string* out) {
  out->append(reinterpret_cast<const char*>(values), n * sizeof(T));
}

SchemaElement Leaf(const std::string& name, format::Type type, Repetition rep) {
  SchemaElement e;
  e.name = name;
  e.type = type;
  e.repetition_type = rep;
  return e;
}

class WriterBase : public ColumnWriter {
 protected:
  WriterBase(const Column& column, const WriteOptions& options)
      : name_(column.name), codec_(ToCodec(options.compression)), page_values_(options.page_values) {}

  std::string name_;
  format::Codec codec_;
  std::size_t page_values_;
};

// ---------------------------------------------------------------- int32, int64, double

template <typename T, format::Type kType>
class FixedWidthWriter final : public WriterBase {
 public:
  FixedWidthWriter(const Column& column, const std::vector<T>& values, const WriteOptions& options)
      : WriterBase(column, options), values_(values) {}

  std::size_t rows() const override { return values_.size(); }

  void AppendSchema(std::vector<SchemaElement>* schema) const override {
    SchemaElement e = Leaf(name_, kType, Repetition::kRequired);
    schema->push_back(std::move(e));
  }

  format::ColumnChunk WriteChunk(std::size_t begin, std::size_t end, PageCodec* codec, std::string* file) override {
    ChunkWriter cw(file, codec, codec_, kType, {name_}, 0, 0);
    const std::size_t per_page = std::max<std::size_t>(1, std::min(page_values_, kMaxPageBytes / sizeof(T)));
    for (std::size_t p = begin; p < end; p += per_page) {
      const std::size_t q = std::min(end, p + per_page);
      AppendPlain(values_.data() + p, q - p, cw.BeginPage());
      cw.EndPage(q - p);
    }
    return cw.Finish(Stats(begin, end));
  }

 private:
  Statistics Stats(std::size_t begin, std::size_t end) const {
    Statistics s;
    s.null_count = 0;
    bool any = false;
    T lo{}, hi{};
    std::int64_t nans = 0;
    for (std::size_t i = begin; i < end; ++i) {
      const T v = values_[i];
      if constexpr (std::is_floating_point_v<T>) {
        if (std::isnan(v)) {
          ++nans;
          continue;
        }
      }
      if (!any) {
        lo = hi = v;
        any = true;
      } else {
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
    }
    if constexpr (std::is_floating_point_v<T>) {
      s.nan_count = nans;
      // The spec's rule for zeros under TYPE_ORDER: min is written as -0.0, max as +0.0.
      if (any && lo == 0) lo = -T{0};
      if (any && hi == 0) hi = T{0};
    }
    if (any) {
      s.min_value = s.min = PlainBytes(lo);
      s.max_value = s.max = PlainBytes(hi);
    }
    return s;
  }

  const std::vector<T>& values_;
};

// ---------------------------------------------------------------- string

class StringWriter final : public WriterBase {
 public:
  StringWriter(const Column& column, const StringColumn& data, const WriteOptions& options)
      : WriterBase(column, options), data_(data), optional_(data.nullable || !data.valid.empty()) {
    if (!data.valid.empty() && data.valid.size() != data.values.size()) {
      throw InvalidArgumentError("parquet: column '" + name_ + "' has " + std::to_string(data.values.size()) +
                                 " values but " + std::to_string(data.valid.size()) + " validity flags");
    }
    if (!data.nullable && std::find(data.valid.begin(), data.valid.end(), false) != data.valid.end()) {
      throw InvalidArgumentError("parquet: column '" + name_ + "' is not nullable but holds nulls");
    }
    for (const auto& v : data.values) {
      if (v.size() > std::numeric_limits<std::uint32_t>::max()) {
        throw InvalidArgumentError("parquet: a value of column '" + name_ + "' exceeds 4 GiB");
      }
    }
  }

  std::size_t rows() const override { return data_.values.size(); }

  void AppendSchema(std::vector<SchemaElement>* schema) const override {
    SchemaElement e = Leaf(name_, format::Type::kByteArray, optional_ ? Repetition::kOptional : Repetition::kRequired);
    e.converted_type = ConvertedType::kUtf8;
    e.logical_type = format::LogicalType{LogicalKind::kString, 1};
    schema->push_back(std::move(e));
  }

  format::ColumnChunk WriteChunk(std::size_t begin, std::size_t end, PageCodec* codec, std::string* file) override {
    ChunkWriter cw(file, codec, codec_, format::Type::kByteArray, {name_}, optional_ ? 1 : 0, 0);
    for (std::size_t p = begin; p < end;) {
      std::size_t q = p, bytes = 0;
      while (q < end && (q == p || (q - p < page_values_ && bytes < kMaxPageBytes))) {
        if (Valid(q)) bytes += 4 + data_.values[q].size();
        ++q;
      }
      std::string* body = cw.BeginPage();
      if (optional_) {
        defs_.resize(q - p);
        for (std::size_t i = p; i < q; ++i) defs_[i - p] = Valid(i) ? 1 : 0;
        cw.AppendLevels(defs_.data(), defs_.size(), 1);
      }
      body->reserve(body->size() + bytes);
      for (std::size_t i = p; i < q; ++i) {
        if (!Valid(i)) continue;
        const std::string& v = data_.values[i];
        const auto len = static_cast<std::uint32_t>(v.size());
        body->append(reinterpret_cast<const char*>(&len), 4);
        body->append(v);
      }
      cw.EndPage(q - p);
      p = q;
    }
    return cw.Finish(Stats(begin, end));
  }

 private:
  bool Valid(std::size_t i) const { return data_.valid.empty() || data_.valid[i]; }

  Statistics Stats(std::size_t begin, std::size_t end) const {
    Statistics s;
    std::int64_t nulls = 0;
    const std::string* lo = nullptr;
    const std::string* hi = nullptr;
    for (std::size_t i = begin; i < end; ++i) {
      if (!Valid(i)) {
        ++nulls;
        continue;
      }
      const std::string& v = data_.values[i];
      // std::string compares bytes as unsigned char: the UTF8 order the spec asks for.
      if (!lo || v < *lo) lo = &v;
      if (!hi || v > *hi) hi = &v;
    }
    s.null_count = nulls;
    if (lo && lo->size() <= kMaxStatBytes && hi->size() <= kMaxStatBytes) {
      s.min_value = *lo;
      s.max_value = *hi;
    }
    return s;
  }

  const StringColumn& data_;
  bool optional_;
  std::vector<std::uint8_t> defs_;
};

// ---------------------------------------------------------------- list<float>, list<double>

// Standard 3-level LIST: optional group <name> (LIST) { repeated group list {
// optional <type> element; } }. Levels: def 0 = null list (never written), 1 = empty list,
// 2 = null element (never written), 3 = element; rep 0 starts a row, 1 continues it.
template <typename T, format::Type kType>
class ListWriter final : public WriterBase {
 public:
  ListWriter(const Column& column, const ListColumn<T>& data, const WriteOptions& options)
      : WriterBase(column, options), data_(data) {
    const auto& off = data.offsets;
    if (off.empty() || off.front() != 0 || off.back() != data.values.size()) {
      throw InvalidArgumentError("parquet: list column '" + name_ + "' has offsets that do not span its values");
    }
    for (std::size_t i = 1; i < off.size(); ++i) {
      if (off[i] < off[i - 1]) {
        throw InvalidArgumentError("parquet: list column '" + name_ + "' has decreasing offsets at row " +
                                   std::to_string(i - 1));
      }
    }
  }

  std::size_t rows() const override { return data_.rows(); }

  void AppendSchema(std::vector<SchemaElement>* schema) const override {
    SchemaElement outer;
    outer.name = name_;
    outer.repetition_type = Repetition::kOptional;
    outer.num_children = 1;
    outer.converted_type = ConvertedType::kList;
    outer.logical_type = format::LogicalType{LogicalKind::kList, 3};
    schema->push_back(std::move(outer));
    SchemaElement list;
    list.name = "list";
    list.repetition_type = Repetition::kRepeated;
    list.num_children = 1;
    schema->push_back(std::move(list));
    schema->push_back(Leaf("element", kType, Repetition::kOptional));
  }

  format::ColumnChunk WriteChunk(std::size_t begin, std::size_t end, PageCodec* codec, std::string* file) override {
    ChunkWriter cw(file, codec, codec_, kType, {name_, "list", "element"}, 3, 1);
    const auto& off = data_.offsets;
    const std::size_t per_page = std::max<std::size_t>(1, std::min(page_values_, kMaxPageBytes / sizeof(T)));
    for (std::size_t p = begin; p < end;) {
      // Pages hold whole rows (readers and page indexes expect rows not to straddle pages).
      std::size_t q = p, entries = 0;
      while (q < end) {
        const std::size_t n = std::max<std::size_t>(1, off[q + 1] - off[q]);
        if (q > p && entries + n > per_page) break;
        entries += n;
        ++q;
      }
      reps_.resize(entries);
      defs_.resize(entries);
      std::size_t k = 0;
      for (std::size_t r = p; r < q; ++r) {
        const std::size_t n = off[r + 1] - off[r];
        if (n == 0) {
          reps_[k] = 0;
          defs_[k++] = 1;
          continue;
        }
        std::memset(reps_.data() + k, 1, n);
        reps_[k] = 0;
        std::memset(defs_.data() + k, 3, n);
        k += n;
      }
      std::string* body = cw.BeginPage();
      cw.AppendLevels(reps_.data(), entries, 1);
      cw.AppendLevels(defs_.data(), entries, 3);
      AppendPlain(data_.values.data() + off[p], off[q] - off[p], body);
      cw.EndPage(entries);
      p = q;
    }
    return cw.Finish(std::nullopt);
  }

 private:
  const ListColumn<T>& data_;
  std::vector<std::uint8_t> reps_, defs_;
};

}  // namespace

std::unique_ptr<ColumnWriter> MakeColumnWriter(const Column& column, const WriteOptions& options) {
  if (column.name.empty()) throw InvalidArgumentError("parquet: a column has an empty name");
  return std::visit(
      [&](const auto& d) -> std::unique_ptr<ColumnWriter> {
        using D = std::decay_t<decltype(d)>;
        if constexpr (std::is_same_v<D, StringColumn>) {
          return std::make_unique<StringWriter>(column, d, options);
        } else if constexpr (std::is_same_v<D, Int32Column>) {
          return std::make_unique<FixedWidthWriter<std::int32_t, format::Type::kInt32>>(column, d.values, options);
        } else if constexpr (std::is_same_v<D, Int64Column>) {
          return std::make_unique<FixedWidthWriter<std::int64_t, format::Type::kInt64>>(column, d.values, options);
        } else if constexpr (std::is_same_v<D, DoubleColumn>) {
          return std::make_unique<FixedWidthWriter<double, format::Type::kDouble>>(column, d.values, options);
        } else if constexpr (std::is_same_v<D, FloatListColumn>) {
          return std::make_unique<ListWriter<float, format::Type::kFloat>>(column, d, options);
        } else {
          static_assert(std::is_same_v<D, DoubleListColumn>);
          return std::make_unique<ListWriter<double, format::Type::kDouble>>(column, d, options);
        }
      },
      column.data);
}

}  // namespace fruitpipe::parquet
