#include "fruitpipe/privacy/test_photos.h"

#include <stdexcept>
#include <vector>

#include "fruitpipe/image/test_images.h"

namespace fruitpipe::privacy::testphotos {
namespace {

using namespace std::string_literals;

std::string Be16(std::uint32_t v) { return {static_cast<char>(v >> 8), static_cast<char>(v & 0xff)}; }
std::string Le16(std::uint32_t v) { return {static_cast<char>(v & 0xff), static_cast<char>(v >> 8)}; }

}  // namespace

std::string Le32(std::uint32_t v) { return Le16(v & 0xffff) + Le16(v >> 16); }

std::string GpsExifTiff(int orientation) {
  // IFD0 at 8: 3 entries (2 + 3*12 + 4 = 42 bytes) -> GPS IFD at 50, strings/rationals after.
  const std::uint32_t gps_ifd = 50;
  const std::uint32_t gps_size = 2 + 4 * 12 + 4;  // 4 entries
  const std::uint32_t make_at = gps_ifd + gps_size;
  const std::string make = "FruitPhone 12 Pro\0"s;  // 18 bytes
  const std::uint32_t lat_at = make_at + static_cast<std::uint32_t>(make.size());
  const std::uint32_t lon_at = lat_at + 24;
  auto entry = [](std::uint16_t tag, std::uint16_t type, std::uint32_t count, const std::string& value4) {
    return Le16(tag) + Le16(type) + Le32(count) + value4;
  };
  std::string t = "II*\0"s;
  t += Le32(8);
  t += Le16(3);
  t += entry(0x010F, 2, static_cast<std::uint32_t>(make.size()), Le32(make_at));  // Make
  t += entry(0x0112, 3, 1, Le16(static_cast<std::uint32_t>(orientation)) + Le16(0));
  t += entry(0x8825, 4, 1, Le32(gps_ifd));  // GPSInfo
  t += Le32(0);
  t += Le16(4);
  t += entry(0x0001, 2, 2, "N\0\0\0"s);  // GPSLatitudeRef
  t += entry(0x0002, 5, 3, Le32(lat_at));  // GPSLatitude
  t += entry(0x0003, 2, 2, "E\0\0\0"s);  // GPSLongitudeRef
  t += entry(0x0004, 5, 3, Le32(lon_at));  // GPSLongitude
  t += Le32(0);
  t += make;
  for (std::uint32_t v : {48u, 1u, 51u, 1u, 2952u, 100u}) t += Le32(v);  // 48°51'29.52"N
  for (std::uint32_t v : {2u, 1u, 17u, 1u, 4020u, 100u}) t += Le32(v);   // 2°17'40.20"E
  return t;
}

std::string JpegSegment(std::uint8_t marker, std::string_view payload) {
  std::string s = "\xFF";
  s.push_back(static_cast<char>(marker));
  s += Be16(static_cast<std::uint32_t>(payload.size() + 2));
  s += payload;
  return s;
}

cv::Mat TestPicture(int w, int h) {
  cv::Mat rgb(h, w, CV_8UC3);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      rgb.at<cv::Vec3b>(y, x) = cv::Vec3b(static_cast<uchar>(x * 255 / w), static_cast<uchar>(y * 255 / h),
                                          static_cast<uchar>((x * y) % 256));
    }
  }
  return rgb;
}

std::string PhoneJpeg(const std::string& plain, int orientation) {
  if (plain.size() < 20 || plain.compare(0, 4, "\xFF\xD8\xFF\xE0") != 0) {
    throw std::invalid_argument("PhoneJpeg: expected a JPEG starting with a JFIF APP0");
  }
  const std::size_t jfif_size = 2 + ((static_cast<std::uint8_t>(plain[4]) << 8) | static_cast<std::uint8_t>(plain[5]));
  std::string jfif_payload = plain.substr(6, 12);           // JFIF\0 version units density
  jfif_payload += "\x02\x01"s + std::string(6, '\x7f');     // a 2x1 RGB thumbnail
  std::string meta = JpegSegment(0xE0, jfif_payload);
  meta += JpegSegment(0xE1, "Exif\0\0"s + GpsExifTiff(orientation));
  meta += JpegSegment(0xE1, "http://ns.adobe.com/xap/1.0/\0<x:xmpmeta><photoshop:City>Paris</photoshop:City></x:xmpmeta>"s);
  meta += JpegSegment(0xE2, "ICC_PROFILE\0\x01\x01"s + "desc FruitPhone camera profile");
  meta += JpegSegment(0xED, "Photoshop 3.0\0"s + "8BIM\x04\x04 byline: alice@example.org");
  meta += JpegSegment(0xFE, "taken by alice in her kitchen");
  return plain.substr(0, 2) + meta + plain.substr(2 + jfif_size) + "TRAILER: alice's phone serial 1234";
}

std::string PhonePng(int w, int h, int orientation) {
  std::vector<std::uint8_t> px(static_cast<std::size_t>(w * h * 3));
  for (std::size_t i = 0; i < px.size(); ++i) px[i] = static_cast<std::uint8_t>((i * 37) % 251);
  namespace ti = image::testimg;
  return ti::Png(static_cast<std::uint32_t>(w), static_cast<std::uint32_t>(h), 2, px,
                 {ti::PngChunk("tEXt", "Author\0alice"s), ti::PngChunk("eXIf", GpsExifTiff(orientation)),
                  ti::PngChunk("tIME", "\x07\xe8\x05\x01\x0c\x00\x00"s),
                  ti::PngChunk("iTXt", "Location\0\0\0\0\0kitchen of alice"s)});
}

}  // namespace fruitpipe::privacy::testphotos
