#include "fruitpipe/image/formats.h"

#include <cstdint>
#include <optional>

#include "fruitpipe/image/container.h"

namespace fruitpipe::image::internal {
namespace {

using u8 = std::uint8_t;

u8 Byte(std::string_view b, std::size_t i) { return static_cast<u8>(b[i]); }

std::uint32_t Be16(std::string_view b, std::size_t i) {
  return (std::uint32_t{Byte(b, i)} << 8) | Byte(b, i + 1);
}
std::uint32_t Be32(std::string_view b, std::size_t i) { return (Be16(b, i) << 16) | Be16(b, i + 2); }
std::uint32_t Le16(std::string_view b, std::size_t i) {
  return Byte(b, i) | (std::uint32_t{Byte(b, i + 1)} << 8);
}
std::uint32_t Le24(std::string_view b, std::size_t i) {
  return Le16(b, i) | (std::uint32_t{Byte(b, i + 2)} << 16);
}
std::uint32_t Le32(std::string_view b, std::size_t i) { return Le16(b, i) | (Le16(b, i + 2) << 16); }

std::string Hex2(u8 v) {
  static constexpr char kDigits[] = "0123456789abcdef";
  return {kDigits[v >> 4], kDigits[v & 15]};
}

bool Fail(std::string* reason, std::string text) {
  *reason = std::move(text);
  return false;
}

// Dimensions beyond int are refused here so later arithmetic (width*height) cannot overflow.
bool SetDims(HeaderInfo* info, std::uint64_t w, std::uint64_t h, int channels, std::string* reason) {
  constexpr std::uint64_t kMaxSide = 1u << 30;
  if (w > kMaxSide || h > kMaxSide) {
    return Fail(reason, "declared " + std::to_string(w) + "x" + std::to_string(h) +
                            " pixels is not a plausible image size");
  }
  info->width = static_cast<int>(w);
  info->height = static_cast<int>(h);
  info->channels = channels;
  return true;
}

// Minimal TIFF reader over a byte range: enough for IFD0 entries holding one SHORT or LONG.
class Tiff {
 public:
  explicit Tiff(std::string_view d) : d_(d) {
    if (d_.size() < 8) return;
    if (d_.substr(0, 4) == std::string_view("II*\0", 4)) {
      le_ = true;
    } else if (d_.substr(0, 4) == std::string_view("MM\0*", 4)) {
      le_ = false;
    } else {
      return;
    }
    valid_ = true;
  }
  bool valid() const { return valid_; }

  // Value of `tag` in IFD0 when it is a single SHORT or LONG.
  std::optional<std::uint32_t> Ifd0Value(std::uint16_t tag) const {
    if (!valid_) return std::nullopt;
    const std::uint64_t ifd = U32(4);
    if (ifd + 2 > d_.size()) return std::nullopt;
    const std::uint32_t count = U16(ifd);
    for (std::uint32_t i = 0; i < count; ++i) {
      const std::uint64_t e = ifd + 2 + 12ull * i;
      if (e + 12 > d_.size()) return std::nullopt;
      if (U16(e) != tag) continue;
      const std::uint32_t type = U16(e + 2);
      if (U32(e + 4) != 1) return std::nullopt;
      if (type == 3) return U16(e + 8);  // SHORT, left-justified in the value field
      if (type == 4) return U32(e + 8);  // LONG
      return std::nullopt;
    }
    return std::nullopt;
  }

 private:
  std::uint32_t U16(std::uint64_t i) const { return le_ ? Le16(d_, i) : Be16(d_, i); }
  std::uint32_t U32(std::uint64_t i) const { return le_ ? Le32(d_, i) : Be32(d_, i); }

  std::string_view d_;
  bool le_ = true;
  bool valid_ = false;
};

constexpr std::uint16_t kTagWidth = 256;
constexpr std::uint16_t kTagHeight = 257;
constexpr std::uint16_t kTagOrientation = 0x0112;
constexpr std::uint16_t kTagSamplesPerPixel = 277;

}  // namespace

int TiffOrientation(std::string_view tiff) {
  const auto v = Tiff(tiff).Ifd0Value(kTagOrientation);
  return v && *v >= 1 && *v <= 8 ? static_cast<int>(*v) : 1;
}

// Walks the marker segments from SOI to the first SOFn (frame header), picking up the first
// Exif APP1 on the way. Entropy-coded data only follows SOS, which comes after SOFn, so every
// byte seen here is a marker or a length-prefixed segment.
bool ParseJpegHeader(std::string_view b, HeaderInfo* info, std::string* reason) {
  info->format = "jpeg";
  container::JpegReader reader(b);  // after SOI
  // The reader's detailed errors, in the terse words of this header check.
  auto fail = [&] {
    const container::JpegError& e = reader.error();
    if (e.truncated()) return Fail(reason, "truncated JPEG");
    if (e.kind == container::JpegError::Kind::kBadLength) {
      return Fail(reason, "corrupt image data: JPEG segment length " + std::to_string(e.length));
    }
    return Fail(reason, "corrupt image data: JPEG marker expected at offset " + std::to_string(e.offset));
  };
  bool have_exif = false;
  while (true) {
    container::JpegMarker m;
    if (!reader.NextMarker(&m)) return fail();
    const u8 marker = m.code;
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) continue;  // no payload
    if (marker == 0xD8 || marker == 0xD9 || marker == 0xDA || marker == 0x00) {
      return Fail(reason, "corrupt image data: JPEG marker 0x" + Hex2(marker) + " before the frame header");
    }
    container::JpegSegment segment;
    if (!reader.ReadSegment(&segment)) return fail();
    const std::string_view seg = segment.payload;
    if (container::IsJpegSof(marker)) {
      if (seg.size() < 6) return Fail(reason, "corrupt image data: JPEG frame header too short");
      const int components = Byte(seg, 5);
      if (components != 1 && components != 3 && components != 4) {
        return Fail(reason, "corrupt image data: JPEG with " + std::to_string(components) + " components");
      }
      return SetDims(info, Be16(seg, 3), Be16(seg, 1), components, reason);
    }
    if (marker == 0xE1 && !have_exif && seg.substr(0, 6) == std::string_view("Exif\0\0", 6)) {
      have_exif = true;
      info->orientation = TiffOrientation(seg.substr(6));
    }
  }
}

bool ParsePngHeader(std::string_view b, HeaderInfo* info, std::string* reason) {
  info->format = "png";
  if (b.size() < 8 + 8 + 13) return Fail(reason, "truncated PNG");
  if (Be32(b, 8) != 13 || b.substr(12, 4) != "IHDR") {
    return Fail(reason, "corrupt image data: PNG does not start with an IHDR chunk");
  }
  const std::uint32_t w = Be32(b, 16), h = Be32(b, 20);
  const int color_type = Byte(b, 25);
  int channels = 0;
  switch (color_type) {
    case 0: channels = 1; break;
    case 2: channels = 3; break;
    case 3: channels = 3; break;  // palette
    case 4: channels = 2; break;
    case 6: channels = 4; break;
    default: return Fail(reason, "corrupt image data: PNG colour type " + std::to_string(color_type));
  }
  if (!SetDims(info, w, h, channels, reason)) return false;
  // eXIf may sit anywhere before IEND; walk the chunks as far as they are intact (bounded: each
  // step consumes >= 12 bytes). A broken chunk ends the search, not the image.
  container::PngReader reader(b);
  container::PngChunk chunk;
  while (reader.Next(&chunk)) {
    if (chunk.type == "eXIf") {
      info->orientation = TiffOrientation(chunk.data);
      break;
    }
  }
  return true;
}

bool PngComplete(std::string_view b) {
  container::PngReader reader(b);
  container::PngChunk chunk;
  while (reader.Next(&chunk)) {
    if (chunk.type == "IEND") return true;
  }
  return false;
}

bool ParseGifHeader(std::string_view b, HeaderInfo* info, std::string* reason) {
  info->format = "gif";
  if (b.size() < 10) return Fail(reason, "truncated GIF");
  return SetDims(info, Le16(b, 6), Le16(b, 8), 3, reason);
}

bool ParseBmpHeader(std::string_view b, HeaderInfo* info, std::string* reason) {
  info->format = "bmp";
  if (b.size() < 26) return Fail(reason, "truncated BMP");
  const std::uint32_t dib = Le32(b, 14);
  std::int64_t w = 0, h = 0;
  std::uint32_t bpp = 0;
  if (dib == 12) {  // BITMAPCOREHEADER: 16-bit unsigned sides
    w = Le16(b, 18);
    h = Le16(b, 20);
    bpp = Le16(b, 24);
  } else if (dib >= 40) {
    if (b.size() < 30) return Fail(reason, "truncated BMP");
    w = static_cast<std::int32_t>(Le32(b, 18));
    h = static_cast<std::int32_t>(Le32(b, 22));  // negative: rows stored top-down
    bpp = Le16(b, 28);
  } else {
    return Fail(reason, "corrupt image data: BMP header size " + std::to_string(dib));
  }
  if (w < 0) return Fail(reason, "corrupt image data: BMP with negative width");
  if (h < 0) h = -h;
  return SetDims(info, static_cast<std::uint64_t>(w), static_cast<std::uint64_t>(h), bpp == 32 ? 4 : 3,
                 reason);
}

bool BmpDecodable(std::string_view b, std::string* reason) {
  HeaderInfo info;
  if (!ParseBmpHeader(b, &info, reason)) return false;
  const std::uint32_t dib = Le32(b, 14);
  const std::uint64_t data_offset = Le32(b, 10);
  const std::uint32_t bpp = dib == 12 ? Le16(b, 24) : Le16(b, 28);
  const std::uint32_t compression = dib == 12 || b.size() < 34 ? 0 : Le32(b, 30);
  if (compression != 0 && compression != 3) {
    return Fail(reason, "unsupported BMP compression " + std::to_string(compression));
  }
  if (bpp != 1 && bpp != 4 && bpp != 8 && bpp != 16 && bpp != 24 && bpp != 32) {
    return Fail(reason, "corrupt image data: BMP with " + std::to_string(bpp) + " bits per pixel");
  }
  const std::uint64_t stride = (std::uint64_t{static_cast<std::uint32_t>(info.width)} * bpp + 31) / 32 * 4;
  if (data_offset < 14 + std::uint64_t{dib} || data_offset + stride * info.height > b.size()) {
    return Fail(reason, "truncated BMP");
  }
  return true;
}

bool ParseWebpHeader(std::string_view b, HeaderInfo* info, std::string* reason) {
  info->format = "webp";
  if (b.size() < 20) return Fail(reason, "truncated WebP");
  const std::string_view chunk = b.substr(12, 4);
  const std::string_view d = b.substr(20);
  if (chunk == "VP8 ") {
    if (d.size() < 10) return Fail(reason, "truncated WebP");
    if (Byte(d, 3) != 0x9d || Byte(d, 4) != 0x01 || Byte(d, 5) != 0x2a) {
      return Fail(reason, "corrupt image data: WebP VP8 start code missing");
    }
    return SetDims(info, Le16(d, 6) & 0x3fff, Le16(d, 8) & 0x3fff, 3, reason);
  }
  if (chunk == "VP8L") {
    if (d.size() < 5) return Fail(reason, "truncated WebP");
    if (Byte(d, 0) != 0x2f) return Fail(reason, "corrupt image data: WebP VP8L signature missing");
    const std::uint32_t bits = Le32(d, 1);
    return SetDims(info, (bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1, (bits >> 28) & 1 ? 4 : 3,
                   reason);
  }
  if (chunk == "VP8X") {
    if (d.size() < 10) return Fail(reason, "truncated WebP");
    const bool alpha = Byte(d, 0) & 0x10;
    return SetDims(info, Le24(d, 4) + 1ull, Le24(d, 7) + 1ull, alpha ? 4 : 3, reason);
  }
  return Fail(reason, "corrupt image data: unknown WebP chunk");
}

bool ParseTiffHeader(std::string_view b, HeaderInfo* info, std::string* reason) {
  info->format = "tiff";
  const Tiff tiff(b);
  const auto w = tiff.Ifd0Value(kTagWidth);
  const auto h = tiff.Ifd0Value(kTagHeight);
  if (!w || !h) return Fail(reason, "corrupt image data: TIFF without readable width/height");
  const int samples = static_cast<int>(tiff.Ifd0Value(kTagSamplesPerPixel).value_or(1));
  info->orientation = TiffOrientation(b);
  return SetDims(info, *w, *h, samples, reason);
}

}  // namespace fruitpipe::image::internal
