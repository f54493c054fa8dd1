#include "fruitpipe/image/decode.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "fruitpipe/image/formats.h"
#include "fruitpipe/image/codecs.h"

namespace fruitpipe::image {
namespace {

bool StartsWith(std::string_view b, std::string_view sig) { return b.substr(0, sig.size()) == sig; }

DecodeOutcome Reject(std::string reason) {
  DecodeOutcome out;
  out.reason = std::move(reason);
  return out;
}

// out = c*a + 255*(1-a): Fruits-360 photographs fruit on white, so a transparent background
// becomes the background the model has seen.
cv::Mat CompositeOnWhite(const cv::Mat& rgba) {
  cv::Mat rgb(rgba.rows, rgba.cols, CV_8UC3);
  for (int y = 0; y < rgba.rows; ++y) {
    const std::uint8_t* s = rgba.ptr<std::uint8_t>(y);
    std::uint8_t* d = rgb.ptr<std::uint8_t>(y);
    for (int x = 0; x < rgba.cols; ++x, s += 4, d += 3) {
      const unsigned a = s[3];
      const unsigned white = 255 * (255 - a) + 127;  // +127: round to nearest
      for (int c = 0; c < 3; ++c) d[c] = static_cast<std::uint8_t>((s[c] * a + white) / 255);
    }
  }
  return rgb;
}

// EXIF orientation values (TIFF 6.0 tag 274): how the stored rows map to the upright image.
cv::Mat ApplyOrientation(const cv::Mat& m, int orientation) {
  cv::Mat out;
  switch (orientation) {
    case 2: cv::flip(m, out, 1); break;                              // mirrored
    case 3: cv::rotate(m, out, cv::ROTATE_180); break;
    case 4: cv::flip(m, out, 0); break;                              // upside-down mirror
    case 5: cv::transpose(m, out); break;                            // mirror + 90 CCW
    case 6: cv::rotate(m, out, cv::ROTATE_90_CLOCKWISE); break;
    case 7: cv::transpose(m, out); cv::flip(out, out, -1); break;    // mirror + 90 CW
    case 8: cv::rotate(m, out, cv::ROTATE_90_COUNTERCLOCKWISE); break;
    default: return m;
  }
  return out;
}

// BMP is the one format left to cv::imdecode; BmpDecodable has already ruled out the inputs on
// which its reader throws. IMREAD_COLOR drops the fourth byte of 32-bit BMPs, which is padding,
// not alpha, in most files.
bool DecodeBmp(std::string_view bytes, cv::Mat* rgb, std::string* reason) {
  if (!internal::BmpDecodable(bytes, reason)) return false;
  const cv::Mat buf(1, static_cast<int>(bytes.size()), CV_8U, const_cast<char*>(bytes.data()));
  const cv::Mat bgr = cv::imdecode(buf, cv::IMREAD_COLOR);
  if (bgr.empty()) {
    *reason = "corrupt image data: the bmp decoder failed";
    return false;
  }
  cv::cvtColor(bgr, *rgb, cv::COLOR_BGR2RGB);
  return true;
}

}  // namespace

bool ReadHeader(std::string_view b, HeaderInfo* info, std::string* reason) {
  *info = HeaderInfo();
  if (b.empty()) {
    *reason = "empty file";
    return false;
  }
  if (StartsWith(b, "\xFF\xD8\xFF")) return internal::ParseJpegHeader(b, info, reason);
  if (StartsWith(b, "\x89PNG\r\n\x1a\n")) return internal::ParsePngHeader(b, info, reason);
  if (StartsWith(b, "GIF87a") || StartsWith(b, "GIF89a")) return internal::ParseGifHeader(b, info, reason);
  if (StartsWith(b, "BM")) return internal::ParseBmpHeader(b, info, reason);
  if (StartsWith(b, "RIFF") && b.size() >= 12 && b.substr(8, 4) == "WEBP") {
    return internal::ParseWebpHeader(b, info, reason);
  }
  if (StartsWith(b, std::string_view("II*\0", 4)) || StartsWith(b, std::string_view("MM\0*", 4))) {
    return internal::ParseTiffHeader(b, info, reason);
  }
  *reason = "not an image (unrecognised signature)";
  return false;
}

std::string FileTooLargeReason(std::uint64_t bytes, std::size_t max_bytes) {
  return "file of " + std::to_string(bytes) + " bytes exceeds the limit of " + std::to_string(max_bytes);
}

namespace {

DecodeOutcome DecodeChecked(std::string_view bytes, const DecodeLimits& limits) {
  if (bytes.size() > limits.max_bytes) {
    return Reject(FileTooLargeReason(bytes.size(), limits.max_bytes));
  }
  HeaderInfo header;
  std::string reason;
  if (!ReadHeader(bytes, &header, &reason)) return Reject(std::move(reason));
  const std::string dims = std::to_string(header.width) + "x" + std::to_string(header.height);
  if (header.width < limits.min_side || header.height < limits.min_side) {
    return Reject("declared " + dims + " pixels is below the minimum side of " + std::to_string(limits.min_side));
  }
  if (std::int64_t{header.width} * header.height > limits.max_pixels) {
    return Reject("declared " + dims + " pixels exceeds the limit of " + std::to_string(limits.max_pixels));
  }
  // GIF (no decoder in OpenCV 4.6) and TIFF (a large parser surface, libtiff) are recognised
  // so the reason is precise, and refused: fruit photographs are not delivered in them.
  if (header.format == "gif" || header.format == "tiff") return Reject("unsupported format " + header.format);

  cv::Mat rgb;
  bool ok = false;
  if (header.format == "jpeg") {
    ok = internal::DecodeJpeg(bytes, &rgb, &reason);
  } else if (header.format == "png") {
    ok = internal::DecodePng(bytes, &rgb, &reason);
  } else if (header.format == "webp") {
    ok = internal::DecodeWebp(bytes, &rgb, &reason);
  } else {
    ok = DecodeBmp(bytes, &rgb, &reason);
  }
  if (!ok) return Reject(std::move(reason));
  if (rgb.channels() == 4) rgb = CompositeOnWhite(rgb);
  if (rgb.cols != header.width || rgb.rows != header.height) {
    return Reject("corrupt image data: header declares " + dims + " but the pixels are " +
                  std::to_string(rgb.cols) + "x" + std::to_string(rgb.rows));
  }

  DecodeOutcome out;
  out.ok = true;
  out.image.rgb = ApplyOrientation(rgb, header.orientation);
  out.image.width = out.image.rgb.cols;
  out.image.height = out.image.rgb.rows;
  out.image.format = header.format;
  return out;
}

}  // namespace

DecodeOutcome DecodeImage(std::string_view bytes, const DecodeLimits& limits) {
  // The decoders report failures through return values; these are the leftovers (OpenCV
  // assertions on odd inputs, allocation failure) that must still not end the process.
  try {
    return DecodeChecked(bytes, limits);
  } catch (const cv::Exception& e) {
    return Reject("corrupt image data: " + e.err);
  } catch (const std::bad_alloc&) {
    return Reject("out of memory while decoding");
  }
}

}  // namespace fruitpipe::image
