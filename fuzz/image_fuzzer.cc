// libFuzzer target: the image header parsers and the decode/validate wrapper on arbitrary
// bytes (JPEG via libjpeg-turbo, PNG via libpng, WebP via libwebp, BMP via OpenCV). Failures
// must come back as a one-line reason, never a crash, an exception or output on stderr; a
// decoded image must be 8-bit RGB of the size it reports.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fruitpipe/image/decode.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  fruitpipe::image::HeaderInfo header;
  std::string reason;
  const bool header_ok = fruitpipe::image::ReadHeader(bytes, &header, &reason);
  if (!header_ok && reason.empty()) __builtin_trap();
  // The pipeline's limits except the pixel count: 4 Mpixels keeps each execution fast while
  // exercising the same code (the limit check itself is a comparison on the header).
  fruitpipe::image::DecodeLimits limits;
  limits.max_pixels = 1 << 22;
  const fruitpipe::image::DecodeOutcome out = fruitpipe::image::DecodeImage(bytes, limits);
  if (!out.ok) {
    if (out.reason.empty() || out.reason.find('\n') != std::string::npos) __builtin_trap();
    return 0;
  }
  const cv::Mat& m = out.image.rgb;
  if (!header_ok || m.type() != CV_8UC3 || m.cols != out.image.width || m.rows != out.image.height ||
      m.cols < 1 || m.rows < 1 || std::int64_t{m.cols} * m.rows > limits.max_pixels) {
    __builtin_trap();
  }
  return 0;
}
