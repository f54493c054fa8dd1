// DuckDB as the independent oracle: files fruitpipe writes must read back in DuckDB with
// every value exact, and files DuckDB writes (V1 and V2 pages, dictionary and delta
// encodings, every codec) must read back in fruitpipe. DuckDB runs through
// tools/node/duckdb_dump.mjs (@duckdb/node-api).
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "fruitpipe/common/error.h"
#include "fruitpipe/common/testing.h"
#include "fruitpipe/parquet/parquet.h"
#include "fruitpipe/parquet/parquet_testutil.h"

namespace fruitpipe::parquet {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path NodeDir() { return fruitpipe::testing::SourceDir() / "tools" / "node"; }

// Why DuckDB cannot run here; empty when it can.
std::string DuckDbMissing() {
  if (!fs::exists(NodeDir() / "node_modules" / "@duckdb" / "node-api")) {
    return "@duckdb/node-api is not installed in " + NodeDir().string() + " (run scripts/install-deps.sh)";
  }
  if (std::system("node --version > /dev/null 2>&1") != 0) return "node is not on PATH";
  return "";
}

// Skips without DuckDB on a developer's machine; fails in CI (FRUITPIPE_REQUIRE_SHARED=1).
#define REQUIRE_DUCKDB()                                                              \
  do {                                                                                \
    const std::string why = DuckDbMissing();                                          \
    if (!why.empty()) {                                                               \
      if (::fruitpipe::testing::SharedRequired()) FAIL() << why;                      \
      GTEST_SKIP() << "SKIPPED: the DuckDB oracle is unavailable: " << why;           \
    }                                                                                 \
  } while (0)

std::string ShellQuote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') {
      q += "'\\''";
    } else {
      q += c;
    }
  }
  return q + "'";
}

json RunDuckDb(const std::vector<std::string>& args, const fs::path& tmp) {
  const fs::path err = tmp / "duckdb.stderr";
  std::string cmd = "node " + ShellQuote((NodeDir() / "duckdb_dump.mjs").string());
  for (const auto& a : args) cmd += " " + ShellQuote(a);
  cmd += " 2>" + ShellQuote(err.string());
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) throw std::runtime_error("cannot start node");
  std::string out;
  std::array<char, 1 << 16> buf;
  std::size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int rc = pclose(p);
  if (rc != 0) {
    std::ifstream e(err);
    std::stringstream ss;
    ss << e.rdbuf();
    throw std::runtime_error("duckdb_dump.mjs failed (" + std::to_string(rc) + "): " + ss.str());
  }
  return json::parse(out);
}

void WriteFile(const fs::path& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary);
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
  ASSERT_TRUE(f.good());
}

std::string ReadFile(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// A float or double against DuckDB's JSON for it: exact, including the sign of zero.
template <typename T>
::testing::AssertionResult SameFloat(T ours, const json& v) {
  const auto fail = [&] { return ::testing::AssertionFailure() << "ours " << ours << ", DuckDB " << v.dump(); };
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    if (s == "NaN") return std::isnan(ours) ? ::testing::AssertionSuccess() : fail();
    if (s == "Infinity") return ours == std::numeric_limits<T>::infinity() ? ::testing::AssertionSuccess() : fail();
    if (s == "-Infinity") return ours == -std::numeric_limits<T>::infinity() ? ::testing::AssertionSuccess() : fail();
    if (s == "-0") return ours == 0 && std::signbit(ours) ? ::testing::AssertionSuccess() : fail();
    return fail();
  }
  if (!v.is_number()) return fail();
  // DuckDB widens FLOAT to a JS number exactly and prints the shortest digits that parse
  // back to the same double, so widening ours must give the very same bits.
  return testutil::SameBits(static_cast<double>(ours), v.get<double>()) ? ::testing::AssertionSuccess() : fail();
}

std::string DuckDbType(const ColumnData& d) {
  switch (d.index()) {
    case 0: return "VARCHAR";
    case 1: return "INTEGER";
    case 2: return "BIGINT";
    case 3: return "DOUBLE";
    case 4: return "FLOAT[]";
    default: return "DOUBLE[]";
  }
}

// Every value of `t` against DuckDB's rows; stops at the first difference per column.
void ExpectSameRows(const Table& t, const json& dump) {
  ASSERT_EQ(dump["columns"].size(), t.columns.size());
  const json& rows = dump["rows"];
  ASSERT_EQ(rows.size(), t.num_rows());
  for (std::size_t c = 0; c < t.columns.size(); ++c) {
    const Column& col = t.columns[c];
    ASSERT_EQ(dump["columns"][c]["name"], col.name);
    EXPECT_EQ(dump["columns"][c]["type"], DuckDbType(col.data)) << col.name;
    for (std::size_t r = 0; r < rows.size(); ++r) {
      const json& v = rows[r][c];
      const std::string where = col.name + "[" + std::to_string(r) + "]";
      std::visit(
          [&](const auto& d) {
            using D = std::decay_t<decltype(d)>;
            if constexpr (std::is_same_v<D, StringColumn>) {
              if (!d.valid.empty() && !d.valid[r]) {
                ASSERT_TRUE(v.is_null()) << where << ": " << v.dump();
              } else {
                ASSERT_TRUE(v.is_string()) << where << ": " << v.dump();
                ASSERT_EQ(v.get<std::string>(), d.values[r]) << where;
              }
            } else if constexpr (std::is_same_v<D, Int32Column>) {
              ASSERT_TRUE(v.is_number_integer()) << where;
              ASSERT_EQ(v.get<std::int64_t>(), d.values[r]) << where;
            } else if constexpr (std::is_same_v<D, Int64Column>) {
              ASSERT_EQ(v, std::to_string(d.values[r])) << where;  // BIGINT comes as a string
            } else if constexpr (std::is_same_v<D, DoubleColumn>) {
              ASSERT_TRUE(SameFloat(d.values[r], v)) << where;
            } else {
              ASSERT_TRUE(v.is_array()) << where << ": " << v.dump();
              const std::size_t b = d.offsets[r], e = d.offsets[r + 1];
              ASSERT_EQ(v.size(), e - b) << where;
              for (std::size_t i = b; i < e; ++i) ASSERT_TRUE(SameFloat(d.values[i], v[i - b])) << where << "[" << i - b << "]";
            }
          },
          col.data);
      if (::testing::Test::HasFatalFailure()) return;
    }
  }
}

class ParquetDuckDbTest : public ::testing::Test {
 protected:
  fruitpipe::testing::TempDir tmp_;
};

TEST_F(ParquetDuckDbTest, DuckDbReadsResultsExactly) {
  REQUIRE_DUCKDB();
  const Table t = testutil::ResultsTable(128, 1280, 0, true, 42);
  for (Compression c : {Compression::kSnappy, Compression::kZstd}) {
    const std::string codec = c == Compression::kSnappy ? "SNAPPY" : "ZSTD";
    SCOPED_TRACE(codec);
    WriteOptions o;
    o.compression = c;
    o.row_group_rows = 50;    // 3 row groups
    o.page_values = 10000;    // 6 pages of 7 rows per features chunk
    const fs::path file = tmp_.path() / ("part-00000-test." + codec + ".parquet");
    WriteFile(file, WriteParquet(t, o));
    const json dump = RunDuckDb({"--metadata", file.string()}, tmp_.path());
    ExpectSameRows(t, dump);

    ASSERT_EQ(dump["parquet_metadata"].size(), 3u * 7u);
    for (const json& m : dump["parquet_metadata"]) {
      EXPECT_EQ(m["compression"], codec);
      if (m["path_in_schema"] == "width") {
        const auto& w = std::get<Int32Column>(t.Get("width").data).values;
        const std::size_t g = std::stoul(m["row_group_id"].get<std::string>());
        const auto [lo, hi] = std::minmax_element(w.begin() + g * 50, w.begin() + std::min<std::size_t>(128, g * 50 + 50));
        EXPECT_EQ(m["stats_min_value"], std::to_string(*lo));
        EXPECT_EQ(m["stats_max_value"], std::to_string(*hi));
      }
      if (m["path_in_schema"] == "subject_id") {
        EXPECT_NE(m["stats_null_count"], "0");
      }
    }
    ASSERT_EQ(dump["kv_metadata"].size(), 1u);
    EXPECT_EQ(dump["kv_metadata"][0]["key"], "fruitpipe.run_id");
    EXPECT_EQ(dump["kv_metadata"][0]["value"], "test-run");

    // Filters DuckDB may answer from our statistics must still count right.
    const std::string src = "read_parquet('" + file.string() + "')";
    std::int64_t w103 = 0, kiwi = 0, no_subject = 0;
    for (std::size_t r = 0; r < 128; ++r) {
      w103 += std::get<Int32Column>(t.Get("width").data).values[r] == 103;
      kiwi += std::get<StringColumn>(t.Get("label").data).values[r] == "Kiwi";
      no_subject += !std::get<StringColumn>(t.Get("subject_id").data).valid[r];
    }
    const json counts = RunDuckDb(
        {"--query", "SELECT (SELECT count(*) FROM " + src + " WHERE width = 103), (SELECT count(*) FROM " + src +
                        " WHERE label = 'Kiwi'), (SELECT count(*) FROM " + src +
                        " WHERE subject_id IS NULL), (SELECT count(*) FROM " + src + " WHERE width > 1000)"},
        tmp_.path());
    EXPECT_EQ(counts["rows"][0], json::array({std::to_string(w103), std::to_string(kiwi), std::to_string(no_subject), "0"}));
  }
}

TEST_F(ParquetDuckDbTest, DuckDbReadsResultsPca) {
  REQUIRE_DUCKDB();
  const Table t = testutil::ResultsTable(200, 0, 50, true, 9);
  WriteOptions o;
  o.compression = Compression::kUncompressed;
  const fs::path file = tmp_.path() / "part-00000-pca.parquet";
  WriteFile(file, WriteParquet(t, o));
  const json dump = RunDuckDb({"--schema", file.string()}, tmp_.path());
  ExpectSameRows(t, dump);
  // The standard 3-level LIST as DuckDB sees it.
  std::vector<std::string> names;
  for (const json& e : dump["parquet_schema"]) names.push_back(e["name"].get<std::string>());
  EXPECT_NE(std::find(names.begin(), names.end(), "element"), names.end());
}

TEST_F(ParquetDuckDbTest, DuckDbReadsEveryKindWithEdgeCases) {
  REQUIRE_DUCKDB();
  testutil::RandomTableOptions ro;
  ro.rows = 120;
  ro.special_floats = true;   // NaN, infinities, -0, denormals, extremes
  ro.null_fraction = 0.4;
  ro.max_list = 6;            // many empty lists
  const Table t = testutil::RandomTable(ro);
  for (Compression c : {Compression::kSnappy, Compression::kZstd, Compression::kUncompressed}) {
    WriteOptions o;
    o.compression = c;
    o.row_group_rows = 37;
    o.page_values = 9;
    const fs::path file = tmp_.path() / ("kinds-" + std::to_string(static_cast<int>(c)) + ".parquet");
    WriteFile(file, WriteParquet(t, o));
    SCOPED_TRACE(file.string());
    ExpectSameRows(t, RunDuckDb({file.string()}, tmp_.path()));
  }
}

// DuckDB writes the same table with every codec and both page versions (V2 brings
// DELTA_BINARY_PACKED, DELTA_LENGTH_BYTE_ARRAY, BYTE_STREAM_SPLIT and RLE_DICTIONARY);
// fruitpipe must read each file back to exactly DuckDB's table.
TEST_F(ParquetDuckDbTest, ReaderReadsDuckDbFiles) {
  REQUIRE_DUCKDB();
  const std::string create =
      "CREATE TABLE t AS SELECT "
      "i AS id, "
      "'label_' || (i % 7) AS s, "
      "CASE WHEN i % 5 = 0 THEN NULL WHEN i % 500 = 1 THEN repeat('long 🍎 ', 900) ELSE 'Äpfel/' || i END AS ns, "
      "(i * 7919 % 100003 - 50000)::INTEGER AS i32, "
      "(i % 3)::INTEGER AS small, "
      "(i * 1000000007 - 4000000000000)::BIGINT AS i64, "
      "i / 7.0 AS d, "
      "(i % 4) / 2.0 AS dsmall, "
      "CASE WHEN i % 97 = 0 THEN ['NaN'::FLOAT, '-inf'::FLOAT, '-0.0'::FLOAT, 3.4e38::FLOAT] "
      "     ELSE [((i + k) / 3.0)::FLOAT FOR k IN range(i % 6)] END AS fl, "
      "[(k * 0.25 + i)::DOUBLE FOR k IN range(i % 4)] AS dl "
      "FROM range(5000) r(i) ORDER BY i";
  const std::vector<std::pair<std::string, std::string>> variants = {
      {"v1-snappy", "COMPRESSION 'snappy'"}, {"v1-zstd", "COMPRESSION 'zstd'"},
      {"v1-gzip", "COMPRESSION 'gzip'"},     {"v1-none", "COMPRESSION 'uncompressed'"},
      {"v2-snappy", "COMPRESSION 'snappy', PARQUET_VERSION V2"},
      {"v2-zstd", "COMPRESSION 'zstd', PARQUET_VERSION V2"}};
  std::vector<std::string> args = {"--exec", create};
  for (const auto& [name, options] : variants) {
    args.push_back("--exec");
    args.push_back("COPY t TO '" + (tmp_.path() / (name + ".parquet")).string() +
                   "' (FORMAT PARQUET, ROW_GROUP_SIZE 2048, " + options + ")");
  }
  args.push_back("--query");
  args.push_back("SELECT * FROM t ORDER BY id");
  const json want = RunDuckDb(args, tmp_.path());
  ASSERT_EQ(want["rows"].size(), 5000u);

  for (const auto& [name, options] : variants) {
    SCOPED_TRACE(name);
    const std::string file = ReadFile(tmp_.path() / (name + ".parquet"));
    const Table got = ReadParquet(file, {}, name);
    ExpectSameRows(got, want);
    const FileSummary s = ReadSummary(file);
    EXPECT_EQ(s.num_rows, 5000);
    EXPECT_GE(s.num_row_groups, 2u);
    const std::vector<std::pair<std::string, std::string>> schema = {
        {"id", "int64 (nullable)"},  {"s", "string (nullable)"},     {"ns", "string (nullable)"},
        {"i32", "int32 (nullable)"}, {"small", "int32 (nullable)"},  {"i64", "int64 (nullable)"},
        {"d", "double (nullable)"},  {"dsmall", "double (nullable)"}, {"fl", "list<float>"},
        {"dl", "list<double>"}};
    EXPECT_EQ(s.schema, schema);
  }
}

TEST_F(ParquetDuckDbTest, DuckDbFilesEmptyOrOutsideOurKinds) {
  REQUIRE_DUCKDB();
  const fs::path mixed = tmp_.path() / "mixed.parquet";
  const fs::path nulls = tmp_.path() / "nulls.parquet";
  const fs::path empty = tmp_.path() / "empty.parquet";
  RunDuckDb({"--exec", "COPY (SELECT 1::INTEGER AS a, [1.5::FLOAT] AS f WHERE false) TO '" + empty.string() +
                           "' (FORMAT PARQUET)",
             "--exec",
             "COPY (SELECT i::INTEGER AS a, DATE '2024-01-01' + i::INTEGER AS day, {'x': i} AS st, i % 2 = 0 AS flag, "
             "[[i, i]] AS nested, 'x' || i AS s FROM range(10) r(i)) TO '" + mixed.string() + "' (FORMAT PARQUET)",
             "--exec",
             "COPY (SELECT CASE WHEN i = 3 THEN NULL ELSE i END::INTEGER AS width, "
             "CASE WHEN i = 4 THEN NULL ELSE [1.0::FLOAT] END AS features, "
             "[CASE WHEN i = 5 THEN NULL ELSE 2.0::FLOAT END] AS elements "
             "FROM range(10) r(i)) TO '" + nulls.string() + "' (FORMAT PARQUET)"},
            tmp_.path());

  const Table e = ReadParquet(ReadFile(empty));
  EXPECT_EQ(e.num_rows(), 0u);
  ASSERT_EQ(e.columns.size(), 2u);
  EXPECT_EQ(std::get<FloatListColumn>(e.Get("f").data).offsets, std::vector<std::uint64_t>{0});

  const std::string m = ReadFile(mixed);
  const FileSummary s = ReadSummary(m);
  ASSERT_EQ(s.schema.size(), 6u);
  EXPECT_EQ(s.schema[0].second, "int32 (nullable)");
  for (std::size_t i = 1; i <= 4; ++i) EXPECT_EQ(s.schema[i].second.rfind("unsupported (", 0), 0u) << s.schema[i].second;
  EXPECT_EQ(s.schema[5].second, "string (nullable)");
  EXPECT_THROW(ReadParquet(m), InvalidArgumentError);
  const Table sel = ReadParquet(m, {"s", "a"});
  EXPECT_EQ(std::get<StringColumn>(sel.Get("s").data).values[9], "x9");
  EXPECT_EQ(std::get<Int32Column>(sel.Get("a").data).values[9], 9);

  // Nulls that fruitpipe's columns cannot hold are named, not silently dropped.
  const std::string n = ReadFile(nulls);
  for (const std::string col : {"width", "features", "elements"}) {
    try {
      ReadParquet(n, {col}, "nulls.parquet");
      ADD_FAILURE() << col << " read without error";
    } catch (const InvalidArgumentError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("nulls.parquet: column '" + col + "'"), std::string::npos) << msg;
      EXPECT_NE(msg.find("null"), std::string::npos) << msg;
    }
  }
}

}  // namespace
}  // namespace fruitpipe::parquet
