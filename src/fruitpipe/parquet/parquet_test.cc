// Writer -> reader round trips for every column kind and compression, statistics, summaries,
// column selection and the writer's input checks.
#include "fruitpipe/parquet/parquet.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "fruitpipe/common/error.h"
#include "fruitpipe/common/testing.h"
#include "fruitpipe/parquet/chunk_writer.h"
#include "fruitpipe/parquet/metadata.h"
#include "fruitpipe/parquet/parquet_testutil.h"

namespace fruitpipe::parquet {
namespace {

using testutil::ExpectTablesEqual;
using testutil::RandomTable;
using testutil::RandomTableOptions;

format::FileMetaData Footer(const std::string& file) {
  std::uint32_t len;
  std::memcpy(&len, file.data() + file.size() - 8, 4);
  return format::DecodeFileMetaData(std::string_view(file).substr(file.size() - 8 - len, len), "test");
}

struct RoundTripCase {
  Compression compression;
  std::size_t rows;
  std::size_t row_group_rows;
  std::size_t page_values;
};

class RoundTripTest : public ::testing::TestWithParam<RoundTripCase> {};

TEST_P(RoundTripTest, EveryColumnKind) {
  const RoundTripCase& c = GetParam();
  for (std::uint32_t seed = 1; seed <= 3; ++seed) {
    RandomTableOptions o;
    o.rows = c.rows;
    o.seed = seed;
    o.special_floats = seed == 3;
    Table t = RandomTable(o);
    t.metadata["k"] = "v";
    t.metadata["empty"] = "";
    WriteOptions w;
    w.compression = c.compression;
    w.row_group_rows = c.row_group_rows;
    w.page_values = c.page_values;
    const std::string file = WriteParquet(t, w);
    ExpectTablesEqual(t, ReadParquet(file));

    const FileSummary s = ReadSummary(file);
    EXPECT_EQ(s.num_rows, static_cast<std::int64_t>(c.rows));
    EXPECT_EQ(s.num_row_groups, (c.rows + c.row_group_rows - 1) / c.row_group_rows);
    const format::FileMetaData meta = Footer(file);
    for (const auto& g : meta.row_groups) {
      for (const auto& chunk : g.columns) {
        EXPECT_EQ(static_cast<int>(chunk.meta_data->codec), static_cast<int>(c.compression == Compression::kSnappy ? 1
                                                                              : c.compression == Compression::kZstd ? 6
                                                                                                                    : 0));
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Parquet, RoundTripTest,
    ::testing::Values(RoundTripCase{Compression::kSnappy, 300, 1024, 64 * 1024},
                      RoundTripCase{Compression::kZstd, 300, 1024, 64 * 1024},
                      RoundTripCase{Compression::kUncompressed, 300, 1024, 64 * 1024},
                      // Many row groups and pages: pages of a few values, rows split evenly or not.
                      RoundTripCase{Compression::kSnappy, 257, 50, 7},
                      RoundTripCase{Compression::kZstd, 257, 64, 1},
                      RoundTripCase{Compression::kUncompressed, 1000, 333, 100}));

TEST(ParquetTest, ResultsShapedTableRoundTrips) {
  for (bool subjects : {false, true}) {
    const Table t = testutil::ResultsTable(64, 1280, 0, subjects, 7);
    const std::string file = WriteParquet(t);
    ExpectTablesEqual(t, ReadParquet(file, {}, "part-00000.snappy.parquet"));
    const FileSummary s = ReadSummary(file);
    const std::vector<std::pair<std::string, std::string>> want = {
        {"path", "string"},         {"label", "string"},         {"features", "list<float>"},
        {"image_sha256", "string"}, {"width", "int32"},          {"height", "int32"},
        {"subject_id", "string (nullable)"}};
    EXPECT_EQ(s.schema, want);
    EXPECT_EQ(s.created_by, "fruitpipe");
    EXPECT_EQ(s.metadata.at("fruitpipe.run_id"), "test-run");
  }
}

TEST(ParquetTest, EmptyListsAllNullsAndLongStrings) {
  Table t;
  StringColumn s, n;
  n.nullable = true;
  FloatListColumn fl;
  for (int r = 0; r < 50; ++r) {
    // Strings longer than a page's byte budget end up alone in their page.
    s.values.push_back(r % 10 == 0 ? std::string(3 << 20, static_cast<char>('a' + r % 26)) : std::string());
    n.values.push_back("");
    n.valid.push_back(false);
    const float v[] = {1.0f, 2.0f};
    fl.AppendRow(v, r % 4 == 0 ? 2 : 0);
  }
  t.columns.push_back({"s", std::move(s)});
  t.columns.push_back({"n", std::move(n)});
  t.columns.push_back({"fl", std::move(fl)});
  WriteOptions o;
  o.row_group_rows = 16;
  for (Compression c : {Compression::kSnappy, Compression::kZstd, Compression::kUncompressed}) {
    o.compression = c;
    ExpectTablesEqual(t, ReadParquet(WriteParquet(t, o)));
  }
}

TEST(ParquetTest, ZeroRowsAndOneRow) {
  RandomTableOptions o;
  o.rows = 0;
  Table empty = RandomTable(o);
  const std::string file = WriteParquet(empty);
  ExpectTablesEqual(empty, ReadParquet(file));
  EXPECT_EQ(ReadSummary(file).num_row_groups, 0u);
  o.rows = 1;
  Table one = RandomTable(o);
  ExpectTablesEqual(one, ReadParquet(WriteParquet(one)));
}

TEST(ParquetTest, ColumnSelection) {
  RandomTableOptions o;
  o.rows = 40;
  const Table t = RandomTable(o);
  const std::string file = WriteParquet(t);
  const Table sel = ReadParquet(file, {"fl", "s"});
  ASSERT_EQ(sel.columns.size(), 2u);
  EXPECT_EQ(sel.columns[0].name, "fl");
  EXPECT_EQ(sel.columns[1].name, "s");
  Table want;
  want.columns = {*t.Find("fl"), *t.Find("s")};
  want.metadata = t.metadata;
  ExpectTablesEqual(want, sel);
  EXPECT_EQ(sel.num_rows(), 40u);
  EXPECT_THROW(ReadParquet(file, {"nope"}), NotFoundError);
  EXPECT_THROW(ReadParquet(file, {"s", "s"}), InvalidArgumentError);
  EXPECT_THROW(sel.Get("i32"), NotFoundError);
  EXPECT_EQ(sel.Find("i32"), nullptr);
}

TEST(ParquetTest, StatisticsWhereCheap) {
  Table t;
  t.columns.push_back({"i", Int32Column{{5, -3, 12, 0}}});
  t.columns.push_back({"l", Int64Column{{7, 9, -100, 4}}});
  t.columns.push_back({"d", DoubleColumn{{0.5, std::numeric_limits<double>::quiet_NaN(), -2.25, 0.0}}});
  StringColumn s;
  s.nullable = true;
  s.values = {"pear", "", "apple", "Äpfel"};
  s.valid = {true, false, true, true};
  t.columns.push_back({"s", std::move(s)});
  const format::FileMetaData meta = Footer(WriteParquet(t));
  ASSERT_EQ(meta.row_groups.size(), 1u);
  const auto& cols = meta.row_groups[0].columns;
  auto i32 = [](const std::optional<std::string>& s) {
    std::int32_t v;
    EXPECT_EQ(s->size(), 4u);
    std::memcpy(&v, s->data(), 4);
    return v;
  };
  auto f64 = [](const std::optional<std::string>& s) {
    double v;
    EXPECT_EQ(s->size(), 8u);
    std::memcpy(&v, s->data(), 8);
    return v;
  };
  const auto& si = *cols[0].meta_data->statistics;
  EXPECT_EQ(i32(si.min_value), -3);
  EXPECT_EQ(i32(si.max_value), 12);
  EXPECT_EQ(si.null_count, 0);
  const auto& sl = *cols[1].meta_data->statistics;
  std::int64_t lo, hi;
  std::memcpy(&lo, sl.min_value->data(), 8);
  std::memcpy(&hi, sl.max_value->data(), 8);
  EXPECT_EQ(lo, -100);
  EXPECT_EQ(hi, 9);
  const auto& sd = *cols[2].meta_data->statistics;
  EXPECT_EQ(f64(sd.min_value), -2.25);
  EXPECT_EQ(f64(sd.max_value), 0.5);
  EXPECT_EQ(sd.nan_count, 1);
  const auto& ss = *cols[3].meta_data->statistics;
  EXPECT_EQ(*ss.min_value, "apple");
  EXPECT_EQ(*ss.max_value, "Äpfel");  // unsigned byte order: 0xC3 sorts after 'p'
  EXPECT_EQ(ss.null_count, 1);
  EXPECT_EQ(meta.column_orders, std::vector<std::int16_t>(4, 1));
}

TEST(ParquetTest, FloatStatisticsFollowTheZeroRule) {
  Table t;
  t.columns.push_back({"d", DoubleColumn{{0.0, 1.0}}});
  t.columns.push_back({"n", DoubleColumn{{-1.0, -0.0}}});
  const format::FileMetaData meta = Footer(WriteParquet(t));
  double v;
  std::memcpy(&v, meta.row_groups[0].columns[0].meta_data->statistics->min_value->data(), 8);
  EXPECT_TRUE(std::signbit(v)) << "a zero min is written as -0.0";
  std::memcpy(&v, meta.row_groups[0].columns[1].meta_data->statistics->max_value->data(), 8);
  EXPECT_FALSE(std::signbit(v)) << "a zero max is written as +0.0";
}

TEST(ParquetTest, WriterRejectsBadTables) {
  WriteOptions o;
  EXPECT_THROW(WriteParquet(Table{}), InvalidArgumentError);
  Table ragged;
  ragged.columns.push_back({"a", Int32Column{{1, 2}}});
  ragged.columns.push_back({"b", Int32Column{{1}}});
  EXPECT_THROW(WriteParquet(ragged), InvalidArgumentError);
  Table dup;
  dup.columns.push_back({"a", Int32Column{{1}}});
  dup.columns.push_back({"a", Int32Column{{1}}});
  EXPECT_THROW(WriteParquet(dup), InvalidArgumentError);
  Table bad_offsets;
  FloatListColumn fl;
  fl.values = {1, 2};
  fl.offsets = {0, 3};
  bad_offsets.columns.push_back({"f", fl});
  EXPECT_THROW(WriteParquet(bad_offsets), InvalidArgumentError);
  Table nulls_not_nullable;
  StringColumn s;
  s.values = {"a"};
  s.valid = {false};
  nulls_not_nullable.columns.push_back({"s", s});
  EXPECT_THROW(WriteParquet(nulls_not_nullable), InvalidArgumentError);
  Table short_valid;
  s.nullable = true;
  s.values = {"a", "b"};
  short_valid.columns.push_back({"s", s});
  EXPECT_THROW(WriteParquet(short_valid), InvalidArgumentError);
  Table ok;
  ok.columns.push_back({"a", Int32Column{{1}}});
  o.row_group_rows = 0;
  EXPECT_THROW(WriteParquet(ok, o), InvalidArgumentError);
  o.row_group_rows = 1;
  o.page_values = 0;
  EXPECT_THROW(WriteParquet(ok, o), InvalidArgumentError);
}

TEST(ParquetTest, PagesAreBoundedAndHoldWholeRows) {
  // 10 rows of 300 floats with 1000-value pages: 3 rows per page, never a split row.
  FloatListColumn fl;
  std::vector<float> row(300, 1.5f);
  for (int r = 0; r < 10; ++r) fl.AppendRow(row.data(), row.size());
  Table t;
  t.columns.push_back({"f", fl});
  WriteOptions o;
  o.page_values = 1000;
  o.compression = Compression::kUncompressed;
  const std::string file = WriteParquet(t, o);
  const format::FileMetaData meta = Footer(file);
  const auto& md = *meta.row_groups[0].columns[0].meta_data;
  std::size_t pos = static_cast<std::size_t>(md.data_page_offset);
  std::vector<int> page_values;
  while (pos < static_cast<std::size_t>(md.data_page_offset + md.total_compressed_size)) {
    std::size_t consumed = 0;
    const format::PageHeader h = format::DecodePageHeader(std::string_view(file).substr(pos), "test", &consumed);
    page_values.push_back(h.data_page_header->num_values);
    pos += consumed + h.compressed_page_size;
  }
  EXPECT_EQ(page_values, (std::vector<int>{900, 900, 900, 300}));
  ExpectTablesEqual(t, ReadParquet(file));
}

std::string Fixture(const std::string& name) {
  const auto path = fruitpipe::testing::SourceDir() / "src/fruitpipe/parquet/testdata" / name;
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(f.good()) << "missing fixture " << path;
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST(ParquetTest, ReadsDuckDbFixtures) {
  for (const char* name : {"duckdb_v1_gzip.parquet", "duckdb_v2_snappy.parquet"}) {
    SCOPED_TRACE(name);
    const std::string file = Fixture(name);
    Table t = ReadParquet(file, {}, name);
    t.metadata.clear();  // DuckDB's own key/value metadata, if any
    ExpectTablesEqual(testutil::DuckDbFixtureTable(), t);
  }
}

// The LIST forms other writers use, built by hand: the legacy 2-level form (the repeated
// field is the element) and required outer groups or elements.
std::string HandBuiltListFile(bool two_level, bool outer_optional, bool element_optional,
                              const std::vector<std::vector<float>>& rows) {
  using format::Repetition;
  std::vector<format::SchemaElement> schema(3);
  schema[0].name = "schema";
  schema[0].num_children = 1;
  schema[1].name = "f";
  schema[1].repetition_type = outer_optional ? Repetition::kOptional : Repetition::kRequired;
  schema[1].num_children = 1;
  schema[1].converted_type = format::ConvertedType::kList;
  schema[2].name = two_level ? "element" : "list";
  schema[2].repetition_type = Repetition::kRepeated;
  std::vector<std::string> path = {"f", schema[2].name};
  if (two_level) {
    schema[2].type = format::Type::kFloat;
  } else {
    schema[2].num_children = 1;
    format::SchemaElement e;
    e.name = "element";
    e.type = format::Type::kFloat;
    e.repetition_type = element_optional ? Repetition::kOptional : Repetition::kRequired;
    schema.push_back(e);
    path.push_back("element");
  }
  const int empty = outer_optional ? 1 : 0;
  const int max_def = empty + 1 + (!two_level && element_optional ? 1 : 0);
  std::vector<std::uint8_t> reps, defs;
  std::vector<float> values;
  for (const auto& row : rows) {
    if (row.empty()) {
      reps.push_back(0);
      defs.push_back(static_cast<std::uint8_t>(empty));
    }
    for (std::size_t i = 0; i < row.size(); ++i) {
      reps.push_back(i == 0 ? 0 : 1);
      defs.push_back(static_cast<std::uint8_t>(max_def));
      values.push_back(row[i]);
    }
  }
  std::string file = "PAR1";
  PageCodec codec;
  ChunkWriter cw(&file, &codec, format::Codec::kUncompressed, format::Type::kFloat, path, max_def, 1);
  std::string* body = cw.BeginPage();
  cw.AppendLevels(reps.data(), reps.size(), 1);
  cw.AppendLevels(defs.data(), defs.size(), max_def);
  body->append(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
  cw.EndPage(reps.size());
  format::FileMetaData meta;
  meta.schema = schema;
  meta.num_rows = static_cast<std::int64_t>(rows.size());
  format::RowGroup g;
  g.num_rows = meta.num_rows;
  g.columns.push_back(cw.Finish(std::nullopt));
  meta.row_groups.push_back(g);
  const std::size_t footer_start = file.size();
  format::AppendFileMetaData(meta, &file);
  const auto len = static_cast<std::uint32_t>(file.size() - footer_start);
  file.append(reinterpret_cast<const char*>(&len), 4);
  return file + "PAR1";
}

TEST(ParquetTest, ReadsOtherListForms) {
  const std::vector<std::vector<float>> rows = {{1, 2}, {}, {3}, {}, {4, 5, 6}};
  FloatListColumn want;
  for (const auto& r : rows) want.AppendRow(r.data(), r.size());
  for (bool two_level : {true, false}) {
    for (bool outer_optional : {true, false}) {
      for (bool element_optional : {true, false}) {
        if (two_level && element_optional) continue;  // a 2-level element is the repeated field
        SCOPED_TRACE(::testing::Message() << "two_level " << two_level << " outer_optional " << outer_optional
                                          << " element_optional " << element_optional);
        const std::string file = HandBuiltListFile(two_level, outer_optional, element_optional, rows);
        EXPECT_EQ(ReadSummary(file).schema[0].second, "list<float>");
        const Table t = ReadParquet(file);
        const auto& got = std::get<FloatListColumn>(t.Get("f").data);
        EXPECT_EQ(got.offsets, want.offsets);
        EXPECT_EQ(got.values, want.values);
      }
    }
  }
}

}  // namespace
}  // namespace fruitpipe::parquet
