#include "fruitpipe/image/codecs.h"

#include <csetjmp>
#include <cstdio>  // jpeglib.h needs FILE and size_t first
#include <vector>

#include <jerror.h>
#include <jpeglib.h>

namespace fruitpipe::image::internal {
namespace {

// A progressive JPEG can hold thousands of tiny scans, each making libjpeg walk the whole
// coefficient buffer (a known CPU-exhaustion input); real encoders write about ten. 500 is the
// limit libjpeg-turbo's own fuzz targets set (TJPARAM_SCANLIMIT).
constexpr int kMaxScans = 500;

struct ErrorState {
  jpeg_error_mgr pub;  // first, so a j_common_ptr's err can be cast back to ErrorState
  std::jmp_buf jump;
  bool truncated;
  bool damaged;
  char message[JMSG_LENGTH_MAX];
};

ErrorState* StateOf(j_common_ptr cinfo) { return reinterpret_cast<ErrorState*>(cinfo->err); }

[[noreturn]] void ErrorExit(j_common_ptr cinfo) {
  ErrorState* st = StateOf(cinfo);
  (*cinfo->err->format_message)(cinfo, st->message);
  std::longjmp(st->jump, 1);
}

// Warnings about damaged entropy-coded data mean wrong pixels, so they reject the image.
// These do not: the pixel data itself decodes completely.
bool BenignWarning(int code) {
  return code == JWRN_EXTRANEOUS_DATA || code == JWRN_JFIF_MAJOR || code == JWRN_ADOBE_XFORM ||
         code == JWRN_BOGUS_ICC;
}

void EmitMessage(j_common_ptr cinfo, int level) {
  if (level >= 0) return;  // trace output, not a warning
  ErrorState* st = StateOf(cinfo);
  const int code = cinfo->err->msg_code;
  if (code == JWRN_JPEG_EOF) {
    st->truncated = true;  // jpeg_mem_src inserted a fake EOI; the rest is grey fill
  } else if (!BenignWarning(code) && !st->damaged) {
    st->damaged = true;
    (*cinfo->err->format_message)(cinfo, st->message);
  }
}

void OutputMessage(j_common_ptr) {}  // never print: the caller reports one line per image

void OnProgress(j_common_ptr cinfo) {
  auto* d = reinterpret_cast<j_decompress_ptr>(cinfo);
  if (d->input_scan_number > kMaxScans) {
    ErrorState* st = StateOf(cinfo);
    std::snprintf(st->message, sizeof st->message, "more than %d progressive scans", kMaxScans);
    std::longjmp(st->jump, 1);
  }
}

std::uint8_t Mul255(unsigned a, unsigned b) { return static_cast<std::uint8_t>((a * b + 127) / 255); }

// Adobe (Photoshop) CMYK JPEGs store inverted ink values, and nearly every CMYK JPEG is one;
// files without the Adobe marker store plain ink values.
void CmykRowToRgb(const std::uint8_t* src, std::uint8_t* dst, unsigned width, bool inverted) {
  for (unsigned x = 0; x < width; ++x, src += 4, dst += 3) {
    unsigned c = src[0], m = src[1], y = src[2], k = src[3];
    if (!inverted) {
      c = 255 - c, m = 255 - m, y = 255 - y, k = 255 - k;
    }
    dst[0] = Mul255(c, k);
    dst[1] = Mul255(m, k);
    dst[2] = Mul255(y, k);
  }
}

// libjpeg's messages for bad entropy data start with "Corrupt JPEG data: ", which would repeat
// our own prefix.
std::string CorruptReason(std::string_view message) {
  constexpr std::string_view kLibjpegPrefix = "Corrupt JPEG data: ";
  if (message.substr(0, kLibjpegPrefix.size()) == kLibjpegPrefix) message.remove_prefix(kLibjpegPrefix.size());
  return "corrupt image data: " + std::string(message);
}

// Releases libjpeg's memory on every path, the longjmp one included. It is declared before
// setjmp, so the jump does not skip its destructor; jpeg_destroy is safe to repeat.
struct DecompressGuard {
  jpeg_decompress_struct* cinfo;
  ~DecompressGuard() { jpeg_destroy_decompress(cinfo); }
};

}  // namespace

bool DecodeJpeg(std::string_view bytes, cv::Mat* rgb, std::string* reason) {
  jpeg_decompress_struct cinfo{};
  ErrorState err{};
  jpeg_progress_mgr progress{};
  std::vector<std::uint8_t> cmyk_row;  // every C++ object the jump may cross lives above setjmp
  DecompressGuard guard{&cinfo};
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = ErrorExit;
  err.pub.emit_message = EmitMessage;
  err.pub.output_message = OutputMessage;
  if (setjmp(err.jump)) {
    *reason = err.truncated ? std::string("truncated JPEG") : CorruptReason(err.message);
    return false;
  }
  jpeg_create_decompress(&cinfo);
  progress.progress_monitor = OnProgress;
  cinfo.progress = &progress;
  jpeg_mem_src(&cinfo, reinterpret_cast<const unsigned char*>(bytes.data()),
               static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(&cinfo, TRUE);
  const bool cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
  cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;  // libjpeg expands grayscale to RGB itself
  jpeg_start_decompress(&cinfo);
  const unsigned width = cinfo.output_width;
  rgb->create(static_cast<int>(cinfo.output_height), static_cast<int>(width), CV_8UC3);
  if (cmyk) cmyk_row.resize(std::size_t{width} * 4);
  while (cinfo.output_scanline < cinfo.output_height) {
    const int y = static_cast<int>(cinfo.output_scanline);
    JSAMPROW dst = cmyk ? cmyk_row.data() : rgb->ptr<std::uint8_t>(y);
    if (jpeg_read_scanlines(&cinfo, &dst, 1) != 1) break;
    if (cmyk) CmykRowToRgb(cmyk_row.data(), rgb->ptr<std::uint8_t>(y), width, cinfo.saw_Adobe_marker);
  }
  if (cinfo.output_scanline == cinfo.output_height) jpeg_finish_decompress(&cinfo);
  if (err.truncated || cinfo.output_scanline < cinfo.output_height) {
    *reason = "truncated JPEG";
    return false;
  }
  if (err.damaged) {
    *reason = CorruptReason(err.message);
    return false;
  }
  return true;
}

}  // namespace fruitpipe::image::internal
