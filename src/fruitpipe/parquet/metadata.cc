#include "fruitpipe/parquet/metadata.h"

#include "fruitpipe/parquet/thrift_compact.h"

namespace fruitpipe::parquet::format {

using thrift::CompactReader;
using thrift::CompactWriter;
using TType = thrift::Type;

namespace {

// ---------------------------------------------------------------- encoders

void WriteStatistics(CompactWriter& w, const Statistics& s) {
  w.StructBegin();
  if (s.max) w.FieldBinary(1, *s.max);
  if (s.min) w.FieldBinary(2, *s.min);
  if (s.null_count) w.FieldI64(3, *s.null_count);
  if (s.distinct_count) w.FieldI64(4, *s.distinct_count);
  if (s.max_value) w.FieldBinary(5, *s.max_value);
  if (s.min_value) w.FieldBinary(6, *s.min_value);
  if (s.is_max_value_exact) w.FieldBool(7, *s.is_max_value_exact);
  if (s.is_min_value_exact) w.FieldBool(8, *s.is_min_value_exact);
  if (s.nan_count) w.FieldI64(9, *s.nan_count);
  w.StructEnd();
}

void WriteLogicalType(CompactWriter& w, const LogicalType& t) {
  w.StructBegin();
  if (t.kind == LogicalKind::kInteger) {
    w.FieldStructBegin(static_cast<std::int16_t>(LogicalKind::kInteger));
    w.FieldBegin(1, TType::kByte);
    w.Byte(t.int_bit_width);
    w.FieldBool(2, t.int_signed);
    w.StructEnd();
  } else {
    // Every other member fruitpipe writes (STRING, LIST) is an empty struct.
    w.FieldEmptyStruct(static_cast<std::int16_t>(t.kind));
  }
  w.StructEnd();
}

void WriteSchemaElement(CompactWriter& w, const SchemaElement& e) {
  w.StructBegin();
  if (e.type) w.FieldI32(1, static_cast<std::int32_t>(*e.type));
  if (e.type_length) w.FieldI32(2, *e.type_length);
  if (e.repetition_type) w.FieldI32(3, static_cast<std::int32_t>(*e.repetition_type));
  w.FieldBinary(4, e.name);
  if (e.num_children) w.FieldI32(5, *e.num_children);
  if (e.converted_type) w.FieldI32(6, static_cast<std::int32_t>(*e.converted_type));
  if (e.scale) w.FieldI32(7, *e.scale);
  if (e.precision) w.FieldI32(8, *e.precision);
  if (e.field_id) w.FieldI32(9, *e.field_id);
  if (e.logical_type) {
    w.FieldBegin(10, TType::kStruct);
    WriteLogicalType(w, *e.logical_type);
  }
  w.StructEnd();
}

void WriteKeyValue(CompactWriter& w, const KeyValue& kv) {
  w.StructBegin();
  w.FieldBinary(1, kv.key);
  if (kv.value) w.FieldBinary(2, *kv.value);
  w.StructEnd();
}

void WriteColumnMetaData(CompactWriter& w, const ColumnMetaData& m) {
  w.StructBegin();
  w.FieldI32(1, static_cast<std::int32_t>(m.type));
  w.FieldListBegin(2, TType::kI32, m.encodings.size());
  for (Encoding e : m.encodings) w.I32(static_cast<std::int32_t>(e));
  w.FieldListBegin(3, TType::kBinary, m.path_in_schema.size());
  for (const auto& p : m.path_in_schema) w.Binary(p);
  w.FieldI32(4, static_cast<std::int32_t>(m.codec));
  w.FieldI64(5, m.num_values);
  w.FieldI64(6, m.total_uncompressed_size);
  w.FieldI64(7, m.total_compressed_size);
  w.FieldI64(9, m.data_page_offset);
  if (m.dictionary_page_offset) w.FieldI64(11, *m.dictionary_page_offset);
  if (m.statistics) {
    w.FieldBegin(12, TType::kStruct);
    WriteStatistics(w, *m.statistics);
  }
  w.StructEnd();
}

void WriteColumnChunk(CompactWriter& w, const ColumnChunk& c) {
  w.StructBegin();
  if (c.file_path) w.FieldBinary(1, *c.file_path);
  w.FieldI64(2, c.file_offset);
  if (c.meta_data) {
    w.FieldBegin(3, TType::kStruct);
    WriteColumnMetaData(w, *c.meta_data);
  }
  w.StructEnd();
}

void WriteRowGroup(CompactWriter& w, const RowGroup& g) {
  w.StructBegin();
  w.FieldListBegin(1, TType::kStruct, g.columns.size());
  for (const auto& c : g.columns) WriteColumnChunk(w, c);
  w.FieldI64(2, g.total_byte_size);
  w.FieldI64(3, g.num_rows);
  if (g.file_offset) w.FieldI64(5, *g.file_offset);
  if (g.total_compressed_size) w.FieldI64(6, *g.total_compressed_size);
  if (g.ordinal) {
    w.FieldBegin(7, TType::kI16);
    w.I16(*g.ordinal);
  }
  w.StructEnd();
}

// ---------------------------------------------------------------- decoders

// Reads an enum-typed i32 field; values are checked where they are interpreted.
template <typename E>
E ReadEnum(CompactReader& r) {
  return static_cast<E>(r.I32());
}

void ExpectType(CompactReader& r, TType got, TType want, const char* field) {
  if (got != want) r.Fail(std::string("field ") + field + " has the wrong type");
}

void ExpectBool(CompactReader& r, TType got, const char* field) {
  if (got != TType::kTrue && got != TType::kFalse) r.Fail(std::string("field ") + field + " is not a bool");
}

void Require(CompactReader& r, bool present, const char* field) {
  if (!present) r.Fail(std::string("required field ") + field + " is missing");
}

Statistics ReadStatistics(CompactReader& r) {
  Statistics s;
  r.StructBegin();
  std::int16_t id;
  TType t;
  while (r.NextField(&id, &t)) {
    switch (id) {
      case 1: ExpectType(r, t, TType::kBinary, "Statistics.max"); s.max = std::string(r.Binary()); break;
      case 2: ExpectType(r, t, TType::kBinary, "Statistics.min"); s.min = std::string(r.Binary()); break;
      case 3: ExpectType(r, t, TType::kI64, "Statistics.null_count"); s.null_count = r.I64(); break;
      case 4: ExpectType(r, t, TType::kI64, "Statistics.distinct_count"); s.distinct_count = r.I64(); break;
      case 5: ExpectType(r, t, TType::kBinary, "Statistics.max_value"); s.max_value = std::string(r.Binary()); break;
      case 6: ExpectType(r, t, TType::kBinary, "Statistics.min_value"); s.min_value = std::string(r.Binary()); break;
      case 7: ExpectBool(r, t, "Statistics.is_max_value_exact"); s.is_max_value_exact = r.FieldBoolValue(t); break;
      case 8: ExpectBool(r, t, "Statistics.is_min_value_exact"); s.is_min_value_exact = r.FieldBoolValue(t); break;
      case 9: ExpectType(r, t, TType::kI64, "Statistics.nan_count"); s.nan_count = r.I64(); break;
      default: r.Skip(t);
    }
  }
  r.StructEnd();
  return s;
}

LogicalType ReadLogicalType(CompactReader& r) {
  LogicalType lt;
  r.StructBegin();
  std::int16_t id;
  TType t;
  while (r.NextField(&id, &t)) {
    ExpectType(r, t, TType::kStruct, "LogicalType member");
    lt.raw_id = id;
    lt.kind = (id >= 1 && id <= 15 && id != 9) ? static_cast<LogicalKind>(id) : LogicalKind::kNone;
    if (lt.kind == LogicalKind::kInteger) {
      r.StructBegin();
      std::int16_t fid;
      TType ft;
      bool has_width = false, has_signed = false;
      while (r.NextField(&fid, &ft)) {
        if (fid == 1) {
          ExpectType(r, ft, TType::kByte, "IntType.bitWidth");
          lt.int_bit_width = r.Byte();
          has_width = true;
        } else if (fid == 2) {
          ExpectBool(r, ft, "IntType.isSigned");
          lt.int_signed = r.FieldBoolValue(ft);
          has_signed = true;
        } else {
          r.Skip(ft);
        }
      }
      r.StructEnd();
      Require(r, has_width, "IntType.bitWidth");
      Require(r, has_signed, "IntType.isSigned");
    } else {
      r.Skip(t);
    }
  }
  r.StructEnd();
  return lt;
}

SchemaElement ReadSchemaElement(CompactReader& r) {
  SchemaElement e;
  bool has_name = false;
  r.StructBegin();
  std::int16_t id;
  TType t;
  while (r.NextField(&id, &t)) {
    switch (id) {
      case 1: ExpectType(r, t, TType::kI32, "SchemaElement.type"); e.type = ReadEnum<Type>(r); break;
      case 2: ExpectType(r, t, TType::kI32, "SchemaElement.type_length"); e.type_length = r.I32(); break;
      case 3: ExpectType(r, t, TType::kI32, "SchemaElement.repetition_type"); e.repetition_type = ReadEnum<Repetition>(r); break;
      case 4: ExpectType(r, t, TType::kBinary, "SchemaElement.name"); e.name = std::string(r.Binary()); has_name = true; break;
      case 5: ExpectType(r, t, TType::kI32, "SchemaElement.num_children"); e.num_children = r.I32(); break;
      case 6: ExpectType(r, t, TType::kI32, "SchemaElement.converted_type"); e.converted_type = ReadEnum<ConvertedType>(r); break;
      case 7: ExpectType(r, t, TType::kI32, "SchemaElement.scale"); e.scale = r.I32(); break;
      case 8: ExpectType(r, t, TType::kI32, "SchemaElement.precision"); e.precision = r.I32(); break;
      case 9: ExpectType(r, t, TType::kI32, "SchemaElement.field_id"); e.field_id = r.I32(); break;
      case 10: ExpectType(r, t, TType::kStruct, "SchemaElement.logicalType"); e.logical_type = ReadLogicalType(r); break;
      default: r.Skip(t);
    }
  }
  r.StructEnd();
  Require(r, has_name, "SchemaElement.name");
  return e;
}

KeyValue ReadKeyValue(CompactReader& r) {
  KeyValue kv;
  bool has_key = false;
  r.StructBegin();
  std::int16_t id;
  TType t;
  while (r.NextField(&id, &t)) {
    if (id == 1) {
      ExpectType(r, t, TType::kBinary, "KeyValue.key");
      kv.key = std::string(r.Binary());
      has_key = true;
    } else if (id == 2) {
      ExpectType(r, t, TType::kBinary, "KeyValue.value");
      kv.value = std::string(r.Binary());
    } else {
      r.Skip(t);
    }
  }
  r.StructEnd();
  Require(r, has_key, "KeyValue.key");
  return kv;
}

thrift::ListHeader ExpectList(CompactReader& r, TType t, TType elem, const char* field) {
  ExpectType(r, t, TType::kList, field);
  thrift::ListHeader h = r.ReadListHeader();
  if (h.elem != elem) r.Fail(std::string("field ") + field + " has the wrong element type");
  return h;
}

ColumnMetaData ReadColumnMetaData(CompactReader& r) {
  ColumnMetaData m;
  bool seen[10] = {};
  r.StructBegin();
  std::int16_t id;
  TType t;
  while (r.NextField(&id, &t)) {
    switch (id) {
      case 1: ExpectType(r, t, TType::kI32, "ColumnMetaData.type"); m.type = ReadEnum<Type>(r); break;
      case 2: {
        const auto h = ExpectList(r, t, TType::kI32, "ColumnMetaData.encodings");
        m.encodings.clear();
        for (std::uint32_t i = 0; i < h.size; ++i) m.encodings.push_back(ReadEnum<Encoding>(r));
        break;
      }
      case 3: {
        const auto h = ExpectList(r, t, TType::kBinary, "ColumnMetaData.path_in_schema");
        m.path_in_schema.clear();
        for (std::uint32_t i = 0; i < h.size; ++i) m.path_in_schema.emplace_back(r.Binary());
        break;
      }
      case 4: ExpectType(r, t, TType::kI32, "ColumnMetaData.codec"); m.codec = ReadEnum<Codec>(r); break;
      case 5: ExpectType(r, t, TType::kI64, "ColumnMetaData.num_values"); m.num_values = r.I64(); break;
      case 6: ExpectType(r, t, TType::kI64, "ColumnMetaData.total_uncompressed_size"); m.total_uncompressed_size = r.I64(); break;
      case 7: ExpectType(r, t, TType::kI64, "ColumnMetaData.total_compressed_size"); m.total_compressed_size = r.I64(); break;
      case 9: ExpectType(r, t, TType::kI64, "ColumnMetaData.data_page_offset"); m.data_page_offset = r.I64(); break;
      case 11: ExpectType(r, t, TType::kI64, "ColumnMetaData.dictionary_page_offset"); m.dictionary_page_offset = r.I64(); break;
      case 12: ExpectType(r, t, TType::kStruct, "ColumnMetaData.statistics"); m.statistics = ReadStatistics(r); break;
      default: r.Skip(t);
    }
    if (id >= 1 && id <= 9) seen[id] = true;
  }
  r.StructEnd();
  Require(r, seen[1], "ColumnMetaData.type");
  Require(r, seen[2], "ColumnMetaData.encodings");
  Require(r, seen[3], "ColumnMetaData.path_in_schema");
  Require(r, seen[4], "ColumnMetaData.codec");
  Require(r, seen[5], "ColumnMetaData.num_values");
  Require(r, seen[6], "ColumnMetaData.total_uncompressed_size");
  Require(r, seen[7], "ColumnMetaData.total_compressed_size");
  Require(r, seen[9], "ColumnMetaData.data_page_offset");
  return m;
}

ColumnChunk ReadColumnChunk(CompactReader& r) {
  ColumnChunk c;
  r.StructBegin();
  std::int16_t id;
  TType t;
  while (r.NextField(&id, &t)) {
    switch (id) {
      case 1: ExpectType(r, t, TType::kBinary, "ColumnChunk.file_path"); c.file_path = std::string(r.Binary()); break;
      // file_offset is required by the spec but deprecated and unused; tolerate its absence.
      case 2: ExpectType(r, t, TType::kI64, "ColumnChunk.file_offset"); c.file_offset = r.I64(); break;
      case 3: ExpectType(r, t, TType::kStruct, "ColumnChunk.meta_data"); c.meta_data = ReadColumnMetaData(r); break;
      default: r.Skip(t);
    }
  }
  r.StructEnd();
  return c;
}

RowGroup ReadRowGroup(CompactReader& r) {
  RowGroup g;
  bool has_columns = false, has_size = false, has_rows = false;
  r.StructBegin();
  std::int16_t id;
  TType t;
  while (r.NextField(&id, &t)) {
    switch (id) {
      case 1: {
        const auto h = ExpectList(r, t, TType::kStruct, "RowGroup.columns");
        g.columns.clear();
        for (std::uint32_t i = 0; i < h.size; ++i) g.columns.push_back(ReadColumnChunk(r));
        has_columns = true;
        break;
      }
      case 2: ExpectType(r, t, TType::kI64, "RowGroup.total_byte_size"); g.total_byte_size = r.I64(); has_size = true; break;
      case 3: ExpectType(r, t, TType::kI64, "RowGroup.num_rows"); g.num_rows = r.I64(); has_rows = true; break;
      case 5: ExpectType(r, t, TType::kI64, "RowGroup.file_offset"); g.file_offset = r.I64(); break;
      case 6: ExpectType(r, t, TType::kI64, "RowGroup.total_compressed_size"); g.total_compressed_size = r.I64(); break;
      case 7: ExpectType(r, t, TType::kI16, "RowGroup.ordinal"); g.ordinal = r.I16(); break;
      default: r.Skip(t);
    }
  }
  r.StructEnd();
  Require(r, has_columns, "RowGroup.columns");
  Require(r, has_size, "RowGroup.total_byte_size");
  Require(r, has_rows, "RowGroup.num_rows");
  return g;
}

std::int16_t ReadColumnOrder(CompactReader& r) {
  std::int16_t member = 0;
  r.StructBegin();
  std::int16_t id;
  TType t;
  while (r.NextField(&id, &t)) {
    member = id;
    r.Skip(t);
  }
  r.StructEnd();
  return member;
}

DataPageHeader ReadDataPageHeader(CompactReader& r) {
  DataPageHeader h;
  bool seen[5] = {};
  r.StructBegin();
  std::int16_t id;
  TType t;
  while (r.NextField(&id, &t)) {
    switch (id) {
      case 1: ExpectType(r, t, TType::kI32, "DataPageHeader.num_values"); h.num_values = r.I32(); break;
      case 2: ExpectType(r, t, TType::kI32, "DataPageHeader.encoding"); h.encoding = ReadEnum<Encoding>(r); break;
      case 3: ExpectType(r, t, TType::kI32, "DataPageHeader.definition_level_encoding"); h.definition_level_encoding = ReadEnum<Encoding>(r); break;
      case 4: ExpectType(r, t, TType::kI32, "DataPageHeader.repetition_level_encoding"); h.repetition_level_encoding = ReadEnum<Encoding>(r); break;
      case 5: ExpectType(r, t, TType::kStruct, "DataPageHeader.statistics"); h.statistics = ReadStatistics(r); break;
      default: r.Skip(t);
    }
    if (id >= 1 && id <= 4) seen[id] = true;
  }
  r.StructEnd();
  Require(r, seen[1], "DataPageHeader.num_values");
  Require(r, seen[2], "DataPageHeader.encoding");
  Require(r, seen[3], "DataPageHeader.definition_level_encoding");
  Require(r, seen[4], "DataPageHeader.repetition_level_encoding");
  return h;
}

DictionaryPageHeader ReadDictionaryPageHeader(CompactReader& r) {
  DictionaryPageHeader h;
  bool has_values = false, has_encoding = false;
  r.StructBegin();
  std::int16_t id;
  TType t;
  while (r.NextField(&id, &t)) {
    switch (id) {
      case 1: ExpectType(r, t, TType::kI32, "DictionaryPageHeader.num_values"); h.num_values = r.I32(); has_values = true; break;
      case 2: ExpectType(r, t, TType::kI32, "DictionaryPageHeader.encoding"); h.encoding = ReadEnum<Encoding>(r); has_encoding = true; break;
      case 3: ExpectBool(r, t, "DictionaryPageHeader.is_sorted"); h.is_sorted = r.FieldBoolValue(t); break;
      default: r.Skip(t);
    }
  }
  r.StructEnd();
  Require(r, has_values, "DictionaryPageHeader.num_values");
  Require(r, has_encoding, "DictionaryPageHeader.encoding");
  return h;
}

DataPageHeaderV2 ReadDataPageHeaderV2(CompactReader& r) {
  DataPageHeaderV2 h;
  bool seen[7] = {};
  r.StructBegin();
  std::int16_t id;
  TType t;
  while (r.NextField(&id, &t)) {
    switch (id) {
      case 1: ExpectType(r, t, TType::kI32, "DataPageHeaderV2.num_values"); h.num_values = r.I32(); break;
      case 2: ExpectType(r, t, TType::kI32, "DataPageHeaderV2.num_nulls"); h.num_nulls = r.I32(); break;
      case 3: ExpectType(r, t, TType::kI32, "DataPageHeaderV2.num_rows"); h.num_rows = r.I32(); break;
      case 4: ExpectType(r, t, TType::kI32, "DataPageHeaderV2.encoding"); h.encoding = ReadEnum<Encoding>(r); break;
      case 5: ExpectType(r, t, TType::kI32, "DataPageHeaderV2.definition_levels_byte_length"); h.definition_levels_byte_length = r.I32(); break;
      case 6: ExpectType(r, t, TType::kI32, "DataPageHeaderV2.repetition_levels_byte_length"); h.repetition_levels_byte_length = r.I32(); break;
      case 7: ExpectBool(r, t, "DataPageHeaderV2.is_compressed"); h.is_compressed = r.FieldBoolValue(t); break;
      case 8: ExpectType(r, t, TType::kStruct, "DataPageHeaderV2.statistics"); h.statistics = ReadStatistics(r); break;
      default: r.Skip(t);
    }
    if (id >= 1 && id <= 6) seen[id] = true;
  }
  r.StructEnd();
  for (int i = 1; i <= 6; ++i) Require(r, seen[i], "DataPageHeaderV2 field");
  return h;
}

}  // namespace

void AppendFileMetaData(const FileMetaData& m, std::string* out) {
  CompactWriter w(out);
  w.StructBegin();
  w.FieldI32(1, m.version);
  w.FieldListBegin(2, TType::kStruct, m.schema.size());
  for (const auto& e : m.schema) WriteSchemaElement(w, e);
  w.FieldI64(3, m.num_rows);
  w.FieldListBegin(4, TType::kStruct, m.row_groups.size());
  for (const auto& g : m.row_groups) WriteRowGroup(w, g);
  if (!m.key_value_metadata.empty()) {
    w.FieldListBegin(5, TType::kStruct, m.key_value_metadata.size());
    for (const auto& kv : m.key_value_metadata) WriteKeyValue(w, kv);
  }
  if (m.created_by) w.FieldBinary(6, *m.created_by);
  if (!m.column_orders.empty()) {
    w.FieldListBegin(7, TType::kStruct, m.column_orders.size());
    for (std::int16_t member : m.column_orders) {
      w.StructBegin();
      w.FieldEmptyStruct(member);
      w.StructEnd();
    }
  }
  w.StructEnd();
}

void AppendPageHeader(const PageHeader& h, std::string* out) {
  CompactWriter w(out);
  w.StructBegin();
  w.FieldI32(1, static_cast<std::int32_t>(h.type));
  w.FieldI32(2, h.uncompressed_page_size);
  w.FieldI32(3, h.compressed_page_size);
  if (h.crc) w.FieldI32(4, *h.crc);
  if (h.data_page_header) {
    const DataPageHeader& d = *h.data_page_header;
    w.FieldStructBegin(5);
    w.FieldI32(1, d.num_values);
    w.FieldI32(2, static_cast<std::int32_t>(d.encoding));
    w.FieldI32(3, static_cast<std::int32_t>(d.definition_level_encoding));
    w.FieldI32(4, static_cast<std::int32_t>(d.repetition_level_encoding));
    if (d.statistics) {
      w.FieldBegin(5, TType::kStruct);
      WriteStatistics(w, *d.statistics);
    }
    w.StructEnd();
  }
  if (h.dictionary_page_header) {
    const DictionaryPageHeader& d = *h.dictionary_page_header;
    w.FieldStructBegin(7);
    w.FieldI32(1, d.num_values);
    w.FieldI32(2, static_cast<std::int32_t>(d.encoding));
    if (d.is_sorted) w.FieldBool(3, *d.is_sorted);
    w.StructEnd();
  }
  if (h.data_page_header_v2) {
    const DataPageHeaderV2& d = *h.data_page_header_v2;
    w.FieldStructBegin(8);
    w.FieldI32(1, d.num_values);
    w.FieldI32(2, d.num_nulls);
    w.FieldI32(3, d.num_rows);
    w.FieldI32(4, static_cast<std::int32_t>(d.encoding));
    w.FieldI32(5, d.definition_levels_byte_length);
    w.FieldI32(6, d.repetition_levels_byte_length);
    w.FieldBool(7, d.is_compressed);
    if (d.statistics) {
      w.FieldBegin(8, TType::kStruct);
      WriteStatistics(w, *d.statistics);
    }
    w.StructEnd();
  }
  w.StructEnd();
}

FileMetaData DecodeFileMetaData(std::string_view data, std::string_view what) {
  CompactReader r(data, what);
  FileMetaData m;
  bool has_version = false, has_schema = false, has_rows = false, has_groups = false;
  r.StructBegin();
  std::int16_t id;
  TType t;
  while (r.NextField(&id, &t)) {
    switch (id) {
      case 1: ExpectType(r, t, TType::kI32, "FileMetaData.version"); m.version = r.I32(); has_version = true; break;
      case 2: {
        const auto h = ExpectList(r, t, TType::kStruct, "FileMetaData.schema");
        m.schema.clear();
        for (std::uint32_t i = 0; i < h.size; ++i) m.schema.push_back(ReadSchemaElement(r));
        has_schema = true;
        break;
      }
      case 3: ExpectType(r, t, TType::kI64, "FileMetaData.num_rows"); m.num_rows = r.I64(); has_rows = true; break;
      case 4: {
        const auto h = ExpectList(r, t, TType::kStruct, "FileMetaData.row_groups");
        m.row_groups.clear();
        for (std::uint32_t i = 0; i < h.size; ++i) m.row_groups.push_back(ReadRowGroup(r));
        has_groups = true;
        break;
      }
      case 5: {
        const auto h = ExpectList(r, t, TType::kStruct, "FileMetaData.key_value_metadata");
        m.key_value_metadata.clear();
        for (std::uint32_t i = 0; i < h.size; ++i) m.key_value_metadata.push_back(ReadKeyValue(r));
        break;
      }
      case 6: ExpectType(r, t, TType::kBinary, "FileMetaData.created_by"); m.created_by = std::string(r.Binary()); break;
      case 7: {
        const auto h = ExpectList(r, t, TType::kStruct, "FileMetaData.column_orders");
        m.column_orders.clear();
        for (std::uint32_t i = 0; i < h.size; ++i) m.column_orders.push_back(ReadColumnOrder(r));
        break;
      }
      case 8: m.encrypted = true; r.Skip(t); break;
      default: r.Skip(t);
    }
  }
  r.StructEnd();
  Require(r, has_version, "FileMetaData.version");
  Require(r, has_schema, "FileMetaData.schema");
  Require(r, has_rows, "FileMetaData.num_rows");
  Require(r, has_groups, "FileMetaData.row_groups");
  return m;
}

PageHeader DecodePageHeader(std::string_view data, std::string_view what, std::size_t* consumed) {
  CompactReader r(data, what);
  PageHeader h;
  bool has_type = false, has_usize = false, has_csize = false;
  r.StructBegin();
  std::int16_t id;
  TType t;
  while (r.NextField(&id, &t)) {
    switch (id) {
      case 1: ExpectType(r, t, TType::kI32, "PageHeader.type"); h.type = ReadEnum<PageType>(r); has_type = true; break;
      case 2: ExpectType(r, t, TType::kI32, "PageHeader.uncompressed_page_size"); h.uncompressed_page_size = r.I32(); has_usize = true; break;
      case 3: ExpectType(r, t, TType::kI32, "PageHeader.compressed_page_size"); h.compressed_page_size = r.I32(); has_csize = true; break;
      case 4: ExpectType(r, t, TType::kI32, "PageHeader.crc"); h.crc = r.I32(); break;
      case 5: ExpectType(r, t, TType::kStruct, "PageHeader.data_page_header"); h.data_page_header = ReadDataPageHeader(r); break;
      case 7: ExpectType(r, t, TType::kStruct, "PageHeader.dictionary_page_header"); h.dictionary_page_header = ReadDictionaryPageHeader(r); break;
      case 8: ExpectType(r, t, TType::kStruct, "PageHeader.data_page_header_v2"); h.data_page_header_v2 = ReadDataPageHeaderV2(r); break;
      default: r.Skip(t);
    }
  }
  r.StructEnd();
  Require(r, has_type, "PageHeader.type");
  Require(r, has_usize, "PageHeader.uncompressed_page_size");
  Require(r, has_csize, "PageHeader.compressed_page_size");
  *consumed = r.position();
  return h;
}

}  // namespace fruitpipe::parquet::format
