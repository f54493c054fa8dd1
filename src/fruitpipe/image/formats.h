// Internal to fp_image: bounds-checked parsers for the headers of the formats fruitpipe
// accepts. They read declared dimensions before any decoder runs, so a decompression bomb is
// refused without allocating its pixels. None of them trusts a length field.
#pragma once

#include <string>
#include <string_view>

#include "fruitpipe/image/decode.h"

namespace fruitpipe::image::internal {

// Each returns true and fills `info` (format included), or false with a one-line `reason`.
// They are called only when the bytes start with the format's signature.
bool ParseJpegHeader(std::string_view bytes, HeaderInfo* info, std::string* reason);
bool ParsePngHeader(std::string_view bytes, HeaderInfo* info, std::string* reason);
bool ParseGifHeader(std::string_view bytes, HeaderInfo* info, std::string* reason);
bool ParseBmpHeader(std::string_view bytes, HeaderInfo* info, std::string* reason);
bool ParseWebpHeader(std::string_view bytes, HeaderInfo* info, std::string* reason);
bool ParseTiffHeader(std::string_view bytes, HeaderInfo* info, std::string* reason);

// The orientation tag (0x0112) of IFD0 in a TIFF structure (the body of an Exif block);
// 1 when absent or invalid, since a broken Exif block must not cost the image.
int TiffOrientation(std::string_view tiff);

// For BMPs handed to cv::imdecode, whose reader throws (and prints) on short data: true when
// the file is uncompressed (or bit fields) with a supported depth and holds every pixel row.
bool BmpDecodable(std::string_view bytes, std::string* reason);

// True when the PNG chunk sequence is intact up to and including IEND.
bool PngComplete(std::string_view bytes);

}  // namespace fruitpipe::image::internal
