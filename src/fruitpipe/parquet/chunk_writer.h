// Writes one column chunk as DataPage V1 pages appended to the file being built:
//   page body := [repetition levels] [definition levels] values
// where each level section is a 4-byte little-endian length followed by the RLE/bit-packed
// hybrid (present only when the column's max level is above 0) and values are PLAIN.
// The body is compressed as a whole with the file's codec.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fruitpipe/parquet/compression.h"
#include "fruitpipe/parquet/metadata.h"

namespace fruitpipe::parquet {

class ChunkWriter {
 public:
  ChunkWriter(std::string* file, PageCodec* codec, format::Codec codec_id, format::Type type,
              std::vector<std::string> path, int max_def, int max_rep);

  // Starts a page: returns the (empty) body buffer. Append levels with AppendLevels, in
  // order repetition then definition, then the PLAIN values, then call EndPage.
  std::string* BeginPage();
  // Appends a level section: 4-byte length, then the hybrid encoding of levels[0..n).
  void AppendLevels(const std::uint8_t* levels, std::size_t n, int max_level);
  // Compresses the body and appends header and body to the file. `num_values` counts level
  // entries (values, nulls and empty lists).
  void EndPage(std::size_t num_values);

  // The chunk's metadata, once all pages are written.
  format::ColumnChunk Finish(std::optional<format::Statistics> statistics);

 private:
  std::string* file_;
  PageCodec* codec_;
  format::Codec codec_id_;
  format::ColumnMetaData meta_;
  std::int64_t first_page_offset_ = -1;
  std::string body_;
  std::string compressed_;
  std::string header_;
};

}  // namespace fruitpipe::parquet
