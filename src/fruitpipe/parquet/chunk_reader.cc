#include "fruitpipe/parquet/chunk_reader.h"

#include <algorithm>
#include <cstring>

#include "fruitpipe/common/error.h"
#include "fruitpipe/parquet/compression.h"
#include "fruitpipe/parquet/delta.h"
#include "fruitpipe/parquet/rle_bp.h"

namespace fruitpipe::parquet {

using format::Encoding;
using format::PageType;

void DecodeBudget::Charge(std::uint64_t bytes) {
  if (bytes > left_) {
    throw CorruptionError(std::string(what_) +
                          ": decoding would need more memory than a file of this size can justify "
                          "(a decompression bomb or corrupt page sizes)");
  }
  left_ -= bytes;
}

namespace {

template <typename T>
constexpr format::Type PhysicalTypeOf() {
  if constexpr (std::is_same_v<T, std::int32_t>) return format::Type::kInt32;
  if constexpr (std::is_same_v<T, std::int64_t>) return format::Type::kInt64;
  if constexpr (std::is_same_v<T, float>) return format::Type::kFloat;
  if constexpr (std::is_same_v<T, double>) return format::Type::kDouble;
  if constexpr (std::is_same_v<T, std::string>) return format::Type::kByteArray;
}

// Memory one decoded value costs beyond the page bytes (std::string: its object).
template <typename T>
constexpr std::uint64_t kValueCost = sizeof(T);

std::uint32_t LoadLe32(const char* p) {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

template <typename T>
class ChunkReader {
 public:
  ChunkReader(std::string_view pages, const format::ColumnMetaData& meta, const LeafColumn& leaf,
              DecodeContext* ctx, const std::string& what, ChunkLevels* levels, std::vector<T>* values)
      : pages_(pages), meta_(meta), leaf_(leaf), ctx_(ctx), what_(what), levels_(levels), values_(values) {}

  void Read() {
    if (meta_.type != PhysicalTypeOf<T>()) Fail("column chunk type does not match the schema");
    if (meta_.num_values < 0) Fail("negative value count");
    if (meta_.num_values == 0) return;  // empty row groups may point anywhere
    std::int64_t start = meta_.data_page_offset;
    // Some writers set dictionary_page_offset to 0 when there is none; only an offset
    // before the first data page can be a dictionary.
    if (meta_.dictionary_page_offset && *meta_.dictionary_page_offset >= 4 &&
        *meta_.dictionary_page_offset < start) {
      start = *meta_.dictionary_page_offset;
    }
    const std::int64_t size = meta_.total_compressed_size;
    if (start < 4 || size < 0 || static_cast<std::uint64_t>(start) > pages_.size() ||
        static_cast<std::uint64_t>(size) > pages_.size() - static_cast<std::uint64_t>(start)) {
      Fail("column chunk [" + std::to_string(start) + ", +" + std::to_string(size) + ") lies outside the file");
    }
    std::string_view chunk = pages_.substr(static_cast<std::size_t>(start), static_cast<std::size_t>(size));
    if constexpr (!std::is_same_v<T, std::string>) {
      // Growing a multi-megabyte vector page by page costs more than decoding it. Reserve
      // what the chunk's bytes can back (never more, whatever its header claims).
      const std::size_t want = values_->size() +
                               std::min(static_cast<std::size_t>(meta_.num_values), chunk.size() / sizeof(T));
      if (want > values_->capacity()) values_->reserve(std::max(want, 2 * values_->capacity()));
    }

    std::size_t pos = 0;
    std::int64_t seen = 0;
    bool data_pages = false;
    while (seen < meta_.num_values) {
      if (pos >= chunk.size()) {
        Fail("column chunk ends after " + std::to_string(seen) + " of " + std::to_string(meta_.num_values) + " values");
      }
      std::size_t header_size = 0;
      const format::PageHeader h = format::DecodePageHeader(chunk.substr(pos), what_, &header_size);
      pos += header_size;
      if (h.compressed_page_size < 0 || h.uncompressed_page_size < 0) Fail("negative page size");
      if (static_cast<std::size_t>(h.compressed_page_size) > chunk.size() - pos) Fail("page overruns its column chunk");
      const std::string_view body = chunk.substr(pos, static_cast<std::size_t>(h.compressed_page_size));
      pos += body.size();
      switch (h.type) {
        case PageType::kDictionaryPage:
          if (data_pages || has_dictionary_) Fail("dictionary page after data pages");
          ReadDictionaryPage(h, body);
          break;
        case PageType::kDataPage:
          data_pages = true;
          seen += ReadDataPageV1(h, body);
          break;
        case PageType::kDataPageV2:
          data_pages = true;
          seen += ReadDataPageV2(h, body);
          break;
        default:
          break;  // index pages and unknown page types carry no values
      }
    }
    if (seen != meta_.num_values) Fail("pages hold more values than the column chunk declares");
  }

 private:
  [[noreturn]] void Fail(const std::string& cause) const { throw CorruptionError(what_ + ": " + cause); }
  [[noreturn]] void Unsupported(const std::string& cause) const {
    throw InvalidArgumentError(what_ + ": " + cause + " is not supported");
  }

  std::string_view Decompress(std::string_view data, std::int64_t uncompressed_size, std::string* buf) {
    if (uncompressed_size < 0) Fail("negative page size");
    if (meta_.codec == format::Codec::kUncompressed) {
      if (static_cast<std::uint64_t>(uncompressed_size) != data.size()) Fail("page size does not match its header");
      return data;  // no copy: the page is read in place
    }
    ctx_->codec.Decompress(meta_.codec, data, static_cast<std::size_t>(uncompressed_size), what_, buf);
    return *buf;
  }

  void ReadDictionaryPage(const format::PageHeader& h, std::string_view body) {
    if (!h.dictionary_page_header) Fail("dictionary page without its header");
    const auto& d = *h.dictionary_page_header;
    if (d.encoding != Encoding::kPlain && d.encoding != Encoding::kPlainDictionary) {
      Unsupported("dictionary encoding " + std::to_string(static_cast<int>(d.encoding)));
    }
    if (d.num_values < 0) Fail("negative dictionary size");
    ctx_->budget.Charge(static_cast<std::uint64_t>(h.uncompressed_page_size) +
                    static_cast<std::uint64_t>(d.num_values) * kValueCost<T>);
    const std::string_view data = Decompress(body, h.uncompressed_page_size, &page_buf_);
    dictionary_.clear();
    DecodePlain(data, static_cast<std::size_t>(d.num_values), &dictionary_);
    has_dictionary_ = true;
  }

  void ChargePage(const format::PageHeader& h, std::int32_t num_values) {
    if (num_values < 0) Fail("negative value count in a page");
    ctx_->budget.Charge(static_cast<std::uint64_t>(h.uncompressed_page_size) +
                    static_cast<std::uint64_t>(num_values) * (2 + kValueCost<T>));
  }

  std::int64_t ReadDataPageV1(const format::PageHeader& h, std::string_view body) {
    if (!h.data_page_header) Fail("data page without its header");
    const auto& d = *h.data_page_header;
    ChargePage(h, d.num_values);
    std::string_view data = Decompress(body, h.uncompressed_page_size, &page_buf_);
    const auto n = static_cast<std::size_t>(d.num_values);
    if (leaf_.max_rep > 0) {
      CheckLevelEncoding(d.repetition_level_encoding);
      data = DecodeLevels(data, n, leaf_.max_rep, true, &levels_->reps);
    }
    if (leaf_.max_def > 0) {
      CheckLevelEncoding(d.definition_level_encoding);
      data = DecodeLevels(data, n, leaf_.max_def, true, &levels_->defs);
    }
    DecodeValues(d.encoding, data, n);
    return d.num_values;
  }

  std::int64_t ReadDataPageV2(const format::PageHeader& h, std::string_view body) {
    if (!h.data_page_header_v2) Fail("data page v2 without its header");
    const auto& d = *h.data_page_header_v2;
    ChargePage(h, d.num_values);
    const std::int64_t rep_len = d.repetition_levels_byte_length;
    const std::int64_t def_len = d.definition_levels_byte_length;
    if (rep_len < 0 || def_len < 0 || rep_len + def_len > static_cast<std::int64_t>(body.size()) ||
        rep_len + def_len > h.uncompressed_page_size) {
      Fail("data page v2 level lengths exceed the page");
    }
    const auto n = static_cast<std::size_t>(d.num_values);
    // V2 levels are never compressed and carry no length prefix.
    if (leaf_.max_rep > 0) {
      DecodeLevels(body.substr(0, rep_len), n, leaf_.max_rep, false, &levels_->reps);
    } else if (rep_len != 0) {
      Fail("repetition levels in a non-repeated column");
    }
    if (leaf_.max_def > 0) {
      DecodeLevels(body.substr(rep_len, def_len), n, leaf_.max_def, false, &levels_->defs);
    } else if (def_len != 0) {
      Fail("definition levels in a required column");
    }
    std::string_view values = body.substr(rep_len + def_len);
    const std::int64_t values_size = h.uncompressed_page_size - rep_len - def_len;
    if (d.is_compressed && meta_.codec != format::Codec::kUncompressed) {
      values = Decompress(values, values_size, &page_buf_);
    } else if (static_cast<std::int64_t>(values.size()) != values_size) {
      Fail("data page v2 size does not match its header");
    }
    DecodeValues(d.encoding, values, n);
    return d.num_values;
  }

  void CheckLevelEncoding(Encoding e) const {
    if (e != Encoding::kRle) Unsupported("level encoding " + std::to_string(static_cast<int>(e)));
  }

  // Decodes n levels (V1: after a 4-byte length) and returns what follows them.
  std::string_view DecodeLevels(std::string_view data, std::size_t n, int max_level, bool length_prefix,
                                std::vector<std::uint8_t>* out) {
    std::string_view encoded = data;
    std::string_view rest;
    if (length_prefix) {
      if (data.size() < 4) Fail("truncated level length");
      const std::uint32_t len = LoadLe32(data.data());
      if (len > data.size() - 4) Fail("level data overruns the page");
      encoded = data.substr(4, len);
      rest = data.substr(4 + len);
    }
    const std::size_t at = out->size();
    out->resize(at + n);
    const int bit_width = BitWidth(static_cast<std::uint32_t>(max_level));
    RleBpDecoder dec(encoded, bit_width, what_);
    dec.Decode(out->data() + at, n);
    if ((1 << bit_width) - 1 == max_level) return rest;  // no wider value fits in bit_width bits
    const auto max = static_cast<std::uint8_t>(max_level);
    for (std::size_t i = at; i < at + n; ++i) {
      if ((*out)[i] > max) Fail("level " + std::to_string((*out)[i]) + " above the maximum " + std::to_string(max_level));
    }
    return rest;
  }

  void DecodeValues(Encoding encoding, std::string_view data, std::size_t num_levels) {
    std::size_t present = num_levels;
    if (leaf_.max_def > 0) {
      const auto* defs = levels_->defs.data() + levels_->defs.size() - num_levels;
      const auto max = static_cast<std::uint8_t>(leaf_.max_def);
      present = static_cast<std::size_t>(std::count(defs, defs + num_levels, max));
    }
    levels_->entries += num_levels;
    switch (encoding) {
      case Encoding::kPlain:
        DecodePlain(data, present, values_);
        return;
      case Encoding::kPlainDictionary:
      case Encoding::kRleDictionary:
        DecodeDictionary(data, present);
        return;
      case Encoding::kByteStreamSplit:
        if constexpr (!std::is_same_v<T, std::string>) {
          DecodeByteStreamSplit(data, present);
          return;
        }
        break;
      case Encoding::kDeltaBinaryPacked:
        if constexpr (std::is_same_v<T, std::int32_t> || std::is_same_v<T, std::int64_t>) {
          DecodeDeltaBinaryPacked(data, present, values_, what_);
          return;
        }
        break;
      case Encoding::kDeltaLengthByteArray:
        if constexpr (std::is_same_v<T, std::string>) {
          views_.clear();
          DecodeDeltaLengthByteArray(data, present, &views_, what_);
          values_->insert(values_->end(), views_.begin(), views_.end());
          return;
        }
        break;
      case Encoding::kDeltaByteArray:
        if constexpr (std::is_same_v<T, std::string>) {
          DecodeDeltaByteArray(data, present, values_, what_,
                               [this](std::uint64_t bytes) { ctx_->budget.Charge(bytes); });
          return;
        }
        break;
      default:
        break;
    }
    Unsupported("value encoding " + std::to_string(static_cast<int>(encoding)));
  }

  void DecodePlain(std::string_view data, std::size_t n, std::vector<T>* out) {
    if constexpr (std::is_same_v<T, std::string>) {
      std::size_t pos = 0;
      for (std::size_t i = 0; i < n; ++i) {
        if (data.size() - pos < 4) Fail("truncated byte array length");
        const std::uint32_t len = LoadLe32(data.data() + pos);
        pos += 4;
        if (len > data.size() - pos) Fail("byte array overruns the page");
        out->emplace_back(data.substr(pos, len));
        pos += len;
      }
    } else {
      if (n > data.size() / sizeof(T)) Fail("page holds fewer values than its levels say");
      const std::size_t at = out->size();
      out->resize(at + n);
      std::memcpy(out->data() + at, data.data(), n * sizeof(T));
    }
  }

  void DecodeDictionary(std::string_view data, std::size_t n) {
    if (!has_dictionary_) Fail("dictionary-encoded page without a dictionary");
    if (n == 0) return;
    if (data.empty()) Fail("missing dictionary index bit width");
    const int bit_width = static_cast<std::uint8_t>(data[0]);
    if (bit_width > 32) Fail("dictionary index bit width " + std::to_string(bit_width));
    indices_.resize(n);
    RleBpDecoder dec(data.substr(1), bit_width, what_);
    dec.Decode(indices_.data(), n);
    for (std::uint32_t i : indices_) {
      if (i >= dictionary_.size()) Fail("dictionary index " + std::to_string(i) + " out of range");
    }
    if constexpr (std::is_same_v<T, std::string>) {
      // A short page of indices can repeat a long dictionary entry many times.
      std::uint64_t bytes = 0;
      for (std::uint32_t i : indices_) bytes += dictionary_[i].size();
      ctx_->budget.Charge(bytes);
    }
    values_->reserve(values_->size() + n);
    for (std::uint32_t i : indices_) values_->push_back(dictionary_[i]);
  }

  void DecodeByteStreamSplit(std::string_view data, std::size_t n) {
    // K streams (one per byte of the type), each n bytes long.
    if (data.size() / sizeof(T) < n) Fail("byte stream split page holds fewer values than its levels say");
    const std::size_t at = values_->size();
    values_->resize(at + n);
    auto* out = reinterpret_cast<unsigned char*>(values_->data() + at);
    for (std::size_t b = 0; b < sizeof(T); ++b) {
      const char* stream = data.data() + b * n;
      for (std::size_t i = 0; i < n; ++i) out[i * sizeof(T) + b] = static_cast<unsigned char>(stream[i]);
    }
  }

  std::string_view pages_;
  const format::ColumnMetaData& meta_;
  const LeafColumn& leaf_;
  DecodeContext* ctx_;
  const std::string& what_;
  ChunkLevels* levels_;
  std::vector<T>* values_;
  bool has_dictionary_ = false;
  std::vector<T> dictionary_;
  std::vector<std::uint32_t> indices_;
  std::vector<std::string_view> views_;
  std::string page_buf_;
};

}  // namespace

template <typename T>
void ReadColumnChunk(std::string_view pages, const format::ColumnMetaData& meta, const LeafColumn& leaf,
                     DecodeContext* ctx, const std::string& what, ChunkLevels* levels, std::vector<T>* values) {
  ChunkReader<T>(pages, meta, leaf, ctx, what, levels, values).Read();
}

template void ReadColumnChunk<std::int32_t>(std::string_view, const format::ColumnMetaData&, const LeafColumn&,
                                            DecodeContext*, const std::string&, ChunkLevels*, std::vector<std::int32_t>*);
template void ReadColumnChunk<std::int64_t>(std::string_view, const format::ColumnMetaData&, const LeafColumn&,
                                            DecodeContext*, const std::string&, ChunkLevels*, std::vector<std::int64_t>*);
template void ReadColumnChunk<float>(std::string_view, const format::ColumnMetaData&, const LeafColumn&,
                                     DecodeContext*, const std::string&, ChunkLevels*, std::vector<float>*);
template void ReadColumnChunk<double>(std::string_view, const format::ColumnMetaData&, const LeafColumn&,
                                      DecodeContext*, const std::string&, ChunkLevels*, std::vector<double>*);
template void ReadColumnChunk<std::string>(std::string_view, const format::ColumnMetaData&, const LeafColumn&,
                                           DecodeContext*, const std::string&, ChunkLevels*, std::vector<std::string>*);

}  // namespace fruitpipe::parquet
