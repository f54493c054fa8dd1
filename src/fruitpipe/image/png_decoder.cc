#include <csetjmp>
#include <cstring>
#include <vector>

#include <png.h>

#include "fruitpipe/image/codecs.h"
#include "fruitpipe/image/formats.h"

namespace fruitpipe::image::internal {
namespace {

struct PngState {
  std::string_view data;
  std::size_t pos;
  bool out_of_data;
  char message[160];
};

PngState* StateOf(png_structp png) { return static_cast<PngState*>(png_get_error_ptr(png)); }

void ReadFromMemory(png_structp png, png_bytep out, std::size_t n) {
  auto* st = static_cast<PngState*>(png_get_io_ptr(png));
  if (n > st->data.size() - st->pos) {
    st->out_of_data = true;
    png_error(png, "unexpected end of data");
  }
  std::memcpy(out, st->data.data() + st->pos, n);
  st->pos += n;
}

[[noreturn]] void ErrorFn(png_structp png, png_const_charp message) {
  PngState* st = StateOf(png);
  std::snprintf(st->message, sizeof st->message, "%s", message);
  png_longjmp(png, 1);
}

// Warnings (unknown ancillary chunks, odd ICC profiles, bad ancillary CRCs, which libpng then
// skips) leave the pixels intact.
void WarningFn(png_structp, png_const_charp) {}

struct ReadGuard {
  png_structp png;
  png_infop info;
  ~ReadGuard() { png_destroy_read_struct(&png, info ? &info : nullptr, nullptr); }
};

}  // namespace

bool DecodePng(std::string_view bytes, cv::Mat* out, std::string* reason) {
  PngState st{bytes, 0, false, {}};
  std::vector<png_bytep> rows;  // every C++ object the jump may cross lives above setjmp
  ReadGuard guard{png_create_read_struct(PNG_LIBPNG_VER_STRING, &st, ErrorFn, WarningFn), nullptr};
  if (guard.png == nullptr || (guard.info = png_create_info_struct(guard.png)) == nullptr) {
    *reason = "out of memory while decoding";
    return false;
  }
  png_structp png = guard.png;
  png_infop info = guard.info;
  if (setjmp(png_jmpbuf(png))) {
    *reason = st.out_of_data || !PngComplete(bytes) ? std::string("truncated PNG")
                                                    : "corrupt image data: " + std::string(st.message);
    return false;
  }
  png_set_read_fn(png, &st, ReadFromMemory);
  png_read_info(png, info);
  const int color_type = png_get_color_type(png, info);
  const int bit_depth = png_get_bit_depth(png, info);
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
  if (bit_depth == 16) png_set_scale_16(png);  // rounds v/257, unlike strip_16's v>>8
  png_set_gray_to_rgb(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  const int channels = png_get_channels(png, info);
  if (channels != 3 && channels != 4) png_error(png, "unexpected channel count after conversion");
  const int width = static_cast<int>(png_get_image_width(png, info));
  const int height = static_cast<int>(png_get_image_height(png, info));
  out->create(height, width, channels == 4 ? CV_8UC4 : CV_8UC3);
  if (png_get_rowbytes(png, info) != static_cast<std::size_t>(width) * channels) png_error(png, "row size mismatch");
  rows.resize(static_cast<std::size_t>(height));
  for (int y = 0; y < height; ++y) rows[y] = out->ptr<png_byte>(y);
  png_read_image(png, rows.data());
  png_read_end(png, nullptr);  // checks the chunks after IDAT up to IEND
  return true;
}

}  // namespace fruitpipe::image::internal
