// libFuzzer target: the metadata stripper (privacy::StripMetadata), which walks the JPEG
// segments and PNG chunks of untrusted contributed photos. Refusals must be an
// InvalidArgumentError with a one-line reason, never a crash or another exception. A photo that
// strips must strip again (the output is parseable by the stripper), to the same bytes
// (stripping is idempotent), in the same format and orientation, and the second pass may only
// drop what the first one wrote (the minimal orientation Exif, which it writes again). When the
// input decodes, the output decodes to the same pixels: the picture is copied, never changed.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <opencv2/core.hpp>

#include "fruitpipe/common/error.h"
#include "fruitpipe/image/decode.h"
#include "fruitpipe/privacy/metadata_strip.h"

namespace {

using fruitpipe::privacy::StrippedImage;

bool OneLine(const std::string& reason) { return !reason.empty() && reason.find('\n') == std::string::npos; }

// Strips `bytes`; false when refused (with a well-formed reason), traps on anything else.
bool Strip(std::string_view bytes, StrippedImage* out) {
  try {
    *out = fruitpipe::privacy::StripMetadata(bytes);
    return true;
  } catch (const fruitpipe::InvalidArgumentError& e) {
    if (!OneLine(e.what())) __builtin_trap();
    return false;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  StrippedImage once;
  if (!Strip(bytes, &once)) return 0;
  if (once.format != "jpeg" && once.format != "png") __builtin_trap();
  if (once.extension != (once.format == "jpeg" ? "jpg" : "png")) __builtin_trap();
  if (once.orientation < 1 || once.orientation > 8) __builtin_trap();
  if (once.removed_bytes != (size > once.bytes.size() ? size - once.bytes.size() : 0)) __builtin_trap();

  StrippedImage twice;
  if (!Strip(once.bytes, &twice)) __builtin_trap();  // the output must be accepted again
  if (twice.bytes != once.bytes || twice.format != once.format || twice.orientation != once.orientation) {
    __builtin_trap();
  }
  for (const std::string& removed : twice.removed) {
    if (removed != "APP1 Exif" && removed != "eXIf") __builtin_trap();
  }

  // Same pixels (orientation applied) when the input decodes; 1 Mpixel keeps executions fast.
  fruitpipe::image::DecodeLimits limits;
  limits.max_pixels = 1 << 20;
  const fruitpipe::image::DecodeOutcome in = fruitpipe::image::DecodeImage(bytes, limits);
  if (!in.ok) return 0;
  const fruitpipe::image::DecodeOutcome out = fruitpipe::image::DecodeImage(once.bytes, limits);
  if (!out.ok || out.image.width != in.image.width || out.image.height != in.image.height ||
      out.image.rgb.type() != in.image.rgb.type() || cv::norm(in.image.rgb, out.image.rgb, cv::NORM_INF) != 0) {
    __builtin_trap();
  }
  return 0;
}
