// Test-only: photos as phones hand them over — Exif with the camera make and GPS position,
// XMP, ICC, IPTC, comments, a JFIF thumbnail, data after EOI; PNGs with text and eXIf
// chunks — built byte by byte, so the stripping tests know exactly what must disappear.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <opencv2/core.hpp>

namespace fruitpipe::privacy::testphotos {

std::string Le32(std::uint32_t v);

// A little-endian TIFF (the body of an Exif block): Make "FruitPhone 12 Pro", the
// orientation, and a GPS IFD at 48°51'29.52"N 2°17'40.20"E (rationals 2952/100, 4020/100).
std::string GpsExifTiff(int orientation);
// FF <marker> <length> <payload>
std::string JpegSegment(std::uint8_t marker, std::string_view payload);
// A smooth RGB test picture.
cv::Mat TestPicture(int w, int h);

// `plain` (a JPEG starting with a JFIF APP0, as libjpeg writes) with a JFIF thumbnail, Exif
// (GPS, `orientation`), XMP ("Paris"), an ICC profile, IPTC and a comment naming alice, and
// data after EOI ("TRAILER").
std::string PhoneJpeg(const std::string& plain, int orientation);
// An RGB PNG with tEXt (Author alice), eXIf (GPS, `orientation`), tIME and iTXt chunks.
std::string PhonePng(int w, int h, int orientation);

}  // namespace fruitpipe::privacy::testphotos
