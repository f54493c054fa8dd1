#include "fruitpipe/image/container.h"

#include <random>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>

#include "fruitpipe/image/test_images.h"

namespace fruitpipe::image::container {
namespace {

using K = JpegError::Kind;
using P = PngError::Kind;

std::string Seg(std::uint8_t marker, std::string_view payload) {
  std::string s = "\xFF";
  s.push_back(static_cast<char>(marker));
  const std::size_t len = payload.size() + 2;
  s.push_back(static_cast<char>(len >> 8));
  s.push_back(static_cast<char>(len & 0xff));
  s.append(payload);
  return s;
}

// A JPEG-shaped file (not decodable: the tables are dummies) with every structure the reader
// knows: fill bytes, a standalone TEM, a scan whose coded data holds a stuffed byte and a
// restart marker, and a second scan after a table between the scans.
struct Built {
  std::string bytes;
  std::size_t sos1 = 0, sos2 = 0, eoi = 0;
};
const std::string kCoded1("\x12\x34\xFF\x00\x56\xFF\xD0\x78", 8);
const std::string kCoded2("\x9a\xbc", 2);

Built Handmade() {
  Built j;
  j.bytes = std::string("\xFF\xD8", 2);
  j.bytes += Seg(0xE0, std::string("JFIF\0\x01\x02\0\0\x01\0\x01\0\0", 14));
  j.bytes += "\xFF\xFF\xFF";  // fill bytes: the DQT marker's 0xFF is the last of these
  j.bytes += Seg(0xDB, std::string(65, '\x01')).substr(1);
  j.bytes += "\xFF\x01";  // TEM
  j.bytes += Seg(0xC0, std::string("\x08\x00\x10\x00\x20\x01\x01\x11\x00", 9));  // 32x16 gray
  j.bytes += Seg(0xFE, "a comment");
  j.sos1 = j.bytes.size();
  j.bytes += Seg(0xDA, std::string("\x01\x01\x00\x00\x3f\x00", 6)) + kCoded1;
  j.bytes += Seg(0xC4, std::string(20, '\x02'));
  j.sos2 = j.bytes.size();
  j.bytes += Seg(0xDA, std::string("\x01\x01\x00\x00\x3f\x00", 6)) + kCoded2;
  j.eoi = j.bytes.size();
  j.bytes += "\xFF\xD9";
  return j;
}

std::vector<JpegSegment> Walk(JpegReader* r) {
  std::vector<JpegSegment> out;
  JpegSegment s;
  while (r->Next(&s)) out.push_back(s);
  return out;
}

TEST(JpegReaderTest, WellFormedSegmentList) {
  const Built j = Handmade();
  JpegReader r(j.bytes);
  const auto segs = Walk(&r);
  EXPECT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.position(), j.bytes.size());

  std::vector<int> markers;
  for (const auto& s : segs) markers.push_back(s.marker);
  EXPECT_EQ(markers, (std::vector<int>{0xE0, 0xDB, 0x01, 0xC0, 0xFE, 0xDA, 0xC4, 0xDA, 0xD9}));
  EXPECT_EQ(segs[0].offset, 2u);
  EXPECT_EQ(segs[0].payload.substr(0, 5), std::string_view("JFIF\0", 5));
  EXPECT_EQ(segs[0].bytes.size(), 2u + 2 + 14);
  EXPECT_EQ(segs[1].offset, 2u + 18 + 2);  // the last of the three fill bytes
  EXPECT_EQ(segs[1].payload, std::string(65, '\x01'));
  EXPECT_EQ(segs[2].bytes, std::string_view("\xFF\x01", 2));
  EXPECT_TRUE(segs[2].payload.empty());
  EXPECT_TRUE(IsJpegSof(segs[3].marker));
  EXPECT_EQ(segs[4].payload, "a comment");
  EXPECT_EQ(segs[5].offset, j.sos1);
  EXPECT_EQ(segs[5].scan_data, kCoded1);  // FF 00 and FF D0 belong to the coded data
  EXPECT_TRUE(segs[6].scan_data.empty());
  EXPECT_EQ(segs[7].offset, j.sos2);
  EXPECT_EQ(segs[7].scan_data, kCoded2);
  EXPECT_EQ(segs[8].offset, j.eoi);

  // Done after EOI: no error, nothing more, even with bytes after it.
  const std::string with_trailer = j.bytes + "trailer";
  JpegReader trailing(with_trailer);
  const auto again = Walk(&trailing);
  EXPECT_TRUE(trailing.ok());
  EXPECT_EQ(again.size(), segs.size());
  EXPECT_EQ(trailing.position(), j.bytes.size());
}

TEST(JpegReaderTest, StepwiseReadingJudgesAMarkerBeforeItsLength) {
  // An SOS right at the end: NextMarker sees it, ReadSegment then finds no length.
  const std::string b("\xFF\xD8\xFF\xDA", 4);
  JpegReader r(b);
  JpegMarker m;
  ASSERT_TRUE(r.NextMarker(&m));
  EXPECT_EQ(m.code, 0xDA);
  EXPECT_EQ(m.offset, 2u);
  JpegSegment s;
  EXPECT_FALSE(r.ReadSegment(&s));
  EXPECT_EQ(r.error().kind, K::kLengthMissing);
  EXPECT_EQ(r.error().message, "truncated JPEG: segment length missing at offset 4");
  EXPECT_FALSE(r.NextMarker(&m));  // errors stick
}

TEST(JpegReaderTest, EncodedJpegWithRestartMarkersEndsAtEoi) {
  cv::Mat pic(48, 64, CV_8UC3);
  cv::randu(pic, 0, 256);
  const std::string jpeg = testimg::Encode(pic, ".jpg", {cv::IMWRITE_JPEG_RST_INTERVAL, 1});
  JpegReader r(jpeg);
  const auto segs = Walk(&r);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_FALSE(segs.empty());
  EXPECT_EQ(segs.back().marker, 0xD9);
  EXPECT_EQ(r.position(), jpeg.size());
  int scans = 0, restarts = 0;
  for (const auto& s : segs) {
    EXPECT_FALSE(s.marker >= 0xD0 && s.marker <= 0xD7) << "RST outside the coded data";
    if (IsJpegSof(s.marker)) {
      EXPECT_EQ((std::uint8_t(s.payload[1]) << 8) | std::uint8_t(s.payload[2]), 48);
      EXPECT_EQ((std::uint8_t(s.payload[3]) << 8) | std::uint8_t(s.payload[4]), 64);
    }
    if (s.marker != 0xDA) continue;
    ++scans;
    for (std::size_t i = 0; i + 1 < s.scan_data.size(); ++i) {
      if (s.scan_data[i] == '\xFF' && std::uint8_t(s.scan_data[i + 1]) >= 0xD0 &&
          std::uint8_t(s.scan_data[i + 1]) <= 0xD7) {
        ++restarts;
      }
    }
  }
  EXPECT_EQ(scans, 1);
  EXPECT_GT(restarts, 0);
}

TEST(JpegReaderTest, EveryTruncationIsAnErrorWithItsKind) {
  const Built j = Handmade();
  for (std::size_t n = 2; n < j.bytes.size(); ++n) {
    JpegReader r(std::string_view(j.bytes).substr(0, n));
    Walk(&r);
    ASSERT_FALSE(r.ok()) << n;
    EXPECT_TRUE(r.error().truncated()) << n << ": " << r.error().message;
    EXPECT_EQ(r.error().message.rfind("truncated JPEG: ", 0), 0u) << r.error().message;
  }
  auto error_at = [&](std::size_t n) {
    JpegReader r(std::string_view(j.bytes).substr(0, n));
    Walk(&r);
    return r.error();
  };
  EXPECT_EQ(error_at(2).kind, K::kNoMarker);
  EXPECT_EQ(error_at(2).message, "truncated JPEG: no EOI marker");
  EXPECT_EQ(error_at(3).kind, K::kNoMarker);  // FF, then the end: fill bytes and no marker
  EXPECT_EQ(error_at(4).kind, K::kLengthMissing);
  EXPECT_EQ(error_at(4).message, "truncated JPEG: segment length missing at offset 4");
  const JpegError past = error_at(10);
  EXPECT_EQ(past.kind, K::kPastEnd);
  EXPECT_EQ(past.offset, 4u);
  EXPECT_EQ(past.length, 16u);
  EXPECT_EQ(past.message, "truncated JPEG: segment of 16 bytes at offset 4 runs past the end");
  const JpegError scan = error_at(j.sos1 + 2 + 8 + 3);
  EXPECT_EQ(scan.kind, K::kScanPastEnd);
  EXPECT_EQ(scan.message, "truncated JPEG: scan data runs to the end without EOI");
  EXPECT_EQ(error_at(j.eoi + 1).kind, K::kScanPastEnd);  // a lone 0xFF ends the data
}

TEST(JpegReaderTest, BadLengthAndGarbageAreCorrupt) {
  const std::string short_bytes("\xFF\xD8\xFF\xFE\x00\x01xyz", 9);  // the reader keeps a view
  JpegReader short_len(short_bytes);
  JpegSegment s;
  EXPECT_FALSE(short_len.Next(&s));
  EXPECT_EQ(short_len.error().kind, K::kBadLength);
  EXPECT_FALSE(short_len.error().truncated());
  EXPECT_EQ(short_len.error().message, "corrupt JPEG: segment length 1 at offset 4");

  const std::string garbage = std::string("\xFF\xD8", 2) + Seg(0xFE, "ok") + "garbage";
  JpegReader g(garbage);
  EXPECT_TRUE(g.Next(&s));
  EXPECT_FALSE(g.Next(&s));
  EXPECT_EQ(g.error().kind, K::kMarkerExpected);
  EXPECT_EQ(g.error().offset, 8u);
  EXPECT_EQ(g.error().message, "corrupt JPEG: marker expected at offset 8");
}

// ---- PNG ----------------------------------------------------------------------------------

std::string SmallPng() {
  return testimg::Png(3, 2, 0, {1, 2, 3, 4, 5, 6}, {testimg::PngChunk("tEXt", std::string("k\0v", 3))});
}

std::uint32_t ReadBe32(std::string_view b, std::size_t i) {
  return (std::uint32_t{std::uint8_t(b[i])} << 24) | (std::uint32_t{std::uint8_t(b[i + 1])} << 16) |
         (std::uint32_t{std::uint8_t(b[i + 2])} << 8) | std::uint8_t(b[i + 3]);
}

TEST(PngReaderTest, ChunkList) {
  const std::string png = SmallPng();
  ASSERT_EQ(png.substr(0, 8), kPngSignature);
  PngReader r(png, 8, /*verify_crc=*/true);
  std::vector<PngChunk> chunks;
  PngChunk c;
  while (r.Next(&c)) chunks.push_back(c);
  EXPECT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.position(), png.size());
  std::vector<std::string> types;
  for (const auto& ch : chunks) types.emplace_back(ch.type);
  EXPECT_EQ(types, (std::vector<std::string>{"IHDR", "tEXt", "IDAT", "IEND"}));
  EXPECT_EQ(chunks[0].offset, 8u);
  EXPECT_EQ(chunks[0].data.size(), 13u);
  EXPECT_EQ(ReadBe32(chunks[0].data, 0), 3u);  // width
  EXPECT_EQ(chunks[1].offset, 8u + 25);
  EXPECT_EQ(chunks[1].data, std::string_view("k\0v", 3));
  EXPECT_EQ(chunks[1].bytes, testimg::PngChunk("tEXt", std::string("k\0v", 3)));
  for (const auto& ch : chunks) {
    EXPECT_TRUE(ch.TypeIsLetters());
    EXPECT_TRUE(ch.CrcMatches()) << ch.type;
  }
  EXPECT_TRUE(chunks[0].Critical());
  EXPECT_FALSE(chunks[1].Critical());
  EXPECT_EQ(chunks[3].crc, 0xAE426082u);  // the CRC every IEND carries
  EXPECT_EQ(PngCrc("IEND", ""), 0xAE426082u);

  // Done after IEND: bytes after it are the caller's.
  const std::string with_junk = png + "junk";
  PngReader trailing(with_junk);
  int n = 0;
  while (trailing.Next(&c)) ++n;
  EXPECT_TRUE(trailing.ok());
  EXPECT_EQ(n, 4);
  EXPECT_EQ(trailing.position(), png.size());
}

TEST(PngReaderTest, BadCrcIsReportedOnlyWhenVerifying) {
  std::string png = SmallPng();
  const std::size_t text = 8 + 25;
  png[text + 8] = 'K';  // tEXt data changed, CRC not
  PngReader lenient(png);
  PngChunk c;
  ASSERT_TRUE(lenient.Next(&c));
  ASSERT_TRUE(lenient.Next(&c));
  EXPECT_EQ(c.type, "tEXt");
  EXPECT_FALSE(c.CrcMatches());
  while (lenient.Next(&c)) {
  }
  EXPECT_TRUE(lenient.ok());

  PngReader strict(png, 8, /*verify_crc=*/true);
  ASSERT_TRUE(strict.Next(&c));
  EXPECT_FALSE(strict.Next(&c));
  EXPECT_EQ(strict.error().kind, P::kBadCrc);
  EXPECT_EQ(strict.error().offset, text);
  EXPECT_FALSE(strict.error().truncated());
  EXPECT_EQ(strict.error().message, "corrupt PNG: bad CRC of the chunk at offset 33");
}

TEST(PngReaderTest, EveryTruncationIsAnErrorWithItsKind) {
  const std::string png = SmallPng();
  for (std::size_t n = 8; n < png.size(); ++n) {
    PngReader r(std::string_view(png).substr(0, n));
    PngChunk c;
    while (r.Next(&c)) {
    }
    ASSERT_FALSE(r.ok()) << n;
    EXPECT_TRUE(r.error().truncated()) << n;
  }
  PngReader none(std::string_view(png).substr(0, 19));
  PngChunk c;
  EXPECT_FALSE(none.Next(&c));
  EXPECT_EQ(none.error().kind, P::kNoChunk);
  EXPECT_EQ(none.error().message, "truncated PNG: no IEND chunk");
  PngReader past(std::string_view(png).substr(0, 30));
  EXPECT_FALSE(past.Next(&c));
  EXPECT_EQ(past.error().kind, P::kPastEnd);
  EXPECT_EQ(past.error().length, 13u);
  EXPECT_EQ(past.error().message, "truncated PNG: chunk of 13 bytes at offset 8 runs past the end");
}

TEST(PngReaderTest, HugeLengthAndGarbage) {
  std::string png = SmallPng();
  png[8] = '\x80';  // IHDR length 2^31 + 13
  PngReader r(png);
  PngChunk c;
  EXPECT_FALSE(r.Next(&c));
  EXPECT_EQ(r.error().kind, P::kBadLength);
  EXPECT_EQ(r.error().message, "corrupt PNG: chunk length 2147483661 at offset 8");

  // Garbage after the signature: read as a chunk header, the "length" runs past the end, or
  // the "type" is not letters (which the caller judges).
  const std::string garbage = std::string(kPngSignature) + std::string("\0\0\0\x01", 4) + "1234" + "x" + "CRC!";
  PngReader g(garbage);
  ASSERT_TRUE(g.Next(&c));
  EXPECT_FALSE(c.TypeIsLetters());
  EXPECT_FALSE(c.CrcMatches());
  EXPECT_FALSE(g.Next(&c));
  EXPECT_EQ(g.error().kind, P::kNoChunk);
}

TEST(ContainerTest, RandomBytesNeverOverrunAndAlwaysEnd) {
  std::mt19937 rng(7);
  const Built j = Handmade();
  const std::string png = SmallPng();
  for (int iter = 0; iter < 3000; ++iter) {
    std::string b = iter % 2 ? j.bytes : png;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) b[rng() % b.size()] = static_cast<char>(rng());
    b.resize(rng() % (b.size() + 1));
    JpegReader jr(b);
    JpegSegment s;
    std::size_t steps = 0;
    while (jr.Next(&s)) {
      ASSERT_LE(s.offset + s.bytes.size(), b.size());
      ASSERT_LT(++steps, b.size());
    }
    EXPECT_TRUE(jr.ok() || !jr.error().message.empty());
    PngReader pr(b);
    PngChunk c;
    steps = 0;
    while (pr.Next(&c)) {
      ASSERT_LE(c.offset + c.bytes.size(), b.size());
      ASSERT_LT(++steps, b.size());
    }
    EXPECT_TRUE(pr.ok() || !pr.error().message.empty());
  }
}

}  // namespace
}  // namespace fruitpipe::image::container
