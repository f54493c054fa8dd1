// The Thrift compact protocol, as much of it as Parquet metadata needs: structs with
// delta-encoded field headers, lists, i16/i32/i64 zigzag varints, doubles, bools and binary.
// Kept apart from the Parquet structs (metadata.h) so it can be tested and fuzzed on its own.
//
// The reader treats its input as hostile: every length is checked against the bytes left,
// nesting is bounded, and any violation throws CorruptionError naming `what` (the input).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fruitpipe::parquet::thrift {

// Compact-protocol type ids, as they appear in field and list headers.
enum class Type : std::uint8_t {
  kStop = 0,
  kTrue = 1,  // a bool field holding true; in list headers: bool elements
  kFalse = 2,
  kByte = 3,
  kI16 = 4,
  kI32 = 5,
  kI64 = 6,
  kDouble = 7,
  kBinary = 8,
  kList = 9,
  kSet = 10,
  kMap = 11,
  kStruct = 12,
};

std::uint64_t ZigZagEncode(std::int64_t v);
std::int64_t ZigZagDecode(std::uint64_t v);

// Appends compact-protocol bytes to a string. Structs nest: StructBegin/StructEnd bracket a
// struct's fields (the top-level struct too); field ids must increase within a struct for the
// short delta form to be used, but any order is encoded correctly.
class CompactWriter {
 public:
  explicit CompactWriter(std::string* out) : out_(out) {}

  void StructBegin();
  void StructEnd();  // writes the stop byte

  void FieldBegin(std::int16_t id, Type type);
  void FieldBool(std::int16_t id, bool v);
  void FieldI32(std::int16_t id, std::int32_t v) { FieldBegin(id, Type::kI32); I32(v); }
  void FieldI64(std::int16_t id, std::int64_t v) { FieldBegin(id, Type::kI64); I64(v); }
  void FieldBinary(std::int16_t id, std::string_view v) { FieldBegin(id, Type::kBinary); Binary(v); }
  void FieldDouble(std::int16_t id, double v) { FieldBegin(id, Type::kDouble); Double(v); }
  // Opens a struct-valued field; close it with StructEnd().
  void FieldStructBegin(std::int16_t id) { FieldBegin(id, Type::kStruct); StructBegin(); }
  // An empty struct (union members such as LogicalType.STRING carry no fields).
  void FieldEmptyStruct(std::int16_t id) { FieldStructBegin(id); StructEnd(); }
  void FieldListBegin(std::int16_t id, Type elem, std::size_t size) {
    FieldBegin(id, Type::kList);
    ListBegin(elem, size);
  }

  // Values: inside lists, or after FieldBegin.
  void ListBegin(Type elem, std::size_t size);
  void Bool(bool v);  // list element form: one byte
  void Byte(std::int8_t v);
  void I16(std::int16_t v) { Varint(ZigZagEncode(v)); }
  void I32(std::int32_t v) { Varint(ZigZagEncode(v)); }
  void I64(std::int64_t v) { Varint(ZigZagEncode(v)); }
  void Double(double v);
  void Binary(std::string_view v);
  void Varint(std::uint64_t v);

 private:
  std::string* out_;
  std::vector<std::int16_t> last_field_;  // one entry per open struct
};

struct ListHeader {
  Type elem;
  std::uint32_t size;
};

// Reads compact-protocol bytes. Usage for a struct:
//   r.StructBegin(); int16_t id; Type t; while (r.NextField(&id, &t)) { switch (id) ... }
//   r.StructEnd();
// Unknown fields are passed to Skip(t).
class CompactReader {
 public:
  // Deep nesting is the only way a small input could exhaust the stack; Parquet metadata
  // nests about 6 levels (FileMetaData > RowGroup > ColumnChunk > ColumnMetaData > Statistics).
  static constexpr int kMaxDepth = 32;

  CompactReader(std::string_view data, std::string_view what);

  void StructBegin();
  void StructEnd();
  // Reads the next field header of the current struct; false at its stop byte.
  bool NextField(std::int16_t* id, Type* type);

  // Reads a bool field's value (held in its header type) or a bool list element (one byte).
  bool FieldBoolValue(Type field_type) const;
  bool Bool();
  std::int8_t Byte();
  std::int16_t I16();
  std::int32_t I32();
  std::int64_t I64();
  double Double();
  std::string_view Binary();  // a view into the input
  std::uint64_t Varint();
  // The element count is checked against the bytes left (every element takes at least one).
  ListHeader ReadListHeader();

  // Skips a value of `type`, recursing through containers.
  void Skip(Type type);

  std::size_t position() const { return pos_; }
  std::string_view what() const { return what_; }
  [[noreturn]] void Fail(std::string_view cause) const;

 private:
  std::uint8_t ReadByte();
  void SkipDepth(Type type, int depth);

  std::string_view data_;
  std::string_view what_;
  std::size_t pos_ = 0;
  std::vector<std::int16_t> last_field_;
};

}  // namespace fruitpipe::parquet::thrift
