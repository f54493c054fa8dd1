// Test-only image writers: the odd inputs fp_image must handle (CMYK JPEG, Exif orientation,
// palette and gray+alpha PNG, hostile headers) built from scratch with libjpeg and zlib, since
// cv::imencode cannot produce them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <opencv2/core.hpp>

namespace fruitpipe::image::testimg {

// cv::imencode of an RGB (or gray) image; `ext` like ".jpg", ".png", ".webp".
std::string Encode(const cv::Mat& rgb_or_gray, const std::string& ext, std::vector<int> params = {});

// A CMYK JPEG of `w`x`h` pixels all holding the stored bytes `cmyk`. `adobe`: write the Adobe
// APP14 marker (libjpeg's default for CMYK), which tells readers the values are inverted.
std::string CmykJpeg(int w, int h, const std::uint8_t cmyk[4], bool adobe);

// A valid progressive gray JPEG whose scan script has about 1400 scans: every AC coefficient in
// its own band, refined one bit at a time (real encoders write about ten scans).
std::string ManyScanJpeg();

// `jpeg` with an APP1 Exif segment carrying `orientation` inserted after SOI. `big_endian`
// chooses the TIFF byte order ("MM" vs "II").
std::string WithExifOrientation(std::string_view jpeg, int orientation, bool big_endian = false);

// A TIFF structure (as inside Exif) whose IFD0 holds only the orientation tag.
std::string ExifTiff(int orientation, bool big_endian);

// PNG pieces: a chunk with its CRC, and a whole PNG from raw 8-bit rows (filter 0 added here).
std::string PngChunk(std::string_view type, std::string_view data);
std::string PngIhdr(std::uint32_t w, std::uint32_t h, int bit_depth, int color_type);
std::string Png(std::uint32_t w, std::uint32_t h, int color_type, const std::vector<std::uint8_t>& pixels,
                const std::vector<std::string>& extra_chunks_before_idat = {});

// Offset of the first byte after the first occurrence of marker `m` (0xFF m) in `jpeg`.
std::size_t FindMarker(std::string_view jpeg, std::uint8_t m);

}  // namespace fruitpipe::image::testimg
