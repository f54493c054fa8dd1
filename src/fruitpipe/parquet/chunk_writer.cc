#include "fruitpipe/parquet/chunk_writer.h"

#include <cstring>
#include <limits>

#include "fruitpipe/common/error.h"
#include "fruitpipe/parquet/compression.h"
#include "fruitpipe/parquet/rle_bp.h"

namespace fruitpipe::parquet {

using format::Encoding;

ChunkWriter::ChunkWriter(std::string* file, PageCodec* codec, format::Codec codec_id, format::Type type,
                         std::vector<std::string> path, int max_def, int max_rep)
    : file_(file), codec_(codec), codec_id_(codec_id) {
  meta_.type = type;
  meta_.encodings.push_back(Encoding::kPlain);
  if (max_def > 0 || max_rep > 0) meta_.encodings.push_back(Encoding::kRle);
  meta_.path_in_schema = std::move(path);
  meta_.codec = codec_id;
}

std::string* ChunkWriter::BeginPage() {
  body_.clear();
  return &body_;
}

void ChunkWriter::AppendLevels(const std::uint8_t* levels, std::size_t n, int max_level) {
  const std::size_t at = body_.size();
  body_.append(4, '\0');
  RleBpEncode(levels, n, BitWidth(static_cast<std::uint32_t>(max_level)), &body_);
  const auto len = static_cast<std::uint32_t>(body_.size() - at - 4);
  std::memcpy(body_.data() + at, &len, 4);  // little-endian host (checked in thrift_compact)
}

void ChunkWriter::EndPage(std::size_t num_values) {
  // Page sizes are i32 in the page header.
  constexpr std::size_t kMax = std::numeric_limits<std::int32_t>::max();
  if (codec_id_ != format::Codec::kUncompressed) codec_->Compress(codec_id_, body_, &compressed_);
  const std::string& payload = codec_id_ == format::Codec::kUncompressed ? body_ : compressed_;
  if (body_.size() > kMax || payload.size() > kMax || num_values > kMax) {
    throw InvalidArgumentError("parquet: a page of column '" + meta_.path_in_schema.front() +
                               "' exceeds 2 GiB; lower page_values");
  }
  format::PageHeader h;
  h.type = format::PageType::kDataPage;
  h.uncompressed_page_size = static_cast<std::int32_t>(body_.size());
  h.compressed_page_size = static_cast<std::int32_t>(payload.size());
  format::DataPageHeader d;
  d.num_values = static_cast<std::int32_t>(num_values);
  d.encoding = Encoding::kPlain;
  d.definition_level_encoding = Encoding::kRle;
  d.repetition_level_encoding = Encoding::kRle;
  h.data_page_header = d;
  header_.clear();
  format::AppendPageHeader(h, &header_);

  if (first_page_offset_ < 0) first_page_offset_ = static_cast<std::int64_t>(file_->size());
  file_->append(header_);
  file_->append(payload);
  meta_.num_values += static_cast<std::int64_t>(num_values);
  meta_.total_uncompressed_size += static_cast<std::int64_t>(header_.size() + body_.size());
  meta_.total_compressed_size += static_cast<std::int64_t>(header_.size() + payload.size());
}

format::ColumnChunk ChunkWriter::Finish(std::optional<format::Statistics> statistics) {
  meta_.data_page_offset = first_page_offset_;
  meta_.statistics = std::move(statistics);
  format::ColumnChunk chunk;
  chunk.file_offset = 0;  // no ColumnMetaData outside the footer (the spec's advice)
  chunk.meta_data = std::move(meta_);
  return chunk;
}

}  // namespace fruitpipe::parquet
