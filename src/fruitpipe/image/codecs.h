// Internal to fp_image: decoding through the codec libraries' own APIs (libjpeg-turbo, libpng,
// libwebp) rather than cv::imdecode. OpenCV 4.6 leaves libjpeg/libpng messages on stderr,
// prints its own exceptions to std::cerr, and returns a truncated JPEG "successfully" with a
// grey fill; here every message is captured and turned into the rejection reason instead.
#pragma once

#include <string>
#include <string_view>

#include <opencv2/core.hpp>

namespace fruitpipe::image::internal {

// Each decodes to CV_8UC3 (RGB) or CV_8UC4 (RGBA, straight alpha), or returns false with a
// one-line reason ("truncated JPEG", "corrupt image data: <library message>", ...). They never
// print and never throw for bad data.

// Gray expanded, CMYK/YCCK converted; always CV_8UC3.
bool DecodeJpeg(std::string_view bytes, cv::Mat* out, std::string* reason);
// Palette, gray, 1..16-bit, tRNS and interlacing normalised; CV_8UC4 when there is alpha.
bool DecodePng(std::string_view bytes, cv::Mat* out, std::string* reason);
// Still images only (animated WebP is refused).
bool DecodeWebp(std::string_view bytes, cv::Mat* out, std::string* reason);

}  // namespace fruitpipe::image::internal
