#include <webp/decode.h>

#include "fruitpipe/image/codecs.h"

namespace fruitpipe::image::internal {

bool DecodeWebp(std::string_view bytes, cv::Mat* out, std::string* reason) {
  const auto* data = reinterpret_cast<const std::uint8_t*>(bytes.data());
  WebPDecoderConfig config;
  if (!WebPInitDecoderConfig(&config)) {
    *reason = "corrupt image data: libwebp version mismatch";
    return false;
  }
  VP8StatusCode status = WebPGetFeatures(data, bytes.size(), &config.input);
  if (status == VP8_STATUS_OK && config.input.has_animation) {
    *reason = "unsupported format webp (animated)";
    return false;
  }
  if (status == VP8_STATUS_OK) {
    const bool alpha = config.input.has_alpha;
    out->create(config.input.height, config.input.width, alpha ? CV_8UC4 : CV_8UC3);
    config.output.colorspace = alpha ? MODE_RGBA : MODE_RGB;
    config.output.is_external_memory = 1;
    config.output.u.RGBA.rgba = out->data;
    config.output.u.RGBA.stride = static_cast<int>(out->step[0]);
    config.output.u.RGBA.size = out->total() * out->elemSize();
    status = WebPDecode(data, bytes.size(), &config);
    WebPFreeDecBuffer(&config.output);
  }
  if (status == VP8_STATUS_OK) return true;
  *reason = status == VP8_STATUS_NOT_ENOUGH_DATA ? "truncated WebP"
                                                 : "corrupt image data: libwebp status " + std::to_string(status);
  return false;
}

}  // namespace fruitpipe::image::internal
