#include "fruitpipe/parquet/thrift_compact.h"

#include <bit>
#include <cstring>
#include <limits>

#include "fruitpipe/common/error.h"

namespace fruitpipe::parquet::thrift {

std::uint64_t ZigZagEncode(std::int64_t v) {
  return (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63);
}

std::int64_t ZigZagDecode(std::uint64_t v) {
  return static_cast<std::int64_t>(v >> 1) ^ -static_cast<std::int64_t>(v & 1);
}

// ---- writer ----

void CompactWriter::StructBegin() { last_field_.push_back(0); }

void CompactWriter::StructEnd() {
  out_->push_back(static_cast<char>(Type::kStop));
  last_field_.pop_back();
}

void CompactWriter::FieldBegin(std::int16_t id, Type type) {
  std::int16_t& last = last_field_.back();
  const int delta = id - last;
  if (delta > 0 && delta <= 15) {
    out_->push_back(static_cast<char>((delta << 4) | static_cast<int>(type)));
  } else {
    out_->push_back(static_cast<char>(type));
    I16(id);
  }
  last = id;
}

void CompactWriter::FieldBool(std::int16_t id, bool v) {
  FieldBegin(id, v ? Type::kTrue : Type::kFalse);
}

void CompactWriter::ListBegin(Type elem, std::size_t size) {
  // Bool elements are declared with type 1 (kTrue) in list headers.
  const int t = static_cast<int>(elem == Type::kFalse ? Type::kTrue : elem);
  if (size < 15) {
    out_->push_back(static_cast<char>((size << 4) | t));
  } else {
    out_->push_back(static_cast<char>(0xF0 | t));
    Varint(size);
  }
}

void CompactWriter::Bool(bool v) { out_->push_back(v ? 1 : 2); }

void CompactWriter::Byte(std::int8_t v) { out_->push_back(static_cast<char>(v)); }

void CompactWriter::Double(double v) {
  static_assert(std::endian::native == std::endian::little, "compact doubles are little-endian");
  char buf[8];
  std::memcpy(buf, &v, 8);
  out_->append(buf, 8);
}

void CompactWriter::Binary(std::string_view v) {
  Varint(v.size());
  out_->append(v);
}

void CompactWriter::Varint(std::uint64_t v) {
  while (v >= 0x80) {
    out_->push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out_->push_back(static_cast<char>(v));
}

// ---- reader ----

CompactReader::CompactReader(std::string_view data, std::string_view what)
    : data_(data), what_(what) {}

void CompactReader::Fail(std::string_view cause) const {
  throw CorruptionError(std::string(what_) + ": corrupt thrift metadata at byte " +
                        std::to_string(pos_) + ": " + std::string(cause));
}

std::uint8_t CompactReader::ReadByte() {
  if (pos_ >= data_.size()) Fail("truncated");
  return static_cast<std::uint8_t>(data_[pos_++]);
}

void CompactReader::StructBegin() {
  if (last_field_.size() >= static_cast<std::size_t>(kMaxDepth)) Fail("structs nested too deeply");
  last_field_.push_back(0);
}

void CompactReader::StructEnd() { last_field_.pop_back(); }

bool CompactReader::NextField(std::int16_t* id, Type* type) {
  const std::uint8_t b = ReadByte();
  const int t = b & 0x0F;
  if (t == 0) {
    if (b != 0) Fail("bad stop byte");
    return false;
  }
  if (t > static_cast<int>(Type::kStruct)) Fail("unknown field type " + std::to_string(t));
  const int delta = b >> 4;
  std::int16_t& last = last_field_.back();
  if (delta != 0) {
    if (last > std::numeric_limits<std::int16_t>::max() - delta) Fail("field id overflow");
    *id = static_cast<std::int16_t>(last + delta);
  } else {
    *id = I16();
  }
  last = *id;
  *type = static_cast<Type>(t);
  return true;
}

bool CompactReader::FieldBoolValue(Type field_type) const {
  if (field_type == Type::kTrue) return true;
  if (field_type == Type::kFalse) return false;
  Fail("expected a bool field");
}

bool CompactReader::Bool() {
  // The spec says 1 = true, 2 = false; some writers use 0 for false.
  const std::uint8_t b = ReadByte();
  if (b > 2) Fail("bad bool");
  return b == 1;
}

std::int8_t CompactReader::Byte() { return static_cast<std::int8_t>(ReadByte()); }

std::uint64_t CompactReader::Varint() {
  std::uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    const std::uint8_t b = ReadByte();
    v |= static_cast<std::uint64_t>(b & 0x7F) << shift;
    if ((b & 0x80) == 0) {
      if (shift == 63 && b > 1) Fail("varint overflows 64 bits");
      return v;
    }
  }
  Fail("varint longer than 10 bytes");
}

std::int16_t CompactReader::I16() {
  const std::int64_t v = ZigZagDecode(Varint());
  if (v < std::numeric_limits<std::int16_t>::min() || v > std::numeric_limits<std::int16_t>::max()) {
    Fail("i16 out of range");
  }
  return static_cast<std::int16_t>(v);
}

std::int32_t CompactReader::I32() {
  const std::int64_t v = ZigZagDecode(Varint());
  if (v < std::numeric_limits<std::int32_t>::min() || v > std::numeric_limits<std::int32_t>::max()) {
    Fail("i32 out of range");
  }
  return static_cast<std::int32_t>(v);
}

std::int64_t CompactReader::I64() { return ZigZagDecode(Varint()); }

double CompactReader::Double() {
  if (data_.size() - pos_ < 8) Fail("truncated double");
  double v;
  std::memcpy(&v, data_.data() + pos_, 8);
  pos_ += 8;
  return v;
}

std::string_view CompactReader::Binary() {
  const std::uint64_t n = Varint();
  if (n > data_.size() - pos_) Fail("binary length " + std::to_string(n) + " exceeds the input");
  std::string_view v = data_.substr(pos_, n);
  pos_ += n;
  return v;
}

ListHeader CompactReader::ReadListHeader() {
  const std::uint8_t b = ReadByte();
  const int t = b & 0x0F;
  std::uint64_t size = b >> 4;
  if (size == 15) size = Varint();
  if (t == 0 || t > static_cast<int>(Type::kStruct)) Fail("bad list element type");
  // Every element takes at least one byte, so a longer list cannot fit in what is left.
  if (size > data_.size() - pos_) Fail("list size " + std::to_string(size) + " exceeds the input");
  return {static_cast<Type>(t), static_cast<std::uint32_t>(size)};
}

void CompactReader::Skip(Type type) { SkipDepth(type, static_cast<int>(last_field_.size())); }

void CompactReader::SkipDepth(Type type, int depth) {
  if (depth >= kMaxDepth) Fail("values nested too deeply");
  switch (type) {
    case Type::kTrue:
    case Type::kFalse:
      return;  // a bool field's value lives in its header
    case Type::kByte:
      ReadByte();
      return;
    case Type::kI16:
    case Type::kI32:
    case Type::kI64:
      Varint();
      return;
    case Type::kDouble:
      Double();
      return;
    case Type::kBinary:
      Binary();
      return;
    case Type::kList:
    case Type::kSet: {
      const ListHeader h = ReadListHeader();
      for (std::uint32_t i = 0; i < h.size; ++i) {
        if (h.elem == Type::kTrue || h.elem == Type::kFalse) {
          Bool();
        } else {
          SkipDepth(h.elem, depth + 1);
        }
      }
      return;
    }
    case Type::kMap: {
      const std::uint64_t size = Varint();
      if (size == 0) return;
      if (size > data_.size() - pos_) Fail("map size exceeds the input");
      const std::uint8_t kv = ReadByte();
      const Type k = static_cast<Type>(kv >> 4);
      const Type v = static_cast<Type>(kv & 0x0F);
      if (kv >> 4 == 0 || kv >> 4 > 12 || (kv & 0x0F) == 0 || (kv & 0x0F) > 12) Fail("bad map types");
      for (std::uint64_t i = 0; i < size; ++i) {
        if (k == Type::kTrue || k == Type::kFalse) Bool(); else SkipDepth(k, depth + 1);
        if (v == Type::kTrue || v == Type::kFalse) Bool(); else SkipDepth(v, depth + 1);
      }
      return;
    }
    case Type::kStruct: {
      StructBegin();
      std::int16_t id;
      Type t;
      while (NextField(&id, &t)) SkipDepth(t, depth + 1);
      StructEnd();
      return;
    }
    case Type::kStop:
      break;
  }
  Fail("cannot skip a value of type " + std::to_string(static_cast<int>(type)));
}

}  // namespace fruitpipe::parquet::thrift
