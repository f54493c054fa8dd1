// The reader on damaged and hostile files: truncations, flipped bytes and hand-built files
// with absurd lengths must end in CorruptionError (or InvalidArgumentError for a mutation
// that happens to yield valid Parquet outside fruitpipe's column kinds), never a crash, a
// hang, or a huge allocation. The same loops run under ASan/UBSan in the sanitizer build.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "fruitpipe/common/error.h"
#include "fruitpipe/common/testing.h"
#include "fruitpipe/parquet/metadata.h"
#include "fruitpipe/parquet/parquet.h"
#include "fruitpipe/parquet/parquet_testutil.h"
#include "fruitpipe/parquet/rle_bp.h"

namespace fruitpipe::parquet {
namespace {

enum class Outcome { kOk, kCorruption, kInvalid };

// Reads the file both ways; any exception other than the two documented ones fails the test.
Outcome TryRead(std::string_view file) {
  try {
    ReadSummary(file);
    ReadParquet(file);
    return Outcome::kOk;
  } catch (const CorruptionError&) {
    return Outcome::kCorruption;
  } catch (const InvalidArgumentError&) {
    return Outcome::kInvalid;
  }
}

std::string SmallFile(Compression c) {
  testutil::RandomTableOptions o;
  o.rows = 12;
  o.max_list = 4;
  o.seed = 5;
  Table t = testutil::RandomTable(o);
  t.metadata["k"] = "v";
  WriteOptions w;
  w.compression = c;
  w.row_group_rows = 5;
  w.page_values = 6;
  return WriteParquet(t, w);
}

// Our files with each codec, and DuckDB's (V2 pages, gzip, dictionary, delta and
// byte-stream-split encodings) from testdata/.
std::vector<std::string> Corpus() {
  std::vector<std::string> files;
  for (Compression c : {Compression::kSnappy, Compression::kZstd, Compression::kUncompressed}) {
    files.push_back(SmallFile(c));
  }
  for (const char* name : {"duckdb_v1_gzip.parquet", "duckdb_v2_snappy.parquet"}) {
    std::ifstream f(fruitpipe::testing::SourceDir() / "src/fruitpipe/parquet/testdata" / name, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    files.push_back(ss.str());
    EXPECT_FALSE(files.back().empty()) << "missing fixture " << name;
  }
  return files;
}

TEST(ParquetCorruptionTest, EveryTruncationIsCorruption) {
  for (const std::string& file : Corpus()) {
    ASSERT_EQ(TryRead(file), Outcome::kOk);
    for (std::size_t n = 0; n < file.size(); ++n) {
      EXPECT_EQ(TryRead(std::string_view(file).substr(0, n)), Outcome::kCorruption) << "truncated at " << n;
    }
  }
}

TEST(ParquetCorruptionTest, PagesCutShortUnderAnIntactFooter) {
  // Drop bytes from the page area but keep the footer: every offset is now wrong.
  const std::string file = SmallFile(Compression::kSnappy);
  std::uint32_t footer_len;
  std::memcpy(&footer_len, file.data() + file.size() - 8, 4);
  const std::size_t footer_start = file.size() - 8 - footer_len;
  for (std::size_t cut = 4; cut < footer_start; cut += 3) {
    std::string damaged = file.substr(0, cut) + file.substr(footer_start);
    EXPECT_NE(TryRead(damaged), Outcome::kOk) << "cut at " << cut;
  }
}

TEST(ParquetCorruptionTest, FlippedBytesNeverCrash) {
  int outcomes[3] = {};
  for (const std::string& file : Corpus()) {
    // Every byte, flipped in its low bit and in all bits.
    for (std::size_t i = 0; i < file.size(); ++i) {
      for (int mask : {0x01, 0xFF}) {
        std::string damaged = file;
        damaged[i] = static_cast<char>(damaged[i] ^ mask);
        ++outcomes[static_cast<int>(TryRead(damaged))];
      }
    }
  }
  // Most flips land in values and go unnoticed (Parquet has no checksums by default); the
  // rest must have been caught as corruption rather than crashing.
  EXPECT_GT(outcomes[static_cast<int>(Outcome::kCorruption)], 100);
}

TEST(ParquetCorruptionTest, RandomMultiByteDamage) {
  std::mt19937 rng(99);
  for (const std::string& file : Corpus()) {
    ASSERT_FALSE(file.empty());
    for (int round = 0; round < 500; ++round) {
      std::string damaged = file;
      const int edits = 1 + static_cast<int>(rng() % 8);
      for (int e = 0; e < edits; ++e) damaged[rng() % damaged.size()] = static_cast<char>(rng());
      TryRead(damaged);
    }
  }
}

// A hand-built file: one optional string column, one row group, one page with the given
// header fields and body. Lets tests state absurd sizes directly.
std::string CraftFile(std::int32_t page_num_values, std::int32_t uncompressed_size, const std::string& body,
                      std::int64_t num_rows, format::Codec codec = format::Codec::kUncompressed) {
  std::string file = "PAR1";
  format::PageHeader h;
  h.type = format::PageType::kDataPage;
  h.uncompressed_page_size = uncompressed_size;
  h.compressed_page_size = static_cast<std::int32_t>(body.size());
  h.data_page_header = format::DataPageHeader{page_num_values, format::Encoding::kPlain, format::Encoding::kRle,
                                              format::Encoding::kRle, std::nullopt};
  const std::int64_t page_offset = static_cast<std::int64_t>(file.size());
  format::AppendPageHeader(h, &file);
  file += body;
  format::FileMetaData m;
  format::SchemaElement root;
  root.name = "schema";
  root.num_children = 1;
  format::SchemaElement s;
  s.name = "s";
  s.type = format::Type::kByteArray;
  s.repetition_type = format::Repetition::kOptional;
  m.schema = {root, s};
  m.num_rows = num_rows;
  format::RowGroup g;
  g.num_rows = num_rows;
  format::ColumnChunk c;
  format::ColumnMetaData md;
  md.type = format::Type::kByteArray;
  md.encodings = {format::Encoding::kPlain};
  md.path_in_schema = {"s"};
  md.codec = codec;
  md.num_values = page_num_values;
  md.data_page_offset = page_offset;
  md.total_compressed_size = static_cast<std::int64_t>(file.size()) - page_offset;
  md.total_uncompressed_size = md.total_compressed_size;
  c.meta_data = md;
  g.columns = {c};
  m.row_groups = {g};
  const std::size_t footer_start = file.size();
  format::AppendFileMetaData(m, &file);
  const auto len = static_cast<std::uint32_t>(file.size() - footer_start);
  file.append(reinterpret_cast<const char*>(&len), 4);
  file += "PAR1";
  return file;
}

std::string Levels(const std::string& rle) {
  const auto len = static_cast<std::uint32_t>(rle.size());
  return std::string(reinterpret_cast<const char*>(&len), 4) + rle;
}

TEST(ParquetCorruptionTest, CraftedFileReadsWhenSane) {
  // Two rows: null, "ab". Def levels: bit-packed group 0b10 -> header 0x03, byte 0x02.
  const std::string body = Levels("\x03\x02") + std::string("\x02\0\0\0ab", 6);
  const Table t = ReadParquet(CraftFile(2, static_cast<std::int32_t>(body.size()), body, 2));
  const auto& s = std::get<StringColumn>(t.Get("s").data);
  EXPECT_EQ(s.values, (std::vector<std::string>{"", "ab"}));
  EXPECT_EQ(s.valid, (std::vector<bool>{false, true}));
}

TEST(ParquetCorruptionTest, BillionsOfNullsInAFewBytesHitTheBudget) {
  // An RLE run of 2^31-1 null definition levels is 6 bytes; decoding it would allocate ~70 GB.
  const std::string body = Levels(std::string("\xFE\xFF\xFF\xFF\x0F\x00", 6));
  const std::int32_t n = std::numeric_limits<std::int32_t>::max();
  EXPECT_THROW(ReadParquet(CraftFile(n, static_cast<std::int32_t>(body.size()), body, n)), CorruptionError);
}

TEST(ParquetCorruptionTest, AbsurdDeclaredSizesAreRejectedBeforeAllocating) {
  // An uncompressed page whose header size disagrees with its body.
  const std::string body = Levels("\x03\x02") + std::string("\x02\0\0\0ab", 6);
  EXPECT_THROW(ReadParquet(CraftFile(2, 2000000000, body, 2)), CorruptionError);
  // Pages declaring 100 MB (within the budget) from a dozen bytes: each codec's own check
  // (snappy's length prefix, deflate's maximum ratio, zstd's frame) refuses them.
  EXPECT_THROW(ReadParquet(CraftFile(2, 100000000, body, 2, format::Codec::kSnappy)), CorruptionError);
  EXPECT_THROW(ReadParquet(CraftFile(2, 100000000, body, 2, format::Codec::kGzip)), CorruptionError);
  EXPECT_THROW(ReadParquet(CraftFile(2, 100000000, body, 2, format::Codec::kZstd)), CorruptionError);
  // A byte array length running past the page.
  const std::string overrun = Levels("\x03\x02") + std::string("\xFF\xFF\xFF\x7F" "ab", 6);
  EXPECT_THROW(ReadParquet(CraftFile(2, static_cast<std::int32_t>(overrun.size()), overrun, 2)), CorruptionError);
  // Row counts that disagree with the levels.
  EXPECT_THROW(ReadParquet(CraftFile(2, static_cast<std::int32_t>(body.size()), body, 3)), CorruptionError);
  // Unsupported codecs are named, not mistaken for corruption.
  EXPECT_THROW(ReadParquet(CraftFile(2, static_cast<std::int32_t>(body.size()), body, 2, format::Codec::kLzo)),
               InvalidArgumentError);
}

TEST(ParquetCorruptionTest, NotParquetAtAll) {
  EXPECT_THROW(ReadParquet(""), CorruptionError);
  EXPECT_THROW(ReadParquet("PAR1PAR1"), CorruptionError);
  EXPECT_THROW(ReadParquet(std::string("PAR1\0\0\0\0PAR1", 12)), CorruptionError);
  EXPECT_THROW(ReadParquet(std::string("PAR1\xFF\xFF\xFF\xFFPAR1", 12)), CorruptionError);
  EXPECT_THROW(ReadParquet("GIF89a.................."), CorruptionError);
  EXPECT_THROW(ReadParquet(std::string("PAR1\0\0\0\0PARE", 12)), InvalidArgumentError);
  try {
    ReadParquet("short", {}, "s3://b/Results/part-00001.parquet");
    FAIL();
  } catch (const CorruptionError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("s3://b/Results/part-00001.parquet"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

}  // namespace
}  // namespace fruitpipe::parquet
