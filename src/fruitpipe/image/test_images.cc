#include "fruitpipe/image/test_images.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include <jpeglib.h>
#include <zlib.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

namespace fruitpipe::image::testimg {
namespace {

void PutBe32(std::string* s, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) s->push_back(static_cast<char>((v >> shift) & 0xff));
}
void PutU16(std::string* s, std::uint32_t v, bool be) {
  if (be) {
    s->push_back(static_cast<char>(v >> 8));
    s->push_back(static_cast<char>(v & 0xff));
  } else {
    s->push_back(static_cast<char>(v & 0xff));
    s->push_back(static_cast<char>(v >> 8));
  }
}
void PutU32(std::string* s, std::uint32_t v, bool be) {
  if (be) {
    PutU16(s, v >> 16, true);
    PutU16(s, v & 0xffff, true);
  } else {
    PutU16(s, v & 0xffff, false);
    PutU16(s, v >> 16, false);
  }
}

}  // namespace

std::string Encode(const cv::Mat& img, const std::string& ext, std::vector<int> params) {
  cv::Mat bgr;  // a fresh Mat: converting into a header of `img` would rewrite the caller's pixels
  if (img.channels() == 3) {
    cv::cvtColor(img, bgr, cv::COLOR_RGB2BGR);
  } else if (img.channels() == 4) {
    cv::cvtColor(img, bgr, cv::COLOR_RGBA2BGRA);
  } else {
    bgr = img;
  }
  std::vector<std::uint8_t> buf;
  if (!cv::imencode(ext, bgr, buf, params)) throw std::runtime_error("imencode " + ext + " failed");
  return std::string(buf.begin(), buf.end());
}

std::string CmykJpeg(int w, int h, const std::uint8_t cmyk[4], bool adobe) {
  jpeg_compress_struct cinfo{};
  jpeg_error_mgr jerr{};
  cinfo.err = jpeg_std_error(&jerr);
  jpeg_create_compress(&cinfo);
  unsigned char* out = nullptr;
  unsigned long out_size = 0;
  jpeg_mem_dest(&cinfo, &out, &out_size);
  cinfo.image_width = static_cast<JDIMENSION>(w);
  cinfo.image_height = static_cast<JDIMENSION>(h);
  cinfo.input_components = 4;
  cinfo.in_color_space = JCS_CMYK;
  jpeg_set_defaults(&cinfo);
  jpeg_set_colorspace(&cinfo, JCS_CMYK);
  jpeg_set_quality(&cinfo, 100, TRUE);
  cinfo.write_Adobe_marker = adobe ? TRUE : FALSE;
  jpeg_start_compress(&cinfo, TRUE);
  std::vector<std::uint8_t> row(static_cast<std::size_t>(w) * 4);
  for (int x = 0; x < w; ++x) std::copy(cmyk, cmyk + 4, row.begin() + 4 * x);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW r = row.data();
    jpeg_write_scanlines(&cinfo, &r, 1);
  }
  jpeg_finish_compress(&cinfo);
  std::string bytes(reinterpret_cast<char*>(out), out_size);
  jpeg_destroy_compress(&cinfo);
  std::free(out);
  return bytes;
}

std::string ManyScanJpeg() {
  std::vector<jpeg_scan_info> scans;
  auto add = [&](int ss, int se, int ah, int al) {
    jpeg_scan_info s{};
    s.comps_in_scan = 1;
    s.component_index[0] = 0;
    s.Ss = ss, s.Se = se, s.Ah = ah, s.Al = al;
    scans.push_back(s);
  };
  constexpr int kTopBit = 10;
  add(0, 0, 0, kTopBit);
  for (int al = kTopBit - 1; al >= 0; --al) add(0, 0, al + 1, al);
  for (int k = 1; k <= 63; ++k) {
    add(k, k, 0, kTopBit);
    for (int al = kTopBit - 1; al >= 0; --al) add(k, k, al + 1, al);
  }
  jpeg_compress_struct cinfo{};
  jpeg_error_mgr jerr{};
  cinfo.err = jpeg_std_error(&jerr);
  jpeg_create_compress(&cinfo);
  unsigned char* out = nullptr;
  unsigned long out_size = 0;
  jpeg_mem_dest(&cinfo, &out, &out_size);
  cinfo.image_width = 16;
  cinfo.image_height = 16;
  cinfo.input_components = 1;
  cinfo.in_color_space = JCS_GRAYSCALE;
  jpeg_set_defaults(&cinfo);
  cinfo.scan_info = scans.data();
  cinfo.num_scans = static_cast<int>(scans.size());
  jpeg_start_compress(&cinfo, TRUE);
  std::vector<std::uint8_t> row(16);
  for (int y = 0; y < 16; ++y) {
    for (int x = 0; x < 16; ++x) row[x] = static_cast<std::uint8_t>(x * 16 + y);
    JSAMPROW r = row.data();
    jpeg_write_scanlines(&cinfo, &r, 1);
  }
  jpeg_finish_compress(&cinfo);
  std::string bytes(reinterpret_cast<char*>(out), out_size);
  jpeg_destroy_compress(&cinfo);
  std::free(out);
  return bytes;
}

std::string ExifTiff(int orientation, bool be) {
  std::string t = be ? std::string("MM\0*", 4) : std::string("II*\0", 4);
  PutU32(&t, 8, be);           // IFD0 offset
  PutU16(&t, 1, be);           // one entry
  PutU16(&t, 0x0112, be);      // Orientation
  PutU16(&t, 3, be);           // SHORT
  PutU32(&t, 1, be);           // count
  PutU16(&t, static_cast<std::uint32_t>(orientation), be);
  PutU16(&t, 0, be);           // value field padding
  PutU32(&t, 0, be);           // no next IFD
  return t;
}

std::string WithExifOrientation(std::string_view jpeg, int orientation, bool big_endian) {
  const std::string payload = std::string("Exif\0\0", 6) + ExifTiff(orientation, big_endian);
  std::string seg = "\xFF\xE1";
  PutU16(&seg, static_cast<std::uint32_t>(payload.size() + 2), true);
  seg += payload;
  std::string out(jpeg.substr(0, 2));
  out += seg;
  out += jpeg.substr(2);
  return out;
}

std::string PngChunk(std::string_view type, std::string_view data) {
  std::string c;
  PutBe32(&c, static_cast<std::uint32_t>(data.size()));
  std::string body(type);
  body += data;
  c += body;
  PutBe32(&c, static_cast<std::uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(body.data()),
                                               static_cast<uInt>(body.size()))));
  return c;
}

std::string PngIhdr(std::uint32_t w, std::uint32_t h, int bit_depth, int color_type) {
  std::string d;
  PutBe32(&d, w);
  PutBe32(&d, h);
  d.push_back(static_cast<char>(bit_depth));
  d.push_back(static_cast<char>(color_type));
  d.append(3, '\0');  // compression, filter, interlace
  return PngChunk("IHDR", d);
}

std::string Png(std::uint32_t w, std::uint32_t h, int color_type, const std::vector<std::uint8_t>& pixels,
                const std::vector<std::string>& extra) {
  const std::size_t channels = color_type == 0 || color_type == 3 ? 1 : color_type == 4 ? 2 : color_type == 2 ? 3 : 4;
  const std::size_t stride = w * channels;
  if (pixels.size() != stride * h) throw std::runtime_error("Png: pixel count does not match");
  std::string raw;
  for (std::uint32_t y = 0; y < h; ++y) {
    raw.push_back('\0');
    raw.append(reinterpret_cast<const char*>(pixels.data() + y * stride), stride);
  }
  uLongf zsize = compressBound(static_cast<uLong>(raw.size()));
  std::string z(zsize, '\0');
  compress(reinterpret_cast<Bytef*>(z.data()), &zsize, reinterpret_cast<const Bytef*>(raw.data()),
           static_cast<uLong>(raw.size()));
  z.resize(zsize);
  std::string png = "\x89PNG\r\n\x1a\n" + PngIhdr(w, h, 8, color_type);
  for (const std::string& c : extra) png += c;
  png += PngChunk("IDAT", z);
  png += PngChunk("IEND", "");
  return png;
}

std::size_t FindMarker(std::string_view jpeg, std::uint8_t m) {
  for (std::size_t i = 0; i + 1 < jpeg.size(); ++i) {
    if (static_cast<std::uint8_t>(jpeg[i]) == 0xFF && static_cast<std::uint8_t>(jpeg[i + 1]) == m) return i + 2;
  }
  throw std::runtime_error("marker not found");
}

}  // namespace fruitpipe::image::testimg
