#include "fruitpipe/image/decode.h"

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "fruitpipe/common/testing.h"
#include "fruitpipe/image/test_images.h"

namespace fruitpipe::image {
namespace {

using testimg::Encode;

// Four flat quadrants, so lossy codecs keep each block's colour and orientation is visible.
const cv::Vec3b kTopLeft(220, 30, 30), kTopRight(30, 200, 40), kBottomLeft(40, 40, 210),
    kBottomRight(240, 240, 240);

cv::Mat Quadrants(int w, int h) {
  cv::Mat m(h, w, CV_8UC3);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      const bool right = x >= w / 2, bottom = y >= h / 2;
      m.at<cv::Vec3b>(y, x) = bottom ? (right ? kBottomRight : kBottomLeft) : (right ? kTopRight : kTopLeft);
    }
  }
  return m;
}

cv::Mat Noise(int w, int h, int channels, int depth = CV_8U, unsigned seed = 1) {
  cv::Mat m(h, w, CV_MAKETYPE(depth, channels));
  cv::RNG rng(seed);
  rng.fill(m, cv::RNG::UNIFORM, 0, depth == CV_16U ? 65536 : 256);
  return m;
}

bool Near(const cv::Vec3b& a, const cv::Vec3b& b, int tol) {
  for (int c = 0; c < 3; ++c) {
    if (std::abs(a[c] - b[c]) > tol) return false;
  }
  return true;
}

int MaxAbsDiff(const cv::Mat& a, const cv::Mat& b) {
  if (a.size() != b.size() || a.type() != b.type()) return 1 << 20;
  return static_cast<int>(cv::norm(a, b, cv::NORM_INF));
}

std::string Reason(std::string_view bytes, const DecodeLimits& limits = {}) {
  const DecodeOutcome out = DecodeImage(bytes, limits);
  EXPECT_FALSE(out.ok);
  return out.reason;
}

cv::Mat Decoded(std::string_view bytes) {
  const DecodeOutcome out = DecodeImage(bytes);
  EXPECT_TRUE(out.ok) << out.reason;
  if (out.ok) {
    EXPECT_EQ(out.image.rgb.type(), CV_8UC3);
    EXPECT_EQ(out.image.width, out.image.rgb.cols);
    EXPECT_EQ(out.image.height, out.image.rgb.rows);
  }
  return out.image.rgb;
}

TEST(ReadHeaderTest, DeclaredSizesAndChannels) {
  HeaderInfo h;
  std::string reason;
  ASSERT_TRUE(ReadHeader(Encode(Quadrants(37, 21), ".jpg"), &h, &reason)) << reason;
  EXPECT_EQ(h.format, "jpeg");
  EXPECT_EQ(h.width, 37);
  EXPECT_EQ(h.height, 21);
  EXPECT_EQ(h.channels, 3);
  EXPECT_EQ(h.orientation, 1);

  cv::Mat gray(5, 9, CV_8UC1, cv::Scalar(7));
  ASSERT_TRUE(ReadHeader(Encode(gray, ".jpg"), &h, &reason)) << reason;
  EXPECT_EQ(h.channels, 1);
  ASSERT_TRUE(ReadHeader(Encode(Noise(11, 4, 4), ".png"), &h, &reason)) << reason;
  EXPECT_EQ(h.format, "png");
  EXPECT_EQ(h.width, 11);
  EXPECT_EQ(h.height, 4);
  EXPECT_EQ(h.channels, 4);
  ASSERT_TRUE(ReadHeader(Encode(Quadrants(13, 6), ".bmp"), &h, &reason)) << reason;
  EXPECT_EQ(h.format, "bmp");
  EXPECT_EQ(h.width, 13);
  EXPECT_EQ(h.height, 6);
  ASSERT_TRUE(ReadHeader(Encode(Quadrants(17, 9), ".webp"), &h, &reason)) << reason;
  EXPECT_EQ(h.format, "webp");
  EXPECT_EQ(h.width, 17);
  EXPECT_EQ(h.height, 9);
  ASSERT_TRUE(ReadHeader(Encode(Quadrants(17, 9), ".webp", {cv::IMWRITE_WEBP_QUALITY, 101}), &h, &reason));
  EXPECT_EQ(h.width, 17);
  EXPECT_EQ(h.height, 9);
  ASSERT_TRUE(ReadHeader(Encode(Quadrants(19, 3), ".tiff"), &h, &reason)) << reason;
  EXPECT_EQ(h.format, "tiff");
  EXPECT_EQ(h.width, 19);
  EXPECT_EQ(h.height, 3);
  EXPECT_EQ(h.channels, 3);
}

TEST(DecodeTest, EmptyAndUnknownBytes) {
  EXPECT_EQ(Reason(""), "empty file");
  std::string random(5000, '\0');
  std::mt19937 gen(42);
  for (char& c : random) c = static_cast<char>(gen());
  random[0] = 'x';  // not accidentally a signature
  EXPECT_EQ(Reason(random), "not an image (unrecognised signature)");
  EXPECT_EQ(Reason("hello, world"), "not an image (unrecognised signature)");
}

TEST(DecodeTest, SizeLimitChecksEncodedBytes) {
  const std::string png = Encode(Noise(40, 40, 3), ".png");
  DecodeLimits limits;
  limits.max_bytes = 100;
  EXPECT_EQ(Reason(png, limits), "file of " + std::to_string(png.size()) + " bytes exceeds the limit of 100");
}

// A decompression bomb: a tiny file declaring 3.6 gigapixels is refused from its header.
TEST(DecodeTest, PngDeclaringHugeSizeIsRefusedBeforeDecoding) {
  const std::string png = "\x89PNG\r\n\x1a\n" + testimg::PngIhdr(60000, 60000, 8, 2) +
                          testimg::PngChunk("IDAT", std::string(64, '\0')) + testimg::PngChunk("IEND", "");
  HeaderInfo h;
  std::string reason;
  ASSERT_TRUE(ReadHeader(png, &h, &reason)) << reason;
  EXPECT_EQ(h.width, 60000);
  EXPECT_EQ(Reason(png), "declared 60000x60000 pixels exceeds the limit of 40000000");
}

TEST(DecodeTest, JpegDeclaringHugeSizeIsRefusedBeforeDecoding) {
  std::string jpeg = Encode(Quadrants(16, 16), ".jpg");
  const std::size_t sof = testimg::FindMarker(jpeg, 0xC0);
  // Segment: length(2) precision(1) height(2) width(2).
  jpeg[sof + 3] = static_cast<char>(60000 >> 8);
  jpeg[sof + 4] = static_cast<char>(60000 & 0xff);
  jpeg[sof + 5] = static_cast<char>(60000 >> 8);
  jpeg[sof + 6] = static_cast<char>(60000 & 0xff);
  EXPECT_EQ(Reason(jpeg), "declared 60000x60000 pixels exceeds the limit of 40000000");
  DecodeLimits small;
  small.max_pixels = 100;
  EXPECT_EQ(Reason(Encode(Quadrants(11, 10), ".jpg"), small), "declared 11x10 pixels exceeds the limit of 100");
}

TEST(DecodeTest, ZeroSidedImagesAreRefused) {
  const std::string png = "\x89PNG\r\n\x1a\n" + testimg::PngIhdr(0, 10, 8, 2) + testimg::PngChunk("IEND", "");
  EXPECT_EQ(Reason(png), "declared 0x10 pixels is below the minimum side of 1");
}

TEST(DecodeTest, TruncatedJpegAtManyOffsetsIsRefused) {
  const std::string jpeg = Encode(Noise(64, 48, 3), ".jpg", {cv::IMWRITE_JPEG_QUALITY, 90});
  const std::size_t sos = testimg::FindMarker(jpeg, 0xDA);
  for (std::size_t cut : {std::size_t{3}, std::size_t{4}, std::size_t{21}, sos - 4, sos + 20, jpeg.size() / 2,
                          jpeg.size() - 40, jpeg.size() - 2, jpeg.size() - 1}) {
    SCOPED_TRACE("cut at " + std::to_string(cut) + " of " + std::to_string(jpeg.size()));
    EXPECT_EQ(Reason(std::string_view(jpeg).substr(0, cut)), "truncated JPEG");
  }
  ASSERT_TRUE(DecodeImage(jpeg).ok);
}

TEST(DecodeTest, TruncatedPngIsRefused) {
  const std::string png = Encode(Noise(64, 48, 3), ".png");
  for (std::size_t cut : {std::size_t{20}, std::size_t{40}, png.size() / 2, png.size() - 13}) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    EXPECT_EQ(Reason(std::string_view(png).substr(0, cut)), "truncated PNG");
  }
}

TEST(DecodeTest, TruncatedWebpIsRefused) {
  for (int quality : {90, 101}) {  // lossy VP8 and lossless VP8L
    const std::string webp = Encode(Noise(64, 48, 3), ".webp", {cv::IMWRITE_WEBP_QUALITY, quality});
    for (std::size_t cut : {std::size_t{16}, std::size_t{40}, webp.size() / 2, webp.size() - 1}) {
      SCOPED_TRACE("quality " + std::to_string(quality) + " cut at " + std::to_string(cut));
      EXPECT_EQ(Reason(std::string_view(webp).substr(0, cut)), "truncated WebP");
    }
  }
}

// A marker inside entropy-coded data: libjpeg warns and fills the rest with grey. OpenCV would
// return that image; we refuse it.
TEST(DecodeTest, CorruptJpegDataIsRefused) {
  std::string jpeg = Encode(Noise(64, 64, 3), ".jpg");
  const std::size_t mid = (testimg::FindMarker(jpeg, 0xDA) + jpeg.size()) / 2;
  jpeg[mid] = '\xFF';
  jpeg[mid + 1] = '\xD9';
  EXPECT_EQ(Reason(jpeg), "corrupt image data: premature end of data segment");
}

// Each progressive scan makes libjpeg revisit the whole coefficient buffer: thousands of them
// are a CPU-exhaustion input, stopped after kMaxScans.
TEST(DecodeTest, ExcessiveProgressiveScansAreRefused) {
  EXPECT_EQ(Reason(testimg::ManyScanJpeg()), "corrupt image data: more than 500 progressive scans");
  const DecodeOutcome normal = DecodeImage(Encode(Noise(64, 64, 3), ".jpg", {cv::IMWRITE_JPEG_PROGRESSIVE, 1}));
  EXPECT_TRUE(normal.ok) << normal.reason;
}

// Hostile inputs must never crash the process or leak stderr noise into a run's log.
TEST(DecodeTest, RandomMutationsNeverCrashOrPrint) {
  const std::vector<std::string> seeds = {
      Encode(Noise(40, 30, 3), ".jpg"), Encode(Noise(40, 30, 3), ".png"),
      Encode(Noise(40, 30, 4), ".png"), Encode(Noise(40, 30, 3), ".webp"),
      Encode(Noise(40, 30, 3), ".bmp"), Encode(Noise(40, 30, 1), ".bmp"),
      testimg::Png(7, 5, 3, std::vector<std::uint8_t>(35, 1), {testimg::PngChunk("PLTE", std::string(6, 'a'))}),
      Encode(Noise(40, 30, 4), ".webp", {cv::IMWRITE_WEBP_QUALITY, 101}),
      Encode(Quadrants(40, 30), ".jpg", {cv::IMWRITE_JPEG_PROGRESSIVE, 1})};
  std::mt19937 gen(7);
  ::testing::internal::CaptureStderr();
  int accepted = 0, rejected = 0;
  for (const std::string& seed : seeds) {
    for (int i = 0; i < 60; ++i) {
      std::string m = seed;
      const int flips = 1 + static_cast<int>(gen() % 8);
      for (int f = 0; f < flips; ++f) {
        m[8 + gen() % (m.size() - 8)] = static_cast<char>(gen());  // keep the signature
      }
      if (gen() % 4 == 0) m.resize(gen() % m.size());
      const DecodeOutcome out = DecodeImage(m);
      if (out.ok) {
        ++accepted;
        EXPECT_EQ(out.image.rgb.type(), CV_8UC3);
        EXPECT_GT(out.image.rgb.total(), 0u);
      } else {
        ++rejected;
        EXPECT_FALSE(out.reason.empty());
        EXPECT_EQ(out.reason.find('\n'), std::string::npos) << out.reason;
      }
    }
  }
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_GT(rejected, 0);
  std::cout << "mutations: " << accepted << " accepted, " << rejected << " rejected\n";
  EXPECT_EQ(err, "");
}

TEST(DecodeTest, JpegDecodesToRgb) {
  const cv::Mat src = Quadrants(64, 48);
  const cv::Mat rgb = Decoded(Encode(src, ".jpg", {cv::IMWRITE_JPEG_QUALITY, 100}));
  ASSERT_EQ(rgb.size(), src.size());
  EXPECT_TRUE(Near(rgb.at<cv::Vec3b>(10, 10), kTopLeft, 3)) << rgb.at<cv::Vec3b>(10, 10);
  EXPECT_TRUE(Near(rgb.at<cv::Vec3b>(40, 50), kBottomRight, 3));
  // Same pixels as OpenCV's own JPEG path (both libjpeg-turbo, ISLOW IDCT, fancy upsampling).
  const std::string jpeg = Encode(Noise(33, 17, 3), ".jpg");
  cv::Mat ref = cv::imdecode(cv::Mat(1, static_cast<int>(jpeg.size()), CV_8U, const_cast<char*>(jpeg.data())),
                             cv::IMREAD_COLOR);
  cv::cvtColor(ref, ref, cv::COLOR_BGR2RGB);
  EXPECT_EQ(MaxAbsDiff(Decoded(jpeg), ref), 0);
}

TEST(DecodeTest, GrayJpegAndPngBecomeRgb) {
  const cv::Mat gray = Noise(21, 13, 1);
  cv::Mat expected;
  cv::cvtColor(gray, expected, cv::COLOR_GRAY2RGB);
  EXPECT_EQ(MaxAbsDiff(Decoded(Encode(gray, ".png")), expected), 0);
  const cv::Mat jpeg_rgb = Decoded(Encode(gray, ".jpg", {cv::IMWRITE_JPEG_QUALITY, 100}));
  std::vector<cv::Mat> planes;
  cv::split(jpeg_rgb, planes);
  EXPECT_EQ(cv::norm(planes[0], planes[1], cv::NORM_INF), 0);
  EXPECT_EQ(cv::norm(planes[0], planes[2], cv::NORM_INF), 0);
  EXPECT_LE(cv::norm(planes[0], gray, cv::NORM_INF), 2);
}

TEST(DecodeTest, LosslessFormatsAreExact) {
  const cv::Mat src = Noise(31, 19, 3);
  EXPECT_EQ(MaxAbsDiff(Decoded(Encode(src, ".png")), src), 0);
  EXPECT_EQ(MaxAbsDiff(Decoded(Encode(src, ".bmp")), src), 0);
  EXPECT_EQ(MaxAbsDiff(Decoded(Encode(src, ".webp", {cv::IMWRITE_WEBP_QUALITY, 101})), src), 0);
  EXPECT_EQ(DecodeImage(Encode(src, ".webp")).image.format, "webp");
}

TEST(DecodeTest, BmpVariants) {
  const cv::Mat src = Noise(13, 7, 3);
  const std::string bmp = Encode(src, ".bmp");
  EXPECT_EQ(Reason(std::string_view(bmp).substr(0, bmp.size() - 5)), "truncated BMP");
  // 32-bit BMP: the fourth byte is not alpha, so the colours survive unchanged.
  cv::Mat rgba;
  cv::cvtColor(src, rgba, cv::COLOR_RGB2RGBA);
  rgba.forEach<cv::Vec4b>([](cv::Vec4b& p, const int*) { p[3] = 0; });
  EXPECT_EQ(MaxAbsDiff(Decoded(Encode(rgba, ".bmp")), src), 0);
  std::string rle = bmp;
  rle[30] = 1;  // BI_RLE8
  EXPECT_EQ(Reason(rle), "unsupported BMP compression 1");
}

TEST(DecodeTest, TiffIsRecognisedAndRefused) {
  EXPECT_EQ(Reason(Encode(Noise(8, 8, 3), ".tiff")), "unsupported format tiff");
}

TEST(DecodeTest, SixteenBitPngScalesTo8Bit) {
  cv::Mat src = Noise(9, 7, 3);
  cv::Mat wide;
  src.convertTo(wide, CV_16U, 257.0);  // v*257 maps 0..255 onto 0..65535 exactly
  EXPECT_EQ(MaxAbsDiff(Decoded(Encode(wide, ".png")), src), 0);
}

TEST(DecodeTest, AlphaIsCompositedOnWhite) {
  cv::Mat rgba(1, 4, CV_8UC4);
  rgba.at<cv::Vec4b>(0, 0) = {200, 100, 50, 255};  // opaque: unchanged
  rgba.at<cv::Vec4b>(0, 1) = {200, 100, 50, 0};    // transparent: white
  rgba.at<cv::Vec4b>(0, 2) = {0, 0, 0, 128};       // half: grey
  rgba.at<cv::Vec4b>(0, 3) = {200, 100, 50, 51};   // 20% opaque
  const cv::Mat rgb = Decoded(Encode(rgba, ".png"));
  ASSERT_EQ(rgb.cols, 4);
  EXPECT_EQ(rgb.at<cv::Vec3b>(0, 0), cv::Vec3b(200, 100, 50));
  EXPECT_EQ(rgb.at<cv::Vec3b>(0, 1), cv::Vec3b(255, 255, 255));
  EXPECT_EQ(rgb.at<cv::Vec3b>(0, 2), cv::Vec3b(127, 127, 127));
  EXPECT_EQ(rgb.at<cv::Vec3b>(0, 3), cv::Vec3b(244, 224, 214));  // 0.2*v + 0.8*255

  // WebP with alpha (lossless), through libwebp.
  const cv::Mat webp_rgb = Decoded(Encode(rgba, ".webp", {cv::IMWRITE_WEBP_QUALITY, 101}));
  EXPECT_EQ(webp_rgb.at<cv::Vec3b>(0, 0), cv::Vec3b(200, 100, 50));
  EXPECT_EQ(webp_rgb.at<cv::Vec3b>(0, 1), cv::Vec3b(255, 255, 255));
  EXPECT_EQ(webp_rgb.at<cv::Vec3b>(0, 3), cv::Vec3b(244, 224, 214));

  // Gray + alpha (PNG colour type 4), which OpenCV cannot write.
  const std::string ga = testimg::Png(2, 1, 4, {100, 255, 100, 0});
  const cv::Mat ga_rgb = Decoded(ga);
  EXPECT_EQ(ga_rgb.at<cv::Vec3b>(0, 0), cv::Vec3b(100, 100, 100));
  EXPECT_EQ(ga_rgb.at<cv::Vec3b>(0, 1), cv::Vec3b(255, 255, 255));
}

TEST(DecodeTest, PalettePngWithTransparency) {
  const std::string plte("\x10\x20\x30\xF0\x80\x00\x00\x00\x00", 9);
  const std::string trns("\xFF\xFF\x00", 3);  // entry 2 fully transparent
  const std::string png = testimg::Png(3, 2, 3, {0, 1, 2, 2, 1, 0},
                                       {testimg::PngChunk("PLTE", plte), testimg::PngChunk("tRNS", trns)});
  const cv::Mat rgb = Decoded(png);
  ASSERT_EQ(rgb.size(), cv::Size(3, 2));
  EXPECT_EQ(rgb.at<cv::Vec3b>(0, 0), cv::Vec3b(0x10, 0x20, 0x30));
  EXPECT_EQ(rgb.at<cv::Vec3b>(0, 1), cv::Vec3b(0xF0, 0x80, 0x00));
  EXPECT_EQ(rgb.at<cv::Vec3b>(0, 2), cv::Vec3b(255, 255, 255));
  EXPECT_EQ(rgb.at<cv::Vec3b>(1, 2), cv::Vec3b(0x10, 0x20, 0x30));
}

TEST(DecodeTest, CmykJpeg) {
  // Red ink-free paper: C=0 M=255 Y=255 K=0. Adobe files store 255-ink.
  const std::uint8_t adobe_red[4] = {255, 0, 0, 255};
  HeaderInfo h;
  std::string reason;
  const std::string adobe = testimg::CmykJpeg(16, 8, adobe_red, /*adobe=*/true);
  ASSERT_TRUE(ReadHeader(adobe, &h, &reason));
  EXPECT_EQ(h.channels, 4);
  cv::Mat rgb = Decoded(adobe);
  ASSERT_EQ(rgb.size(), cv::Size(16, 8));
  EXPECT_TRUE(Near(rgb.at<cv::Vec3b>(4, 8), cv::Vec3b(255, 0, 0), 2)) << rgb.at<cv::Vec3b>(4, 8);

  const std::uint8_t plain_blue[4] = {255, 255, 0, 0};  // plain ink values: C+M = blue
  rgb = Decoded(testimg::CmykJpeg(16, 8, plain_blue, /*adobe=*/false));
  EXPECT_TRUE(Near(rgb.at<cv::Vec3b>(4, 8), cv::Vec3b(0, 0, 255), 2)) << rgb.at<cv::Vec3b>(4, 8);
}

// Where the stored pixel (sx, sy) of a w x h image lands for each EXIF orientation.
cv::Mat ExpectedOriented(const cv::Mat& s, int orientation) {
  const int w = s.cols, h = s.rows;
  const bool swap = orientation >= 5;
  cv::Mat d(swap ? w : h, swap ? h : w, s.type());
  for (int y = 0; y < d.rows; ++y) {
    for (int x = 0; x < d.cols; ++x) {
      int sx = x, sy = y;
      switch (orientation) {
        case 2: sx = w - 1 - x; break;
        case 3: sx = w - 1 - x, sy = h - 1 - y; break;
        case 4: sy = h - 1 - y; break;
        case 5: sx = y, sy = x; break;
        case 6: sx = y, sy = h - 1 - x; break;
        case 7: sx = w - 1 - y, sy = h - 1 - x; break;
        case 8: sx = w - 1 - y, sy = x; break;
        default: break;
      }
      d.at<cv::Vec3b>(y, x) = s.at<cv::Vec3b>(sy, sx);
    }
  }
  return d;
}

TEST(DecodeTest, ExifOrientationInJpeg) {
  const cv::Mat src = Quadrants(64, 32);  // quadrant edges on 16-pixel MCU boundaries
  const std::string jpeg = Encode(src, ".jpg", {cv::IMWRITE_JPEG_QUALITY, 100});
  const cv::Mat upright = Decoded(jpeg);
  for (int o = 1; o <= 8; ++o) {
    for (bool be : {false, true}) {
      SCOPED_TRACE("orientation " + std::to_string(o) + (be ? " MM" : " II"));
      const std::string tagged = testimg::WithExifOrientation(jpeg, o, be);
      HeaderInfo h;
      std::string reason;
      ASSERT_TRUE(ReadHeader(tagged, &h, &reason)) << reason;
      EXPECT_EQ(h.orientation, o);
      const DecodeOutcome out = DecodeImage(tagged);
      ASSERT_TRUE(out.ok) << out.reason;
      const cv::Mat expected = ExpectedOriented(src, o);
      ASSERT_EQ(out.image.rgb.size(), expected.size());
      EXPECT_EQ(out.image.width, o >= 5 ? 32 : 64);
      // Orientation is applied after decoding, so it is exactly a rearrangement of the pixels.
      EXPECT_EQ(MaxAbsDiff(out.image.rgb, ExpectedOriented(upright, o)), 0);
      // OpenCV's imdecode applies EXIF orientation itself with IMREAD_COLOR: a second opinion.
      cv::Mat cv_bgr = cv::imdecode(cv::Mat(1, static_cast<int>(tagged.size()), CV_8U, const_cast<char*>(tagged.data())),
                                    cv::IMREAD_COLOR);
      cv::Mat cv_rgb;
      cv::cvtColor(cv_bgr, cv_rgb, cv::COLOR_BGR2RGB);
      EXPECT_EQ(MaxAbsDiff(out.image.rgb, cv_rgb), 0);
      // Corners exactly where the orientation puts them.
      const int r = out.image.rgb.rows - 4, c = out.image.rgb.cols - 4;
      for (auto [yy, xx] : {std::pair{3, 3}, std::pair{3, c}, std::pair{r, 3}, std::pair{r, c}}) {
        EXPECT_TRUE(Near(out.image.rgb.at<cv::Vec3b>(yy, xx), expected.at<cv::Vec3b>(yy, xx), 3));
      }
    }
  }
  // Orientation 6 is the common phone-camera case: stored top-left ends up top-right.
  const cv::Mat six = Decoded(testimg::WithExifOrientation(jpeg, 6));
  EXPECT_TRUE(Near(six.at<cv::Vec3b>(2, six.cols - 3), kTopLeft, 3));
}

TEST(DecodeTest, ExifOrientationInPngIsExact) {
  const cv::Mat src = Noise(7, 5, 3);
  std::vector<std::uint8_t> px(src.data, src.data + src.total() * 3);
  for (int o = 1; o <= 8; ++o) {
    const std::string png = testimg::Png(7, 5, 2, px, {testimg::PngChunk("eXIf", testimg::ExifTiff(o, true))});
    EXPECT_EQ(MaxAbsDiff(Decoded(png), ExpectedOriented(src, o)), 0) << "orientation " << o;
  }
}

TEST(DecodeTest, BrokenExifIsIgnored) {
  const std::string jpeg = Encode(Quadrants(16, 8), ".jpg");
  std::string bad = std::string("\xFF\xD8\xFF\xE1\x00\x10", 6) + std::string("Exif\0\0MM\0*\xff\xff\xff\xff", 14);
  bad += jpeg.substr(2);
  const DecodeOutcome out = DecodeImage(bad);
  ASSERT_TRUE(out.ok) << out.reason;
  EXPECT_EQ(out.image.width, 16);
}

TEST(DecodeTest, TinyAndExtremeAspectImages) {
  const cv::Mat one(1, 1, CV_8UC3, cv::Scalar(10, 200, 30));
  EXPECT_EQ(MaxAbsDiff(Decoded(Encode(one, ".png")), one), 0);
  EXPECT_EQ(Decoded(Encode(one, ".jpg")).size(), cv::Size(1, 1));
  EXPECT_EQ(MaxAbsDiff(Decoded(Encode(one, ".webp", {cv::IMWRITE_WEBP_QUALITY, 101})), one), 0);
  EXPECT_EQ(MaxAbsDiff(Decoded(Encode(one, ".bmp")), one), 0);
  const cv::Mat wide = Noise(10000, 10, 3);
  EXPECT_EQ(MaxAbsDiff(Decoded(Encode(wide, ".png")), wide), 0);
  EXPECT_EQ(Decoded(Encode(wide, ".jpg")).size(), cv::Size(10000, 10));
}

TEST(DecodeTest, GifIsRecognisedAndRefused) {
  // Header, logical screen 20x10, no global colour table, trailer.
  const std::string gif("GIF89a\x14\x00\x0a\x00\x00\x00\x00\x3b", 14);
  HeaderInfo h;
  std::string reason;
  ASSERT_TRUE(ReadHeader(gif, &h, &reason)) << reason;
  EXPECT_EQ(h.format, "gif");
  EXPECT_EQ(h.width, 20);
  EXPECT_EQ(h.height, 10);
  EXPECT_EQ(Reason(gif), "unsupported format gif");
}

TEST(DecodeTest, ConcurrentDecodesAgree) {
  std::vector<std::string> inputs;
  std::vector<cv::Mat> expected;
  for (unsigned i = 0; i < 8; ++i) {
    inputs.push_back(Encode(Noise(80, 60, 3, CV_8U, i), i % 2 ? ".jpg" : ".png"));
    expected.push_back(Decoded(inputs.back()));
  }
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 20; ++round) {
        for (std::size_t i = 0; i < inputs.size(); ++i) {
          const DecodeOutcome out = DecodeImage(inputs[i]);
          if (!out.ok || MaxAbsDiff(out.image.rgb, expected[i]) != 0) ++mismatches[t];
        }
        if (DecodeImage(std::string_view(inputs[1]).substr(0, 500)).reason != "truncated JPEG") ++mismatches[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

TEST(DecodeTest, DevImagesDecodeCleanly) {
  FRUITPIPE_REQUIRE_SHARED();
  int n = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(testing::DevDataDir() / "Test")) {
    if (!e.is_regular_file() || n >= 200) continue;
    std::ifstream in(e.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    const DecodeOutcome out = DecodeImage(ss.str());
    ASSERT_TRUE(out.ok) << e.path() << ": " << out.reason;
    EXPECT_EQ(out.image.format, "jpeg");
    ++n;
  }
  EXPECT_EQ(n, 200);
}

}  // namespace
}  // namespace fruitpipe::image
