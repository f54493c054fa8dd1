#include "fruitpipe/image/container.h"

#include <zlib.h>

#include <cstring>

namespace fruitpipe::image::container {
namespace {

std::uint8_t Byte(std::string_view b, std::size_t i) { return static_cast<std::uint8_t>(b[i]); }
std::uint32_t Be16(std::string_view b, std::size_t i) {
  return (std::uint32_t{Byte(b, i)} << 8) | Byte(b, i + 1);
}
std::uint32_t Be32(std::string_view b, std::size_t i) { return (Be16(b, i) << 16) | Be16(b, i + 2); }

}  // namespace

// ---- JPEG ---------------------------------------------------------------------------------

bool IsJpegSof(std::uint8_t m) { return m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC; }

bool IsJpegStandalone(std::uint8_t m) { return m == 0x00 || m == 0x01 || (m >= 0xD0 && m <= 0xD9); }

bool JpegReader::Fail(JpegError::Kind kind, std::size_t offset, std::size_t length) {
  using K = JpegError::Kind;
  error_.kind = kind;
  error_.offset = offset;
  error_.length = length;
  const std::string at = std::to_string(offset);
  switch (kind) {
    case K::kNoMarker: error_.message = "truncated JPEG: no EOI marker"; break;
    case K::kMarkerExpected: error_.message = "corrupt JPEG: marker expected at offset " + at; break;
    case K::kLengthMissing: error_.message = "truncated JPEG: segment length missing at offset " + at; break;
    case K::kBadLength:
      error_.message = "corrupt JPEG: segment length " + std::to_string(length) + " at offset " + at;
      break;
    case K::kPastEnd:
      error_.message = "truncated JPEG: segment of " + std::to_string(length) + " bytes at offset " + at +
                       " runs past the end";
      break;
    case K::kScanPastEnd: error_.message = "truncated JPEG: scan data runs to the end without EOI"; break;
    case K::kNone: break;
  }
  have_marker_ = false;
  return false;
}

bool JpegReader::NextMarker(JpegMarker* marker) {
  if (!ok() || done_) return false;
  if (pos_ >= b_.size()) return Fail(JpegError::Kind::kNoMarker, pos_);
  if (Byte(b_, pos_) != 0xFF) return Fail(JpegError::Kind::kMarkerExpected, pos_);
  while (pos_ < b_.size() && Byte(b_, pos_) == 0xFF) ++pos_;  // fill bytes
  if (pos_ >= b_.size()) return Fail(JpegError::Kind::kNoMarker, pos_);
  marker_.offset = pos_ - 1;
  marker_.code = Byte(b_, pos_++);
  have_marker_ = true;
  if (marker_.code == 0xD9) done_ = true;
  *marker = marker_;
  return true;
}

bool JpegReader::ReadSegment(JpegSegment* s) {
  if (!have_marker_) {
    JpegMarker ignored;
    if (!NextMarker(&ignored)) return false;
  }
  have_marker_ = false;
  *s = JpegSegment();
  s->marker = marker_.code;
  s->offset = marker_.offset;
  if (IsJpegStandalone(marker_.code)) {
    s->bytes = b_.substr(marker_.offset, 2);
    return true;
  }
  if (pos_ + 2 > b_.size()) return Fail(JpegError::Kind::kLengthMissing, pos_);
  const std::size_t len = Be16(b_, pos_);
  if (len < 2) return Fail(JpegError::Kind::kBadLength, pos_, len);
  if (pos_ + len > b_.size()) return Fail(JpegError::Kind::kPastEnd, pos_, len);
  s->payload = b_.substr(pos_ + 2, len - 2);
  s->bytes = b_.substr(marker_.offset, 2 + len);
  pos_ += len;
  return true;
}

// Entropy-coded data ends at the first 0xFF that is neither a stuffed byte (FF 00) nor a
// restart marker (FF D0..D7): a marker, or fill bytes before one.
bool JpegReader::ReadScanData(std::string_view* data) {
  if (!ok()) return false;
  const std::size_t start = pos_;
  std::size_t p = pos_;
  while (true) {
    const void* ff = std::memchr(b_.data() + p, 0xFF, b_.size() - p);
    if (ff == nullptr) return Fail(JpegError::Kind::kScanPastEnd, start);
    p = static_cast<std::size_t>(static_cast<const char*>(ff) - b_.data());
    if (p + 1 >= b_.size()) return Fail(JpegError::Kind::kScanPastEnd, start);
    const std::uint8_t next = Byte(b_, p + 1);
    if (next == 0x00 || (next >= 0xD0 && next <= 0xD7)) {
      p += 2;
      continue;
    }
    break;
  }
  *data = b_.substr(start, p - start);
  pos_ = p;
  return true;
}

bool JpegReader::Next(JpegSegment* s) {
  if (!ReadSegment(s)) return false;
  if (s->marker == 0xDA) return ReadScanData(&s->scan_data);
  return true;
}

// ---- PNG ----------------------------------------------------------------------------------

std::uint32_t PngCrc(std::string_view type, std::string_view data) {
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, reinterpret_cast<const Bytef*>(type.data()), static_cast<uInt>(type.size()));
  crc = crc32(crc, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size()));
  return static_cast<std::uint32_t>(crc);
}

bool PngChunk::TypeIsLetters() const {
  if (type.size() != 4) return false;
  for (char c : type) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) return false;
  }
  return true;
}

bool PngReader::Fail(PngError::Kind kind, std::size_t offset, std::uint64_t length, std::string message) {
  error_.kind = kind;
  error_.offset = offset;
  error_.length = length;
  error_.message = std::move(message);
  return false;
}

bool PngReader::Next(PngChunk* c) {
  if (!ok() || done_) return false;
  const auto at = [&] { return std::to_string(pos_); };
  if (pos_ + 12 > b_.size()) return Fail(PngError::Kind::kNoChunk, pos_, 0, "truncated PNG: no IEND chunk");
  const std::uint32_t len = Be32(b_, pos_);
  if (len > 0x7fffffffu) {
    return Fail(PngError::Kind::kBadLength, pos_, len,
                "corrupt PNG: chunk length " + std::to_string(len) + " at offset " + at());
  }
  if (pos_ + 12 + std::uint64_t{len} > b_.size()) {
    return Fail(PngError::Kind::kPastEnd, pos_, len,
                "truncated PNG: chunk of " + std::to_string(len) + " bytes at offset " + at() + " runs past the end");
  }
  *c = PngChunk();
  c->offset = pos_;
  c->type = b_.substr(pos_ + 4, 4);
  c->data = b_.substr(pos_ + 8, len);
  c->bytes = b_.substr(pos_, 12 + std::size_t{len});
  c->crc = Be32(b_, pos_ + 8 + len);
  if (verify_crc_ && !c->CrcMatches()) {
    return Fail(PngError::Kind::kBadCrc, pos_, len, "corrupt PNG: bad CRC of the chunk at offset " + at());
  }
  pos_ += 12 + std::size_t{len};
  if (c->type == "IEND") done_ = true;
  return true;
}

}  // namespace fruitpipe::image::container
