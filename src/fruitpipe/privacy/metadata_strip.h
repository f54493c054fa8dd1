// Data minimisation for contributed photos: everything but the picture is removed before the
// photo is stored. The picture itself is copied bit-exact, never re-encoded.
//
// JPEG: the marker segments are walked (every length bounds-checked) and only what decoding
// needs is kept: frame, Huffman, arithmetic-coding, quantisation and restart-interval
// segments, the scans with their entropy-coded data byte for byte, the Adobe APP14 marker
// (colour transform of CMYK/YCCK files) and JFIF APP0 rewritten without its thumbnail.
// Dropped: APP1 (Exif incl. GPS and the embedded thumbnail, XMP), APP2 (ICC profiles, which
// can name the device, and MPF secondary images), APP13 (IPTC/Photoshop), every other APPn,
// COM, unknown markers, and any bytes after EOI.
// PNG: chunks are copied whole (their CRCs stay valid). Kept: the critical chunks and the
// colour/transparency chunks (tRNS gAMA cHRM sRGB sBIT bKGD pHYs cICP). Dropped: tEXt, zTXt,
// iTXt, eXIf, tIME, iCCP and every other ancillary chunk; unknown critical chunks are refused.
//
// Orientation is the one piece of Exif that changes the picture: when the photo declares a
// rotation, a minimal Exif block holding only the orientation tag is written back, so the
// stored photo decodes to the same pixels. Other formats are refused (see docs/gdpr.md).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace fruitpipe::privacy {

struct StrippedImage {
  std::string bytes;
  std::string format;     // "jpeg" or "png"
  std::string extension;  // "jpg" or "png"
  int orientation = 1;    // carried over in a minimal Exif block when not 1
  std::vector<std::string> removed;  // what was dropped, e.g. "APP1 Exif", "COM", "tEXt"
  std::size_t removed_bytes = 0;     // input size minus output size, or 0 if it grew
};

// Throws InvalidArgumentError with a one-line reason (no path: the caller adds it) for other
// formats and for malformed or truncated files.
StrippedImage StripMetadata(std::string_view bytes);

}  // namespace fruitpipe::privacy
