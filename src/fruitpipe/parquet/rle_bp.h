// The RLE / bit-packing hybrid of the Parquet spec (Encodings.md), used for definition and
// repetition levels and for dictionary indices:
//
//   encoded-data := run*
//   run          := rle-run | bit-packed-run
//   rle-run      := varint(count << 1) value (ceil(bit_width / 8) bytes, little-endian)
//   bit-packed-run := varint(groups << 1 | 1) groups * 8 values, bit_width bits each, LSB first
//
// The decoder treats its input as hostile: it never reads past the data it was given and
// throws CorruptionError (naming `what`) when the runs do not hold the values asked for.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace fruitpipe::parquet {

// Bits needed for values 0..max_value (0 for max_value == 0).
int BitWidth(std::uint32_t max_value);

// Appends the hybrid encoding of values[0..n) (each < 2^bit_width, bit_width <= 32).
// Repeats of 8 or more become RLE runs; the rest is bit-packed in groups of 8, the last
// group padded with zeros (readers stop at the value count they know).
template <typename T>
void RleBpEncode(const T* values, std::size_t n, int bit_width, std::string* out);

class RleBpDecoder {
 public:
  RleBpDecoder(std::string_view data, int bit_width, std::string_view what);

  // Decodes the next n values into out (T must hold bit_width bits). Throws CorruptionError
  // if the data ends first.
  template <typename T>
  void Decode(T* out, std::size_t n);

  // Bytes of the input consumed by the runs started so far.
  std::size_t position() const { return pos_; }

 private:
  [[noreturn]] void Fail(std::string_view cause) const;
  void NextRun();

  std::string_view data_;
  int bit_width_;
  std::string_view what_;
  std::size_t pos_ = 0;
  // Current run: either `rle_left` repeats of `rle_value`, or `bp_left` bit-packed values
  // starting at bit `bp_bit` of data_.
  std::uint64_t rle_left_ = 0;
  std::uint32_t rle_value_ = 0;
  std::uint64_t bp_left_ = 0;
  std::uint64_t bp_bit_ = 0;
};

}  // namespace fruitpipe::parquet
