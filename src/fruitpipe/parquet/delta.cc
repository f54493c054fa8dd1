#include "fruitpipe/parquet/delta.h"

#include <algorithm>
#include <string>

#include "fruitpipe/common/error.h"

namespace fruitpipe::parquet {

namespace {

class DeltaReader {
 public:
  DeltaReader(std::string_view data, std::string_view what) : data_(data), what_(what) {}

  [[noreturn]] void Fail(const std::string& cause) const {
    throw CorruptionError(std::string(what_) + ": corrupt delta-encoded data at byte " + std::to_string(pos_) +
                          ": " + cause);
  }

  std::uint64_t Uleb() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= data_.size()) Fail("truncated");
      const auto b = static_cast<std::uint8_t>(data_[pos_++]);
      v |= static_cast<std::uint64_t>(b & 0x7F) << shift;
      if ((b & 0x80) == 0) return v;
    }
    Fail("varint longer than 10 bytes");
  }

  std::int64_t ZigZag() {
    const std::uint64_t v = Uleb();
    return static_cast<std::int64_t>(v >> 1) ^ -static_cast<std::int64_t>(v & 1);
  }

  std::uint8_t Byte() {
    if (pos_ >= data_.size()) Fail("truncated");
    return static_cast<std::uint8_t>(data_[pos_++]);
  }

  // `bytes` bytes starting here; checked to exist.
  const std::uint8_t* Take(std::uint64_t bytes) {
    if (bytes > data_.size() - pos_) Fail("miniblock overruns the data");
    const auto* p = reinterpret_cast<const std::uint8_t*>(data_.data()) + pos_;
    pos_ += static_cast<std::size_t>(bytes);
    return p;
  }

  std::size_t position() const { return pos_; }

 private:
  std::string_view data_;
  std::string_view what_;
  std::size_t pos_ = 0;
};

// Bit `bit` onwards, `width` (<= 64) bits, least significant first.
std::uint64_t ReadBits(const std::uint8_t* base, std::uint64_t bit, int width) {
  std::uint64_t v = 0;
  int got = 0;
  while (got < width) {
    const int off = static_cast<int>(bit & 7);
    const int take = std::min(8 - off, width - got);
    const std::uint64_t chunk = (static_cast<std::uint64_t>(base[bit >> 3]) >> off) & ((1u << take) - 1);
    v |= chunk << got;
    got += take;
    bit += static_cast<std::uint64_t>(take);
  }
  return v;
}

}  // namespace

template <typename T>
std::size_t DecodeDeltaBinaryPacked(std::string_view data, std::size_t n, std::vector<T>* out,
                                    std::string_view what) {
  using U = std::make_unsigned_t<T>;
  DeltaReader r(data, what);
  const std::uint64_t block_size = r.Uleb();
  const std::uint64_t miniblocks = r.Uleb();
  const std::uint64_t total = r.Uleb();
  const std::int64_t first = r.ZigZag();
  if (block_size == 0 || block_size % 128 != 0 || block_size > (1u << 20)) r.Fail("bad block size");
  if (miniblocks == 0 || block_size % miniblocks != 0 || (block_size / miniblocks) % 32 != 0) {
    r.Fail("bad miniblock count");
  }
  if (total != n) r.Fail("holds " + std::to_string(total) + " values where " + std::to_string(n) + " are expected");
  if (n == 0) return r.position();
  const std::uint64_t per_miniblock = block_size / miniblocks;
  out->reserve(out->size() + n);
  U value = static_cast<U>(first);
  out->push_back(static_cast<T>(value));
  std::size_t left = n - 1;
  std::vector<std::uint8_t> widths(static_cast<std::size_t>(miniblocks));
  while (left > 0) {
    const auto min_delta = static_cast<U>(r.ZigZag());
    for (auto& w : widths) w = r.Byte();
    for (std::uint64_t m = 0; m < miniblocks && left > 0; ++m) {
      const int width = widths[m];
      if (width > 8 * static_cast<int>(sizeof(T))) r.Fail("miniblock bit width " + std::to_string(width));
      // A miniblock is stored whole (padded) even when only part of it is needed.
      const std::uint8_t* bits = r.Take(per_miniblock * static_cast<std::uint64_t>(width) / 8);
      const std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(per_miniblock, left));
      for (std::size_t i = 0; i < k; ++i) {
        value = static_cast<U>(value + min_delta + static_cast<U>(ReadBits(bits, i * static_cast<std::uint64_t>(width), width)));
        out->push_back(static_cast<T>(value));
      }
      left -= k;
    }
  }
  return r.position();
}

template std::size_t DecodeDeltaBinaryPacked<std::int32_t>(std::string_view, std::size_t, std::vector<std::int32_t>*,
                                                           std::string_view);
template std::size_t DecodeDeltaBinaryPacked<std::int64_t>(std::string_view, std::size_t, std::vector<std::int64_t>*,
                                                           std::string_view);

std::size_t DecodeDeltaLengthByteArray(std::string_view data, std::size_t n, std::vector<std::string_view>* out,
                                       std::string_view what) {
  std::vector<std::int32_t> lengths;
  std::size_t pos = DecodeDeltaBinaryPacked(data, n, &lengths, what);
  out->reserve(out->size() + n);
  for (std::int32_t len : lengths) {
    if (len < 0 || static_cast<std::size_t>(len) > data.size() - pos) {
      throw CorruptionError(std::string(what) + ": delta-length byte array overruns the page");
    }
    out->push_back(data.substr(pos, static_cast<std::size_t>(len)));
    pos += static_cast<std::size_t>(len);
  }
  return pos;
}

std::size_t DecodeDeltaByteArray(std::string_view data, std::size_t n, std::vector<std::string>* out,
                                 std::string_view what, const std::function<void(std::uint64_t)>& charge) {
  std::vector<std::int32_t> prefixes;
  std::vector<std::string_view> suffixes;
  const std::size_t at = DecodeDeltaBinaryPacked(data, n, &prefixes, what);
  const std::size_t consumed = at + DecodeDeltaLengthByteArray(data.substr(at), n, &suffixes, what);
  std::uint64_t total = 0, prev = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (prefixes[i] < 0 || static_cast<std::uint64_t>(prefixes[i]) > prev) {
      throw CorruptionError(std::string(what) + ": delta byte array prefix longer than the previous value");
    }
    prev = static_cast<std::uint64_t>(prefixes[i]) + suffixes[i].size();
    total += prev;
  }
  charge(total);
  out->reserve(out->size() + n);  // keeps `last` valid while appending
  const std::string* last = nullptr;
  for (std::size_t i = 0; i < n; ++i) {
    std::string v = last ? last->substr(0, static_cast<std::size_t>(prefixes[i])) : std::string();
    v.append(suffixes[i]);
    out->push_back(std::move(v));
    last = &out->back();
  }
  return consumed;
}

}  // namespace fruitpipe::parquet
