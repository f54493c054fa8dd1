// Page compression codecs. Decompression is bounded by the size the page header declares:
// a page that does not decompress to exactly that many bytes is corrupt.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "fruitpipe/parquet/metadata.h"

namespace fruitpipe::parquet {

// Compresses and decompresses pages, keeping zstd's contexts between pages of a file
// (creating one per page costs more than compressing a small page).
class PageCodec {
 public:
  PageCodec() = default;
  ~PageCodec();
  PageCodec(const PageCodec&) = delete;
  PageCodec& operator=(const PageCodec&) = delete;

  // Replaces *out with `data` compressed by `codec` (uncompressed, snappy or zstd).
  void Compress(format::Codec codec, std::string_view data, std::string* out);

  // Replaces *out with `data` decompressed by `codec` (also gzip), which must yield exactly
  // `uncompressed_size` bytes. Throws CorruptionError naming `what` otherwise, and
  // InvalidArgumentError for codecs fruitpipe does not read (LZO, Brotli, LZ4).
  void Decompress(format::Codec codec, std::string_view data, std::size_t uncompressed_size,
                  std::string_view what, std::string* out);

 private:
  void* cctx_ = nullptr;  // ZSTD_CCtx, created on first use (zstd.h stays out of headers)
  void* dctx_ = nullptr;  // ZSTD_DCtx
};

// The codec's name as Parquet tools print it ("SNAPPY", "ZSTD", ...).
std::string CodecName(format::Codec codec);

}  // namespace fruitpipe::parquet
