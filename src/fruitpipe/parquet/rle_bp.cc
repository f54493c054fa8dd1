#include "fruitpipe/parquet/rle_bp.h"

#include <algorithm>
#include <bit>

#include "fruitpipe/common/error.h"

namespace fruitpipe::parquet {

int BitWidth(std::uint32_t max_value) { return std::bit_width(max_value); }

namespace {

void AppendVarint(std::uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

// Length of the run of equal values starting at i, counting at most `cap`.
template <typename T>
std::size_t RunLength(const T* v, std::size_t i, std::size_t n, std::size_t cap) {
  std::size_t j = i + 1;
  const std::size_t end = std::min(n, i + cap);
  while (j < end && v[j] == v[i]) ++j;
  return j - i;
}

}  // namespace

template <typename T>
void RleBpEncode(const T* values, std::size_t n, int bit_width, std::string* out) {
  const int value_bytes = (bit_width + 7) / 8;
  std::size_t i = 0;
  while (i < n) {
    const std::size_t run = RunLength(values, i, n, n);
    if (run >= 8) {
      AppendVarint(static_cast<std::uint64_t>(run) << 1, out);
      const auto v = static_cast<std::uint32_t>(values[i]);
      for (int b = 0; b < value_bytes; ++b) out->push_back(static_cast<char>(v >> (8 * b)));
      i += run;
      continue;
    }
    // Bit-pack groups of 8 until a long repeat starts at a group boundary.
    const std::size_t start = i;
    std::size_t groups = 0;
    while (i < n && (groups == 0 || RunLength(values, i, n, 8) < 8)) {
      i += 8;
      ++groups;
    }
    const std::size_t end = std::min(i, n);
    i = end;
    AppendVarint((static_cast<std::uint64_t>(groups) << 1) | 1, out);
    std::uint64_t acc = 0;
    int bits = 0;
    for (std::size_t k = 0; k < groups * 8; ++k) {
      const std::uint64_t v = start + k < end ? static_cast<std::uint64_t>(values[start + k]) : 0;
      acc |= v << bits;
      bits += bit_width;
      while (bits >= 8) {
        out->push_back(static_cast<char>(acc & 0xFF));
        acc >>= 8;
        bits -= 8;
      }
    }
  }
}

template void RleBpEncode<std::uint8_t>(const std::uint8_t*, std::size_t, int, std::string*);
template void RleBpEncode<std::uint32_t>(const std::uint32_t*, std::size_t, int, std::string*);

RleBpDecoder::RleBpDecoder(std::string_view data, int bit_width, std::string_view what)
    : data_(data), bit_width_(bit_width), what_(what) {
  if (bit_width < 0 || bit_width > 32) Fail("bit width " + std::to_string(bit_width) + " out of range");
}

void RleBpDecoder::Fail(std::string_view cause) const {
  throw CorruptionError(std::string(what_) + ": corrupt RLE/bit-packed data at byte " +
                        std::to_string(pos_) + ": " + std::string(cause));
}

void RleBpDecoder::NextRun() {
  std::uint64_t header = 0;
  for (int shift = 0;; shift += 7) {
    if (pos_ >= data_.size()) Fail("truncated run header");
    if (shift > 56) Fail("run header too long");
    const auto b = static_cast<std::uint8_t>(data_[pos_++]);
    header |= static_cast<std::uint64_t>(b & 0x7F) << shift;
    if ((b & 0x80) == 0) break;
  }
  const std::uint64_t count = header >> 1;
  if (header & 1) {
    // Some writers cut the final group short; accept whatever whole values are present
    // and let Decode fail if more are asked for.
    const std::uint64_t bytes = std::min<std::uint64_t>(count * static_cast<std::uint64_t>(bit_width_),
                                                        data_.size() - pos_);
    bp_left_ = bit_width_ == 0 ? count * 8 : std::min<std::uint64_t>(count * 8, bytes * 8 / bit_width_);
    bp_bit_ = static_cast<std::uint64_t>(pos_) * 8;
    pos_ += bytes;
  } else {
    const int value_bytes = (bit_width_ + 7) / 8;
    if (data_.size() - pos_ < static_cast<std::size_t>(value_bytes)) Fail("truncated run value");
    std::uint32_t v = 0;
    for (int b = 0; b < value_bytes; ++b) {
      v |= static_cast<std::uint32_t>(static_cast<std::uint8_t>(data_[pos_++])) << (8 * b);
    }
    if (bit_width_ < 32 && (v >> bit_width_) != 0) Fail("run value wider than the bit width");
    rle_left_ = count;
    rle_value_ = v;
  }
}

template <typename T>
void RleBpDecoder::Decode(T* out, std::size_t n) {
  if (bit_width_ > static_cast<int>(8 * sizeof(T))) Fail("bit width too wide for the output");
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(data_.data());
  const std::uint64_t mask = (std::uint64_t{1} << bit_width_) - 1;
  while (n > 0) {
    if (rle_left_ > 0) {
      const std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(rle_left_, n));
      std::fill_n(out, k, static_cast<T>(rle_value_));
      out += k;
      n -= k;
      rle_left_ -= k;
    } else if (bp_left_ > 0) {
      const std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(bp_left_, n));
      for (std::size_t i = 0; i < k; ++i) {
        // A value spans at most 5 bytes (32 bits at a bit offset up to 7), all inside the
        // run's bytes, which NextRun checked are inside data_.
        const std::uint64_t bit = bp_bit_;
        std::size_t byte = bit >> 3;
        const int shift = bit & 7;
        std::uint64_t acc = 0;
        for (int got = 0; got < shift + bit_width_; got += 8) {
          acc |= static_cast<std::uint64_t>(bytes[byte++]) << got;
        }
        out[i] = static_cast<T>((acc >> shift) & mask);
        bp_bit_ += bit_width_;
      }
      out += k;
      n -= k;
      bp_left_ -= k;
    } else {
      NextRun();
    }
  }
}

template void RleBpDecoder::Decode<std::uint8_t>(std::uint8_t*, std::size_t);
template void RleBpDecoder::Decode<std::uint32_t>(std::uint32_t*, std::size_t);

}  // namespace fruitpipe::parquet
