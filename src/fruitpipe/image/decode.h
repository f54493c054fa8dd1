// Decoding untrusted image bytes. Never crashes on hostile input: every failure becomes a
// rejection with a short, specific reason ("not an image", "truncated JPEG", "declared
// 60000x60000 pixels exceeds limit 40000000", ...). Dimensions are read from the header and
// checked against the limits before any pixel is decoded (decompression bombs).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <opencv2/core.hpp>

namespace fruitpipe::image {

struct DecodeLimits {
  std::size_t max_bytes = 64u << 20;      // encoded size
  std::int64_t max_pixels = 40'000'000;   // declared width*height
  int min_side = 1;
};

struct HeaderInfo {
  std::string format;  // "jpeg", "png", "gif", "bmp", "webp", "tiff", or "" if unknown
  int width = 0;
  int height = 0;
  int channels = 0;    // as declared (1 gray, 2 gray+alpha, 3 RGB/YCbCr, 4 CMYK/RGBA), 0 if unknown
  int orientation = 1; // EXIF/TIFF orientation 1..8 (JPEG APP1, PNG eXIf, TIFF IFD0); 1 = as stored
};

struct DecodedImage {
  cv::Mat rgb;         // CV_8UC3, RGB order, EXIF orientation applied
  int width = 0;       // of `rgb`, i.e. after orientation
  int height = 0;
  std::string format;
};

struct DecodeOutcome {
  bool ok = false;
  std::string reason;  // set when !ok; one line, no path (the caller adds it)
  DecodedImage image;
};

// Parses only the header. Returns false with `reason` when the bytes are not a supported image.
// Does not apply DecodeLimits: DecodeImage does, using the dimensions declared here.
bool ReadHeader(std::string_view bytes, HeaderInfo* info, std::string* reason);

// Validates, decodes (any bit depth, gray, alpha composited on white, CMYK, palette), applies
// EXIF orientation and converts to 8-bit RGB. JPEG goes through libjpeg-turbo directly (silent,
// with truncation and corruption detected from its warnings); PNG, BMP, WebP and TIFF through
// cv::imdecode; GIF is rejected ("unsupported format gif"). Thread-safe; see docs/model-card.md.
DecodeOutcome DecodeImage(std::string_view bytes, const DecodeLimits& limits = {});

// The rejection reason for an encoded file over DecodeLimits::max_bytes (also used before
// reading, from a listing's size).
std::string FileTooLargeReason(std::uint64_t bytes, std::size_t max_bytes);

}  // namespace fruitpipe::image
