#include "fruitpipe/privacy/metadata_strip.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <opencv2/imgcodecs.hpp>

#include "fruitpipe/common/error.h"
#include "fruitpipe/image/decode.h"
#include "fruitpipe/image/test_images.h"
#include "fruitpipe/privacy/test_photos.h"

namespace fruitpipe::privacy {
namespace {

namespace ti = image::testimg;

using testphotos::GpsExifTiff;
using testphotos::JpegSegment;
using testphotos::Le32;
using testphotos::PhoneJpeg;
using testphotos::TestPicture;

struct Segment {
  std::uint8_t marker;
  std::size_t offset;  // of the 0xFF
  std::size_t size;    // marker + length + payload
};

// Walks a JPEG the simple way (test data has no fill bytes): segments up to each SOS, then
// skips entropy-coded data. Also returns the offset of the first SOS.
std::vector<Segment> Segments(std::string_view j, std::size_t* first_sos = nullptr) {
  std::vector<Segment> out;
  std::size_t pos = 2;
  while (pos + 1 < j.size()) {
    const auto m = static_cast<std::uint8_t>(j[pos + 1]);
    if (m == 0xD9) {
      out.push_back({m, pos, 2});
      break;
    }
    const std::size_t len = (static_cast<std::uint8_t>(j[pos + 2]) << 8) | static_cast<std::uint8_t>(j[pos + 3]);
    out.push_back({m, pos, len + 2});
    if (m == 0xDA && first_sos && *first_sos == 0) *first_sos = pos;
    pos += len + 2;
    if (m == 0xDA) {
      while (pos + 1 < j.size()) {
        const auto a = static_cast<std::uint8_t>(j[pos]), b = static_cast<std::uint8_t>(j[pos + 1]);
        if (a == 0xFF && b != 0x00 && !(b >= 0xD0 && b <= 0xD7)) break;
        ++pos;
      }
    }
  }
  return out;
}

std::size_t EoiEnd(std::string_view j) {
  const auto segs = Segments(j);
  return segs.back().offset + 2;
}

// From the first SOS to EOI inclusive: the scans, their tables in between and the coded data.
std::string ScanData(std::string_view j) {
  std::size_t sos = 0;
  Segments(j, &sos);
  return std::string(j.substr(sos, EoiEnd(j) - sos));
}

void ExpectSamePixels(const std::string& a, const std::string& b) {
  const auto da = image::DecodeImage(a), db = image::DecodeImage(b);
  ASSERT_TRUE(da.ok) << da.reason;
  ASSERT_TRUE(db.ok) << db.reason;
  ASSERT_EQ(da.image.rgb.size(), db.image.rgb.size());
  EXPECT_EQ(cv::norm(da.image.rgb, db.image.rgb, cv::NORM_INF), 0.0);
}

bool Contains(std::string_view hay, std::string_view needle) { return hay.find(needle) != std::string_view::npos; }

TEST(MetadataStripTest, JpegLosesExifGpsXmpIccIptcCommentsAndThumbnailButKeepsTheScanBitExact) {
  const std::string plain = ti::Encode(TestPicture(64, 48), ".jpg", {cv::IMWRITE_JPEG_QUALITY, 90});
  const std::string phone = PhoneJpeg(plain, 1);
  image::HeaderInfo info;
  std::string reason;
  ASSERT_TRUE(image::ReadHeader(phone, &info, &reason)) << reason;

  const StrippedImage s = StripMetadata(phone);
  EXPECT_EQ(s.format, "jpeg");
  EXPECT_EQ(s.extension, "jpg");
  EXPECT_EQ(s.orientation, 1);
  // Stripping what was added gives back the encoder's own file, byte for byte.
  EXPECT_EQ(s.bytes, plain);
  EXPECT_EQ(ScanData(s.bytes), ScanData(phone));
  for (const char* secret : {"Exif", "FruitPhone", "xmpmeta", "Paris", "ICC_PROFILE", "alice", "TRAILER"}) {
    EXPECT_FALSE(Contains(s.bytes, secret)) << secret;
  }
  // The GPS rationals (48/1, 51/1 ...) are gone with the Exif block.
  EXPECT_FALSE(Contains(s.bytes, Le32(2952) + Le32(100)));
  for (const auto& seg : Segments(s.bytes)) {
    EXPECT_TRUE(seg.marker == 0xE0 || seg.marker == 0xDB || seg.marker == 0xC0 || seg.marker == 0xC4 ||
                seg.marker == 0xDA || seg.marker == 0xD9)
        << std::hex << int(seg.marker);
    if (seg.marker == 0xE0) {
      EXPECT_EQ(seg.size, 18u);  // JFIF without thumbnail
    }
  }
  const std::vector<std::string> expected = {"APP0 JFIF thumbnail", "APP1 Exif",
                                             "APP1 XMP",            "APP2 ICC profile",
                                             "APP13 IPTC/Photoshop", "COM",
                                             "34 bytes after EOI"};
  EXPECT_EQ(s.removed, expected);
  EXPECT_EQ(s.removed_bytes, phone.size() - plain.size());
  ExpectSamePixels(phone, s.bytes);
}

TEST(MetadataStripTest, JpegOrientationSurvivesAsTheOnlyExifTag) {
  const std::string plain = ti::Encode(TestPicture(40, 30), ".jpg");
  for (int orientation : {3, 6, 8}) {
    const std::string phone = PhoneJpeg(plain, orientation);
    const StrippedImage s = StripMetadata(phone);
    EXPECT_EQ(s.orientation, orientation);
    image::HeaderInfo info;
    std::string reason;
    ASSERT_TRUE(image::ReadHeader(s.bytes, &info, &reason)) << reason;
    EXPECT_EQ(info.orientation, orientation);
    EXPECT_FALSE(Contains(s.bytes, "FruitPhone"));
    EXPECT_FALSE(Contains(s.bytes, Le32(2952) + Le32(100)));
    // One APP1 of 2 + 6 + 26 bytes: "Exif\0\0" and a TIFF with a single IFD entry.
    int app1 = 0;
    for (const auto& seg : Segments(s.bytes)) {
      if (seg.marker == 0xE1) {
        ++app1;
        EXPECT_EQ(seg.size, 2u + 2 + 6 + 26);
      }
    }
    EXPECT_EQ(app1, 1);
    EXPECT_EQ(ScanData(s.bytes), ScanData(phone));
    ExpectSamePixels(phone, s.bytes);  // rotated the same way
    const auto decoded = image::DecodeImage(s.bytes);
    EXPECT_EQ(decoded.image.width, orientation >= 5 ? 30 : 40);
  }
}

TEST(MetadataStripTest, ProgressiveJpegWithRestartMarkersAndCommentsBetweenScans) {
  const std::string plain = ti::Encode(TestPicture(64, 64), ".jpg",
                                       {cv::IMWRITE_JPEG_PROGRESSIVE, 1, cv::IMWRITE_JPEG_RST_INTERVAL, 1});
  // A comment and an APP1 between the second and third scans.
  std::vector<Segment> segs = Segments(plain);
  std::vector<std::size_t> sos;
  for (const auto& s : segs) {
    if (s.marker == 0xDA) sos.push_back(s.offset);
  }
  ASSERT_GE(sos.size(), 3u);
  const std::string injected = JpegSegment(0xFE, "between scans: alice") +
                               JpegSegment(0xE1, std::string("Exif\0\0", 6) + GpsExifTiff(1));
  // Insert right before the third scan's preceding table segment or SOS, whichever is first.
  std::size_t at = sos[2];
  for (const auto& s : segs) {
    if (s.offset > sos[1] && s.offset < sos[2]) {
      at = s.offset;
      break;
    }
  }
  const std::string tampered = plain.substr(0, at) + injected + plain.substr(at);
  const StrippedImage s = StripMetadata(tampered);
  EXPECT_EQ(s.bytes, plain);
  EXPECT_FALSE(Contains(s.bytes, "alice"));
  ExpectSamePixels(tampered, s.bytes);
}

TEST(MetadataStripTest, CmykJpegKeepsItsAdobeMarker) {
  const std::uint8_t cmyk[4] = {10, 200, 30, 40};
  const std::string plain = ti::CmykJpeg(16, 8, cmyk, /*adobe=*/true);
  const std::string tampered = plain.substr(0, 2) + JpegSegment(0xFE, "alice") + plain.substr(2);
  const StrippedImage s = StripMetadata(tampered);
  EXPECT_TRUE(Contains(s.bytes, "Adobe"));
  EXPECT_FALSE(Contains(s.bytes, "alice"));
  ExpectSamePixels(tampered, s.bytes);
}

std::vector<std::string> ChunkTypes(std::string_view png) {
  std::vector<std::string> types;
  std::size_t pos = 8;
  while (pos + 12 <= png.size()) {
    const std::uint32_t len = (std::uint32_t{static_cast<std::uint8_t>(png[pos])} << 24) |
                              (std::uint32_t{static_cast<std::uint8_t>(png[pos + 1])} << 16) |
                              (std::uint32_t{static_cast<std::uint8_t>(png[pos + 2])} << 8) |
                              static_cast<std::uint8_t>(png[pos + 3]);
    types.emplace_back(png.substr(pos + 4, 4));
    const std::uint32_t stored = (std::uint32_t{static_cast<std::uint8_t>(png[pos + 8 + len])} << 24) |
                                 (std::uint32_t{static_cast<std::uint8_t>(png[pos + 9 + len])} << 16) |
                                 (std::uint32_t{static_cast<std::uint8_t>(png[pos + 10 + len])} << 8) |
                                 static_cast<std::uint8_t>(png[pos + 11 + len]);
    const auto crc = crc32(0, reinterpret_cast<const Bytef*>(png.data() + pos + 4), len + 4);
    EXPECT_EQ(stored, crc) << "CRC of " << types.back();
    pos += 12 + len;
  }
  EXPECT_EQ(pos, png.size());
  return types;
}

// The IDAT chunk, whole (length, type, data, CRC).
std::string IdatBytes(std::string_view png) {
  const auto at = png.find("IDAT") - 4;
  const std::uint32_t len = (std::uint32_t{static_cast<std::uint8_t>(png[at])} << 24) |
                            (std::uint32_t{static_cast<std::uint8_t>(png[at + 1])} << 16) |
                            (std::uint32_t{static_cast<std::uint8_t>(png[at + 2])} << 8) |
                            static_cast<std::uint8_t>(png[at + 3]);
  return std::string(png.substr(at, 12 + len));
}

std::vector<std::uint8_t> RgbPixels(int w, int h) {
  std::vector<std::uint8_t> px(static_cast<std::size_t>(w * h * 3));
  for (std::size_t i = 0; i < px.size(); ++i) px[i] = static_cast<std::uint8_t>((i * 37) % 251);
  return px;
}

TEST(MetadataStripTest, PngLosesTextExifAndTimeChunksButKeepsColourChunksAndPixels) {
  const int w = 12, h = 9;
  const std::vector<std::string> meta = {
      ti::PngChunk("gAMA", std::string("\x00\x00\xb1\x8f", 4)),  // 1/2.2
      ti::PngChunk("tEXt", std::string("Author\0alice", 12)),
      ti::PngChunk("eXIf", GpsExifTiff(1)),
      ti::PngChunk("tIME", std::string("\x07\xe8\x05\x01\x0c\x00\x00", 7)),
      ti::PngChunk("iTXt", std::string("Location\0\0\0\0\0kitchen of alice", 29)),
      ti::PngChunk("zTXt", std::string("Comment\0\0x", 10)),
      ti::PngChunk("iCCP", std::string("FruitPhone\0\0x", 13)),
      ti::PngChunk("pHYs", std::string("\0\0\x0b\x13\0\0\x0b\x13\x01", 9)),
  };
  std::string png = ti::Png(w, h, 2, RgbPixels(w, h), meta);
  // A text chunk after the image data and bytes after IEND, too.
  const auto iend = png.size() - 12;
  png = png.substr(0, iend) + ti::PngChunk("tEXt", std::string("Software\0FruitCam", 17)) + png.substr(iend) + "junk";

  const StrippedImage s = StripMetadata(png);
  EXPECT_EQ(s.format, "png");
  EXPECT_EQ(s.extension, "png");
  EXPECT_EQ(ChunkTypes(s.bytes), (std::vector<std::string>{"IHDR", "gAMA", "pHYs", "IDAT", "IEND"}));
  EXPECT_EQ(s.removed, (std::vector<std::string>{"tEXt", "eXIf", "tIME", "iTXt", "zTXt", "iCCP", "tEXt",
                                                 "4 bytes after IEND"}));
  for (const char* secret : {"alice", "FruitPhone", "FruitCam", "junk"}) EXPECT_FALSE(Contains(s.bytes, secret)) << secret;
  EXPECT_EQ(IdatBytes(s.bytes), IdatBytes(png));
  ExpectSamePixels(png, s.bytes);
}

TEST(MetadataStripTest, PngOrientationSurvivesInAMinimalExifChunk) {
  const int w = 10, h = 6;
  const std::string png = ti::Png(w, h, 2, RgbPixels(w, h), {ti::PngChunk("eXIf", GpsExifTiff(6))});
  const StrippedImage s = StripMetadata(png);
  EXPECT_EQ(s.orientation, 6);
  EXPECT_EQ(ChunkTypes(s.bytes), (std::vector<std::string>{"IHDR", "eXIf", "IDAT", "IEND"}));
  EXPECT_FALSE(Contains(s.bytes, "FruitPhone"));
  image::HeaderInfo info;
  std::string reason;
  ASSERT_TRUE(image::ReadHeader(s.bytes, &info, &reason)) << reason;
  EXPECT_EQ(info.orientation, 6);
  ExpectSamePixels(png, s.bytes);
}

TEST(MetadataStripTest, PalettePngKeepsPaletteAndTransparency) {
  const int w = 4, h = 2;
  std::vector<std::uint8_t> idx = {0, 1, 2, 1, 2, 0, 1, 2};
  const std::string plte = ti::PngChunk("PLTE", std::string("\xff\x00\x00\x00\xff\x00\x00\x00\xff", 9));
  const std::string trns = ti::PngChunk("tRNS", std::string("\x80\xff\x00", 3));
  const std::string png = ti::Png(w, h, 3, idx, {plte, trns, ti::PngChunk("tEXt", std::string("a\0b", 3))});
  const StrippedImage s = StripMetadata(png);
  EXPECT_EQ(ChunkTypes(s.bytes), (std::vector<std::string>{"IHDR", "PLTE", "tRNS", "IDAT", "IEND"}));
  ExpectSamePixels(png, s.bytes);
}

TEST(MetadataStripTest, OtherFormatsAreRefusedWithAReason) {
  const cv::Mat pic = TestPicture(8, 8);
  for (const char* ext : {".bmp", ".webp", ".tiff"}) {
    const std::string bytes = ti::Encode(pic, ext);
    try {
      StripMetadata(bytes);
      ADD_FAILURE() << ext << " accepted";
    } catch (const InvalidArgumentError& e) {
      EXPECT_TRUE(Contains(e.what(), "unsupported format")) << e.what();
      EXPECT_TRUE(Contains(e.what(), "only JPEG and PNG")) << e.what();
    }
  }
  EXPECT_THROW(StripMetadata("GIF89a\x08\x00\x08\x00\x00\x00\x00"), InvalidArgumentError);
  EXPECT_THROW(StripMetadata("definitely not an image"), InvalidArgumentError);
  EXPECT_THROW(StripMetadata(""), InvalidArgumentError);
}

TEST(MetadataStripTest, EveryTruncationAndBadLengthIsRefusedNeverCrashes) {
  const std::string jpeg = PhoneJpeg(ti::Encode(TestPicture(16, 16), ".jpg"), 6);
  const std::size_t jpeg_end = EoiEnd(jpeg);
  for (std::size_t n = 0; n < jpeg_end; ++n) {
    EXPECT_THROW(StripMetadata(std::string_view(jpeg).substr(0, n)), InvalidArgumentError) << n;
  }
  const std::string png = ti::Png(5, 5, 2, RgbPixels(5, 5), {ti::PngChunk("tEXt", std::string("k\0v", 3))});
  for (std::size_t n = 0; n < png.size(); ++n) {
    EXPECT_THROW(StripMetadata(std::string_view(png).substr(0, n)), InvalidArgumentError) << n;
  }
  // A segment length running past the end of the file.
  std::string bad = jpeg;
  const auto segs = Segments(jpeg);
  bad[segs[1].offset + 2] = '\xff';
  bad[segs[1].offset + 3] = '\xff';
  try {
    StripMetadata(bad.substr(0, 2000));
    ADD_FAILURE() << "accepted";
  } catch (const InvalidArgumentError& e) {
    EXPECT_TRUE(Contains(e.what(), "JPEG")) << e.what();
  }
  // An unknown critical PNG chunk is not ours to drop.
  const std::string odd = ti::Png(2, 2, 2, RgbPixels(2, 2), {ti::PngChunk("ABCD", "x")});
  EXPECT_THROW(StripMetadata(odd), InvalidArgumentError);
}

}  // namespace
}  // namespace fruitpipe::privacy
