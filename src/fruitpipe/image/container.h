// Bounds-checked readers of the two container structures fruitpipe looks inside: the marker
// segments of a JPEG file and the chunks of a PNG file. They hand out views into the caller's
// bytes (nothing is copied or decoded) and never trust a length field. What a segment or chunk
// means, and which ones are acceptable where, is the caller's business: the header sniffing of
// fp_image (formats.cc) and the metadata stripping of fp_privacy both walk files with these.
//
// Errors are values: a reader stops at the first malformed or truncated structure and reports
// what and where in error(); message is one line, ready for a rejection reason.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace fruitpipe::image::container {

// ---- JPEG ---------------------------------------------------------------------------------

// SOFn (frame header) markers: C0..CF except DHT (C4), JPG (C8) and DAC (CC).
bool IsJpegSof(std::uint8_t marker);

// Markers without a length field: TEM (01), RST0..7 (D0..D7), SOI (D8), EOI (D9), and 00, which
// is a stuffed byte inside entropy-coded data and no marker at all outside it (the reader
// reports it so the caller can refuse it). Everything else is followed by a 2-byte length.
bool IsJpegStandalone(std::uint8_t marker);

struct JpegMarker {
  std::uint8_t code = 0;
  std::size_t offset = 0;  // of the 0xFF right before `code` (the last one, after fill bytes)
};

struct JpegSegment {
  std::uint8_t marker = 0;
  std::size_t offset = 0;       // of the 0xFF, as in JpegMarker
  std::string_view bytes;       // FF, marker and, for segments with a length: length and payload
  std::string_view payload;     // after the length field; empty for standalone markers
  std::string_view scan_data;   // SOS only, from Next(): the entropy-coded data after the scan
                                // header up to the next marker (stuffed bytes, RSTn included)
};

struct JpegError {
  enum class Kind {
    kNone,
    kNoMarker,        // the data ends where a marker should be (truncated: no EOI)
    kMarkerExpected,  // a byte other than 0xFF where a marker should be
    kLengthMissing,   // the data ends inside a segment's length field
    kBadLength,       // a segment length below 2
    kPastEnd,         // a segment longer than the data left
    kScanPastEnd,     // entropy-coded data running to the end of the file
  };
  Kind kind = Kind::kNone;
  std::size_t offset = 0;  // where the marker was expected, or of the segment's length field
  std::size_t length = 0;  // kBadLength, kPastEnd: the declared segment length
  std::string message;     // e.g. "truncated JPEG: segment length missing at offset 123"

  bool truncated() const {
    return kind == Kind::kNoMarker || kind == Kind::kLengthMissing || kind == Kind::kPastEnd ||
           kind == Kind::kScanPastEnd;
  }
};

// Walks marker segments from `start` (2: just after SOI; the caller checks the signature). In
// steps, so a caller can judge a marker before its length is read:
//   NextMarker  skips fill bytes (FF FF ...) and reads the marker code;
//   ReadSegment reads the length and payload of that marker (nothing for standalone ones);
//   ReadScanData, after an SOS segment, skips the entropy-coded data up to the next marker.
// Next() does all three (ReadSegment, too, reads the marker when NextMarker has not). Each
// returns false on an error, which sticks, and after EOI has been read (then ok() stays true).
class JpegReader {
 public:
  explicit JpegReader(std::string_view bytes, std::size_t start = 2) : b_(bytes), pos_(start) {}

  bool NextMarker(JpegMarker* marker);
  bool ReadSegment(JpegSegment* segment);
  bool ReadScanData(std::string_view* data);
  bool Next(JpegSegment* segment);

  std::size_t position() const { return pos_; }  // first byte not yet read
  const JpegError& error() const { return error_; }
  bool ok() const { return error_.kind == JpegError::Kind::kNone; }

 private:
  bool Fail(JpegError::Kind kind, std::size_t offset, std::size_t length = 0);

  std::string_view b_;
  std::size_t pos_;
  JpegMarker marker_;
  bool have_marker_ = false;  // NextMarker succeeded and ReadSegment has not run yet
  bool done_ = false;         // EOI read
  JpegError error_;
};

// ---- PNG ----------------------------------------------------------------------------------

inline constexpr std::string_view kPngSignature{"\x89PNG\r\n\x1a\n", 8};

// The CRC-32 a PNG chunk stores: over its type and data.
std::uint32_t PngCrc(std::string_view type, std::string_view data);

struct PngChunk {
  std::size_t offset = 0;     // of the length field
  std::string_view type;      // 4 bytes, not validated: see TypeIsLetters
  std::string_view data;
  std::string_view bytes;     // the whole chunk: length, type, data and CRC
  std::uint32_t crc = 0;      // as stored

  bool TypeIsLetters() const;  // four ASCII letters, as the PNG spec requires
  bool Critical() const { return !type.empty() && type[0] >= 'A' && type[0] <= 'Z'; }
  bool CrcMatches() const { return PngCrc(type, data) == crc; }
};

struct PngError {
  enum class Kind {
    kNone,
    kNoChunk,    // fewer than 12 bytes left where a chunk should start (truncated: no IEND)
    kBadLength,  // a length above 2^31-1
    kPastEnd,    // a chunk longer than the data left
    kBadCrc,     // only with verify_crc
  };
  Kind kind = Kind::kNone;
  std::size_t offset = 0;    // of the chunk's length field
  std::uint64_t length = 0;  // kBadLength, kPastEnd: the declared data length
  std::string message;       // e.g. "truncated PNG: no IEND chunk"

  bool truncated() const { return kind == Kind::kNoChunk || kind == Kind::kPastEnd; }
};

// Walks chunks from `start` (8: just after the signature; the caller checks it). Next() returns
// false on an error, which sticks, and once IEND has been read (then ok() stays true; bytes
// after IEND are the caller's to judge, from position()). CRCs are checked only with
// `verify_crc`; else PngChunk::CrcMatches is there to ask.
class PngReader {
 public:
  explicit PngReader(std::string_view bytes, std::size_t start = 8, bool verify_crc = false)
      : b_(bytes), pos_(start), verify_crc_(verify_crc) {}

  bool Next(PngChunk* chunk);

  std::size_t position() const { return pos_; }  // just after the last chunk read
  const PngError& error() const { return error_; }
  bool ok() const { return error_.kind == PngError::Kind::kNone; }

 private:
  bool Fail(PngError::Kind kind, std::size_t offset, std::uint64_t length, std::string message);

  std::string_view b_;
  std::size_t pos_;
  bool verify_crc_;
  bool done_ = false;  // IEND read
  PngError error_;
};

}  // namespace fruitpipe::image::container
