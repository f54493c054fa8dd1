// The compact protocol against hand-computed bytes from the Thrift spec, round trips of the
// Parquet structs, and the reader's behaviour on hostile input.
#include "fruitpipe/parquet/thrift_compact.h"

#include <gtest/gtest.h>

#include <limits>
#include <random>

#include "fruitpipe/common/error.h"
#include "fruitpipe/parquet/metadata.h"

namespace fruitpipe::parquet::thrift {
namespace {

std::string Bytes(std::initializer_list<int> b) {
  std::string s;
  for (int x : b) s.push_back(static_cast<char>(x));
  return s;
}

TEST(ThriftCompactTest, ZigZag) {
  EXPECT_EQ(ZigZagEncode(0), 0u);
  EXPECT_EQ(ZigZagEncode(-1), 1u);
  EXPECT_EQ(ZigZagEncode(1), 2u);
  EXPECT_EQ(ZigZagEncode(-2), 3u);
  EXPECT_EQ(ZigZagEncode(std::numeric_limits<std::int64_t>::max()), std::numeric_limits<std::uint64_t>::max() - 1);
  EXPECT_EQ(ZigZagEncode(std::numeric_limits<std::int64_t>::min()), std::numeric_limits<std::uint64_t>::max());
  for (std::int64_t v : {std::int64_t{0}, std::int64_t{-1}, std::int64_t{63}, std::int64_t{-64},
                         std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max()}) {
    EXPECT_EQ(ZigZagDecode(ZigZagEncode(v)), v);
  }
}

TEST(ThriftCompactTest, VarintRoundTripsAndBytes) {
  std::string out;
  CompactWriter w(&out);
  w.Varint(0);
  w.Varint(127);
  w.Varint(128);
  w.Varint(300);
  EXPECT_EQ(out, Bytes({0x00, 0x7F, 0x80, 0x01, 0xAC, 0x02}));
  std::mt19937_64 rng(3);
  out.clear();
  std::vector<std::uint64_t> vals = {std::numeric_limits<std::uint64_t>::max(), 1ull << 63, 1ull << 35};
  for (int i = 0; i < 200; ++i) vals.push_back(rng() >> (rng() % 64));
  for (auto v : vals) w.Varint(v);
  CompactReader r(out, "test");
  for (auto v : vals) EXPECT_EQ(r.Varint(), v);
  EXPECT_EQ(r.position(), out.size());
}

TEST(ThriftCompactTest, FieldHeadersUseDeltasAndLongForm) {
  std::string out;
  CompactWriter w(&out);
  w.StructBegin();
  w.FieldI32(1, 1);     // delta 1, type i32: 0x15, zigzag(1) = 2
  w.FieldI32(16, -1);   // delta 15 still fits: 0xF5, zigzag(-1) = 1
  w.FieldI64(40, 3);    // delta 24: long form, type byte 0x06 then zigzag i16 id 80 = 0x50
  w.FieldBinary(2, "hi");  // a smaller id: long form again, 0x08 0x04
  w.FieldBool(3, true);    // delta 1, type 1 (true)
  w.FieldBool(4, false);   // delta 1, type 2 (false)
  w.StructEnd();
  EXPECT_EQ(out, Bytes({0x15, 0x02, 0xF5, 0x01, 0x06, 0x50, 0x06, 0x08, 0x04, 0x02, 'h', 'i', 0x11, 0x12, 0x00}));

  CompactReader r(out, "test");
  r.StructBegin();
  std::int16_t id;
  Type t;
  ASSERT_TRUE(r.NextField(&id, &t));
  EXPECT_EQ(id, 1);
  EXPECT_EQ(r.I32(), 1);
  ASSERT_TRUE(r.NextField(&id, &t));
  EXPECT_EQ(id, 16);
  EXPECT_EQ(r.I32(), -1);
  ASSERT_TRUE(r.NextField(&id, &t));
  EXPECT_EQ(id, 40);
  EXPECT_EQ(t, Type::kI64);
  EXPECT_EQ(r.I64(), 3);
  ASSERT_TRUE(r.NextField(&id, &t));
  EXPECT_EQ(id, 2);
  EXPECT_EQ(r.Binary(), "hi");
  ASSERT_TRUE(r.NextField(&id, &t));
  EXPECT_EQ(id, 3);
  EXPECT_TRUE(r.FieldBoolValue(t));
  ASSERT_TRUE(r.NextField(&id, &t));
  EXPECT_EQ(id, 4);
  EXPECT_FALSE(r.FieldBoolValue(t));
  EXPECT_FALSE(r.NextField(&id, &t));
  r.StructEnd();
}

TEST(ThriftCompactTest, ListsShortAndLong) {
  std::string out;
  CompactWriter w(&out);
  w.ListBegin(Type::kI32, 3);
  for (int i : {1, -1, 2}) w.I32(i);
  w.ListBegin(Type::kBinary, 20);
  for (int i = 0; i < 20; ++i) w.Binary(std::string(i, 'x'));
  w.ListBegin(Type::kTrue, 2);
  w.Bool(true);
  w.Bool(false);
  EXPECT_EQ(out.substr(0, 4), Bytes({0x35, 0x02, 0x01, 0x04}));
  EXPECT_EQ(out.substr(4, 2), Bytes({0xF8, 20}));

  CompactReader r(out, "test");
  ListHeader h = r.ReadListHeader();
  EXPECT_EQ(h.elem, Type::kI32);
  ASSERT_EQ(h.size, 3u);
  EXPECT_EQ(r.I32(), 1);
  EXPECT_EQ(r.I32(), -1);
  EXPECT_EQ(r.I32(), 2);
  h = r.ReadListHeader();
  EXPECT_EQ(h.elem, Type::kBinary);
  ASSERT_EQ(h.size, 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(r.Binary(), std::string(i, 'x'));
  h = r.ReadListHeader();
  ASSERT_EQ(h.size, 2u);
  EXPECT_TRUE(r.Bool());
  EXPECT_FALSE(r.Bool());
}

TEST(ThriftCompactTest, NestedStructsRestoreFieldIds) {
  std::string out;
  CompactWriter w(&out);
  w.StructBegin();
  w.FieldI32(5, 1);
  w.FieldStructBegin(6);
  w.FieldI32(1, 2);  // deltas restart at 0 inside the nested struct
  w.StructEnd();
  w.FieldI32(7, 3);  // and continue from 6 after it
  w.StructEnd();
  EXPECT_EQ(out, Bytes({0x55, 0x02, 0x1C, 0x15, 0x04, 0x00, 0x15, 0x06, 0x00}));
  CompactReader r(out, "test");
  r.StructBegin();
  std::int16_t id;
  Type t;
  ASSERT_TRUE(r.NextField(&id, &t));
  r.Skip(t);
  ASSERT_TRUE(r.NextField(&id, &t));
  EXPECT_EQ(id, 6);
  r.Skip(t);
  ASSERT_TRUE(r.NextField(&id, &t));
  EXPECT_EQ(id, 7);
  EXPECT_EQ(r.I32(), 3);
  EXPECT_FALSE(r.NextField(&id, &t));
}

TEST(ThriftCompactTest, SkipsEveryType) {
  std::string out;
  CompactWriter w(&out);
  w.StructBegin();
  w.FieldBool(1, true);
  w.FieldBegin(2, Type::kByte);
  w.Byte(-5);
  w.FieldBegin(3, Type::kI16);
  w.I16(-300);
  w.FieldI32(4, 1 << 30);
  w.FieldI64(5, -(1ll << 50));
  w.FieldDouble(6, 2.5);
  w.FieldBinary(7, "bytes");
  w.FieldListBegin(8, Type::kStruct, 2);
  for (int i = 0; i < 2; ++i) {
    w.StructBegin();
    w.FieldListBegin(1, Type::kTrue, 1);
    w.Bool(false);
    w.StructEnd();
  }
  w.FieldBegin(9, Type::kMap);  // map<i32, binary> of 2 entries: size, key/value types
  w.Varint(2);
  w.Byte(static_cast<std::int8_t>((static_cast<int>(Type::kI32) << 4) | static_cast<int>(Type::kBinary)));
  w.I32(1);
  w.Binary("a");
  w.I32(2);
  w.Binary("b");
  w.FieldBegin(10, Type::kMap);  // an empty map is just its size
  w.Varint(0);
  w.FieldBegin(11, Type::kSet);
  w.ListBegin(Type::kDouble, 1);
  w.Double(1.0);
  w.FieldI32(12, 42);
  w.StructEnd();

  CompactReader r(out, "test");
  r.StructBegin();
  std::int16_t id;
  Type t;
  int last = 0;
  while (r.NextField(&id, &t)) {
    if (id == 12) {
      EXPECT_EQ(r.I32(), 42);
    } else {
      r.Skip(t);
    }
    last = id;
  }
  EXPECT_EQ(last, 12);
  EXPECT_EQ(r.position(), out.size());
}

TEST(ThriftCompactTest, HostileInputThrowsCorruption) {
  // Varint of 11 bytes.
  std::string v(11, static_cast<char>(0x80));
  EXPECT_THROW(CompactReader(v, "t").Varint(), CorruptionError);
  // A list claiming more elements than bytes left.
  EXPECT_THROW(CompactReader(Bytes({0xF5, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F}), "t").ReadListHeader(), CorruptionError);
  // A binary longer than the input.
  EXPECT_THROW(CompactReader(Bytes({0x10, 'a'}), "t").Binary(), CorruptionError);
  // i32 out of range.
  EXPECT_THROW(CompactReader(Bytes({0x80, 0x80, 0x80, 0x80, 0x20}), "t").I32(), CorruptionError);
  // Struct nesting bomb: field 1 of type struct, again and again.
  std::string bomb(100000, static_cast<char>(0x1C));
  CompactReader r(bomb, "t");
  r.StructBegin();
  std::int16_t id;
  Type t;
  ASSERT_TRUE(r.NextField(&id, &t));
  EXPECT_THROW(r.Skip(t), CorruptionError);
  // Unknown type nibble.
  const std::string bad_type = Bytes({0x1D});
  CompactReader r2(bad_type, "t");
  r2.StructBegin();
  EXPECT_THROW(r2.NextField(&id, &t), CorruptionError);
}

format::FileMetaData SampleMetadata() {
  format::FileMetaData m;
  m.version = 1;
  format::SchemaElement root;
  root.name = "schema";
  root.num_children = 2;
  m.schema.push_back(root);
  format::SchemaElement s;
  s.name = "label";
  s.type = format::Type::kByteArray;
  s.repetition_type = format::Repetition::kOptional;
  s.converted_type = format::ConvertedType::kUtf8;
  s.logical_type = format::LogicalType{format::LogicalKind::kString, 1};
  m.schema.push_back(s);
  format::SchemaElement i;
  i.name = "width";
  i.type = format::Type::kInt32;
  i.repetition_type = format::Repetition::kRequired;
  i.logical_type = format::LogicalType{format::LogicalKind::kInteger, 10, 32, true};
  i.field_id = 7;
  m.schema.push_back(i);
  m.num_rows = 12345678901;
  format::RowGroup g;
  g.num_rows = 12345678901;
  g.total_byte_size = 99;
  g.file_offset = 4;
  g.total_compressed_size = 90;
  g.ordinal = 0;
  format::ColumnChunk c;
  c.file_offset = 0;
  format::ColumnMetaData md;
  md.type = format::Type::kByteArray;
  md.encodings = {format::Encoding::kPlain, format::Encoding::kRle};
  md.path_in_schema = {"label"};
  md.codec = format::Codec::kZstd;
  md.num_values = 12345678901;
  md.total_uncompressed_size = 50;
  md.total_compressed_size = 45;
  md.data_page_offset = 4;
  md.dictionary_page_offset = 40;
  format::Statistics st;
  st.null_count = 3;
  st.min_value = "a";
  st.max_value = std::string("z\0z", 3);
  st.is_max_value_exact = true;
  st.nan_count = 0;
  md.statistics = st;
  c.meta_data = md;
  g.columns = {c, c};
  m.row_groups = {g};
  m.key_value_metadata = {{"k", "v"}, {"no-value", std::nullopt}};
  m.created_by = "fruitpipe test";
  m.column_orders = {1, 1};
  return m;
}

TEST(ThriftCompactTest, FileMetaDataRoundTrip) {
  const format::FileMetaData m = SampleMetadata();
  std::string out;
  format::AppendFileMetaData(m, &out);
  const format::FileMetaData d = format::DecodeFileMetaData(out, "test");
  EXPECT_EQ(d.version, 1);
  ASSERT_EQ(d.schema.size(), 3u);
  EXPECT_EQ(d.schema[0].num_children, 2);
  EXPECT_EQ(d.schema[1].name, "label");
  EXPECT_EQ(d.schema[1].converted_type, format::ConvertedType::kUtf8);
  EXPECT_EQ(d.schema[1].logical_type->kind, format::LogicalKind::kString);
  EXPECT_EQ(d.schema[2].logical_type->kind, format::LogicalKind::kInteger);
  EXPECT_EQ(d.schema[2].logical_type->int_bit_width, 32);
  EXPECT_TRUE(d.schema[2].logical_type->int_signed);
  EXPECT_EQ(d.schema[2].field_id, 7);
  EXPECT_EQ(d.num_rows, 12345678901);
  ASSERT_EQ(d.row_groups.size(), 1u);
  EXPECT_EQ(d.row_groups[0].ordinal, 0);
  ASSERT_EQ(d.row_groups[0].columns.size(), 2u);
  const auto& md = *d.row_groups[0].columns[1].meta_data;
  EXPECT_EQ(md.codec, format::Codec::kZstd);
  EXPECT_EQ(md.encodings, (std::vector<format::Encoding>{format::Encoding::kPlain, format::Encoding::kRle}));
  EXPECT_EQ(md.path_in_schema, std::vector<std::string>{"label"});
  EXPECT_EQ(md.dictionary_page_offset, 40);
  EXPECT_EQ(md.statistics->null_count, 3);
  EXPECT_EQ(md.statistics->max_value, std::string("z\0z", 3));
  EXPECT_EQ(md.statistics->is_max_value_exact, true);
  EXPECT_FALSE(md.statistics->is_min_value_exact.has_value());
  ASSERT_EQ(d.key_value_metadata.size(), 2u);
  EXPECT_EQ(d.key_value_metadata[0].value, "v");
  EXPECT_FALSE(d.key_value_metadata[1].value.has_value());
  EXPECT_EQ(d.created_by, "fruitpipe test");
  EXPECT_EQ(d.column_orders, (std::vector<std::int16_t>{1, 1}));

  // Re-encoding what was decoded gives the same bytes.
  std::string again;
  format::AppendFileMetaData(d, &again);
  EXPECT_EQ(again, out);

  // Every truncation fails cleanly.
  for (std::size_t n = 0; n < out.size(); ++n) {
    EXPECT_THROW(format::DecodeFileMetaData(std::string_view(out).substr(0, n), "test"), CorruptionError) << n;
  }
}

TEST(ThriftCompactTest, PageHeaderRoundTrip) {
  format::PageHeader h;
  h.type = format::PageType::kDataPageV2;
  h.uncompressed_page_size = 1000;
  h.compressed_page_size = 600;
  h.crc = -5;
  format::DataPageHeaderV2 v2;
  v2.num_values = 10;
  v2.num_nulls = 2;
  v2.num_rows = 9;
  v2.encoding = format::Encoding::kRleDictionary;
  v2.definition_levels_byte_length = 3;
  v2.repetition_levels_byte_length = 4;
  v2.is_compressed = false;
  h.data_page_header_v2 = v2;
  std::string out;
  format::AppendPageHeader(h, &out);
  const std::size_t header_size = out.size();
  out += "page bytes";
  std::size_t consumed = 0;
  const format::PageHeader d = format::DecodePageHeader(out, "test", &consumed);
  EXPECT_EQ(consumed, header_size);
  EXPECT_EQ(d.type, format::PageType::kDataPageV2);
  EXPECT_EQ(d.crc, -5);
  ASSERT_TRUE(d.data_page_header_v2);
  EXPECT_EQ(d.data_page_header_v2->num_rows, 9);
  EXPECT_EQ(d.data_page_header_v2->encoding, format::Encoding::kRleDictionary);
  EXPECT_FALSE(d.data_page_header_v2->is_compressed);
  EXPECT_FALSE(d.data_page_header);

  // A header missing a required field is corrupt.
  std::string missing;
  CompactWriter w(&missing);
  w.StructBegin();
  w.FieldI32(1, 0);
  w.StructEnd();
  EXPECT_THROW(format::DecodePageHeader(missing, "test", &consumed), CorruptionError);
}

}  // namespace
}  // namespace fruitpipe::parquet::thrift
