#include "fruitpipe/privacy/metadata_strip.h"

#include <cstdint>
#include <cstdio>

#include "fruitpipe/common/error.h"
#include "fruitpipe/image/container.h"
#include "fruitpipe/image/decode.h"

namespace fruitpipe::privacy {
namespace {

using u8 = std::uint8_t;

void PutBe16(std::string& s, std::uint32_t v) {
  s.push_back(static_cast<char>((v >> 8) & 0xff));
  s.push_back(static_cast<char>(v & 0xff));
}
void PutBe32(std::string& s, std::uint32_t v) {
  PutBe16(s, v >> 16);
  PutBe16(s, v & 0xffff);
}
std::string Hex2(u8 v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%02X", v);
  return buf;
}

[[noreturn]] void Bad(const std::string& reason) { throw InvalidArgumentError(reason); }

// A big-endian TIFF structure whose IFD0 holds only the orientation tag (SHORT).
std::string OrientationTiff(int orientation) {
  std::string t("MM\0\x2a\0\0\0\x08", 8);
  PutBe16(t, 1);       // one entry
  PutBe16(t, 0x0112);  // Orientation
  PutBe16(t, 3);       // SHORT
  PutBe32(t, 1);       // count
  PutBe16(t, static_cast<std::uint32_t>(orientation));
  PutBe16(t, 0);       // value padding
  PutBe32(t, 0);       // no next IFD
  return t;
}

// Segments the decoder needs; everything else is metadata or unknown and is dropped.
bool IsCodingMarker(u8 m) {
  return image::container::IsJpegSof(m) || m == 0xC4 /*DHT*/ || m == 0xCC /*DAC*/ || m == 0xDB /*DQT*/ ||
         m == 0xDD /*DRI*/ || m == 0xDC /*DNL*/ || m == 0xDE /*DHP*/ || m == 0xDF /*EXP*/;
}

std::string DescribeApp(u8 m, std::string_view payload) {
  const int n = m - 0xE0;
  std::string name = "APP" + std::to_string(n);
  auto starts = [&](std::string_view id) { return payload.substr(0, id.size()) == id; };
  if (m == 0xE1 && starts(std::string_view("Exif\0", 5))) return name + " Exif";
  if (m == 0xE1 && starts("http://ns.adobe.com/xap/")) return name + " XMP";
  if (m == 0xE1 && starts("http://ns.adobe.com/xmp/extension/")) return name + " XMP extension";
  if (m == 0xE2 && starts("ICC_PROFILE")) return name + " ICC profile";
  if (m == 0xE2 && starts("MPF")) return name + " MPF";
  if (m == 0xED && starts("Photoshop 3.0")) return name + " IPTC/Photoshop";
  if (m == 0xE0 && starts("JFXX")) return name + " JFXX thumbnail";
  return name;
}

StrippedImage StripJpeg(std::string_view b, int orientation) {
  StrippedImage r;
  r.format = "jpeg";
  r.extension = "jpg";
  r.orientation = orientation;
  std::string head("\xFF\xD8", 2);  // SOI, then JFIF (which must come first) and our Exif
  std::string body;
  body.reserve(b.size());
  bool have_jfif = false, have_sof = false, have_sos = false;
  image::container::JpegReader reader(b);  // after SOI
  while (true) {
    image::container::JpegMarker marker;
    if (!reader.NextMarker(&marker)) Bad(reader.error().message);
    const u8 m = marker.code;
    if (m == 0xD9) {
      body.append("\xFF\xD9", 2);
      const std::size_t end = reader.position();
      if (end < b.size()) r.removed.push_back(std::to_string(b.size() - end) + " bytes after EOI");
      break;
    }
    if (m == 0x01) {  // TEM: no payload, harmless
      body.append("\xFF\x01", 2);
      continue;
    }
    if (m == 0x00 || m == 0xD8 || (m >= 0xD0 && m <= 0xD7)) {
      Bad("corrupt JPEG: marker 0x" + Hex2(m) + " outside a scan at offset " + std::to_string(marker.offset));
    }
    image::container::JpegSegment seg;
    if (!reader.ReadSegment(&seg)) Bad(reader.error().message);
    const std::string_view payload = seg.payload;
    const std::string_view segment = seg.bytes;  // FF m len payload
    if (m == 0xDA) {  // SOS: the header, then entropy-coded data up to the next real marker
      if (!have_sof) Bad("corrupt JPEG: scan before the frame header");
      have_sos = true;
      body.append("\xFF\xDA", 2);
      body.append(segment.substr(2));
      std::string_view scan;
      if (!reader.ReadScanData(&scan)) Bad(reader.error().message);
      body.append(scan);
      continue;
    }
    if (IsCodingMarker(m)) {
      if (image::container::IsJpegSof(m)) have_sof = true;
      body.append("\xFF", 1);
      body.push_back(static_cast<char>(m));
      body.append(segment.substr(2));
      continue;
    }
    if (m == 0xE0 && !have_jfif && payload.size() >= 14 && payload.substr(0, 5) == std::string_view("JFIF\0", 5)) {
      // Keep version, density units and density; drop the thumbnail.
      have_jfif = true;
      head.append("\xFF\xE0", 2);
      PutBe16(head, 16);
      head.append(payload.substr(0, 12));
      head.append("\0\0", 2);
      if (payload.size() > 14) r.removed.push_back("APP0 JFIF thumbnail");
      continue;
    }
    if (m == 0xEE && payload.substr(0, 5) == "Adobe") {
      body.append(segment);
      continue;
    }
    if (m >= 0xE0 && m <= 0xEF) {
      r.removed.push_back(DescribeApp(m, payload));
    } else if (m == 0xFE) {
      r.removed.push_back("COM");
    } else {
      r.removed.push_back("marker 0x" + Hex2(m));
    }
  }
  if (!have_sof || !have_sos) Bad("corrupt JPEG: no frame header or no scan");
  if (orientation != 1) {
    const std::string tiff = OrientationTiff(orientation);
    head.append("\xFF\xE1", 2);
    PutBe16(head, static_cast<std::uint32_t>(2 + 6 + tiff.size()));
    head.append("Exif\0\0", 6);
    head.append(tiff);
  }
  r.bytes = std::move(head);
  r.bytes += body;
  return r;
}

std::string PngChunk(std::string_view type, std::string_view data) {
  std::string c;
  PutBe32(c, static_cast<std::uint32_t>(data.size()));
  c.append(type);
  c.append(data);
  PutBe32(c, image::container::PngCrc(type, data));
  return c;
}

bool KeepPngChunk(std::string_view type) {
  for (const char* keep : {"IHDR", "PLTE", "IDAT", "IEND", "tRNS", "gAMA", "cHRM", "sRGB", "sBIT", "bKGD", "pHYs",
                           "cICP"}) {
    if (type == keep) return true;
  }
  return false;
}

StrippedImage StripPng(std::string_view b, int orientation) {
  StrippedImage r;
  r.format = "png";
  r.extension = "png";
  r.orientation = orientation;
  r.bytes.reserve(b.size());
  r.bytes.append(b.substr(0, 8));
  image::container::PngReader reader(b);  // after the signature
  bool first = true, have_idat = false, wrote_exif = orientation == 1;
  while (true) {
    image::container::PngChunk chunk;
    if (!reader.Next(&chunk)) Bad(reader.error().message);
    const std::string_view type = chunk.type;
    if (!chunk.TypeIsLetters()) Bad("corrupt PNG: bad chunk type at offset " + std::to_string(chunk.offset + 4));
    if (first && type != "IHDR") Bad("corrupt PNG: does not start with IHDR");
    first = false;
    if (type == "IDAT") {
      if (!wrote_exif) {
        r.bytes += PngChunk("eXIf", OrientationTiff(orientation));
        wrote_exif = true;
      }
      have_idat = true;
    }
    if (KeepPngChunk(type)) {
      r.bytes.append(chunk.bytes);
    } else if (chunk.Critical()) {
      Bad("unsupported PNG: unknown critical chunk " + std::string(type));
    } else {
      r.removed.push_back(std::string(type));
    }
    if (type == "IEND") {
      const std::size_t end = reader.position();
      if (end < b.size()) r.removed.push_back(std::to_string(b.size() - end) + " bytes after IEND");
      break;
    }
  }
  if (!have_idat) Bad("corrupt PNG: no IDAT chunk");
  return r;
}

}  // namespace

StrippedImage StripMetadata(std::string_view bytes) {
  image::HeaderInfo info;
  std::string reason;
  if (!image::ReadHeader(bytes, &info, &reason)) Bad(reason);
  StrippedImage r;
  if (info.format == "jpeg") {
    r = StripJpeg(bytes, info.orientation);
  } else if (info.format == "png") {
    r = StripPng(bytes, info.orientation);
  } else {
    Bad("unsupported format " + info.format +
        " for a contribution: only JPEG and PNG are accepted, as their metadata can be removed without "
        "re-encoding the picture");
  }
  r.removed_bytes = bytes.size() > r.bytes.size() ? bytes.size() - r.bytes.size() : 0;
  return r;
}

}  // namespace fruitpipe::privacy
