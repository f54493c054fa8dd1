// The RLE / bit-packing hybrid: spec examples byte for byte, round trips over bit widths and
// value patterns, and the decoder's behaviour on short or hostile input.
#include "fruitpipe/parquet/rle_bp.h"

#include <gtest/gtest.h>

#include <random>

#include "fruitpipe/common/error.h"

namespace fruitpipe::parquet {
namespace {

std::string Bytes(std::initializer_list<int> b) {
  std::string s;
  for (int x : b) s.push_back(static_cast<char>(x));
  return s;
}

template <typename T>
std::vector<T> Decode(std::string_view data, int bit_width, std::size_t n) {
  std::vector<T> out(n);
  RleBpDecoder dec(data, bit_width, "test");
  dec.Decode(out.data(), n);
  return out;
}

TEST(RleBpTest, BitWidth) {
  EXPECT_EQ(BitWidth(0), 0);
  EXPECT_EQ(BitWidth(1), 1);
  EXPECT_EQ(BitWidth(3), 2);
  EXPECT_EQ(BitWidth(4), 3);
  EXPECT_EQ(BitWidth(0xFFFFFFFFu), 32);
}

TEST(RleBpTest, SpecBitPackingExample) {
  // Encodings.md: 0..7 with bit width 3 pack into 10001000 11000110 11111010.
  const std::vector<std::uint8_t> v = {0, 1, 2, 3, 4, 5, 6, 7};
  std::string out;
  RleBpEncode(v.data(), v.size(), 3, &out);
  EXPECT_EQ(out, Bytes({0x03, 0x88, 0xC6, 0xFA}));
  EXPECT_EQ(Decode<std::uint8_t>(out, 3, 8), v);
}

TEST(RleBpTest, RleRunBytes) {
  const std::vector<std::uint32_t> v(100, 5);
  std::string out;
  RleBpEncode(v.data(), v.size(), 3, &out);
  EXPECT_EQ(out, Bytes({0xC8, 0x01, 0x05}));  // varint(100 << 1), one value byte
  const std::vector<std::uint32_t> wide(9, 0x123456);
  out.clear();
  RleBpEncode(wide.data(), wide.size(), 21, &out);
  EXPECT_EQ(out, Bytes({0x12, 0x56, 0x34, 0x12}));  // value in ceil(21/8) = 3 bytes
}

TEST(RleBpTest, RepetitionLevelsOfAListRow) {
  // One row of a list column: rep 0 then 1279 ones. The leading group is bit-packed and the
  // rest is one run, so a 1280-float row costs a handful of bytes of levels.
  std::vector<std::uint8_t> v(1280, 1);
  v[0] = 0;
  std::string out;
  RleBpEncode(v.data(), v.size(), 1, &out);
  EXPECT_LE(out.size(), 5u);
  EXPECT_EQ(Decode<std::uint8_t>(out, 1, v.size()), v);
}

template <typename T>
void RoundTrip(const std::vector<T>& v, int bit_width) {
  std::string out;
  RleBpEncode(v.data(), v.size(), bit_width, &out);
  ASSERT_EQ(Decode<T>(out, bit_width, v.size()), v) << "bit width " << bit_width << ", " << v.size() << " values";
  // Decoding in pieces gives the same values.
  std::vector<T> pieces(v.size());
  RleBpDecoder dec(out, bit_width, "test");
  std::size_t done = 0;
  for (std::size_t step = 1; done < v.size(); step = step * 2 + 1) {
    const std::size_t k = std::min(step, v.size() - done);
    dec.Decode(pieces.data() + done, k);
    done += k;
  }
  ASSERT_EQ(pieces, v);
}

TEST(RleBpTest, RoundTripsEveryBitWidthAndPattern) {
  std::mt19937 rng(11);
  for (int bw = 0; bw <= 32; ++bw) {
    const std::uint64_t limit = bw == 32 ? 0xFFFFFFFFull : (1ull << bw) - 1;
    std::uniform_int_distribution<std::uint64_t> val(0, limit);
    for (std::size_t n : {0, 1, 7, 8, 9, 15, 16, 17, 100, 1001}) {
      std::vector<std::uint32_t> random(n), runs(n), alternating(n), maxed(n, static_cast<std::uint32_t>(limit));
      std::uint32_t cur = 0;
      for (std::size_t i = 0; i < n; ++i) {
        random[i] = static_cast<std::uint32_t>(val(rng));
        if (rng() % 13 == 0) cur = static_cast<std::uint32_t>(val(rng));
        runs[i] = cur;
        alternating[i] = static_cast<std::uint32_t>(i % 2 ? limit : 0);
      }
      RoundTrip(random, bw);
      RoundTrip(runs, bw);
      RoundTrip(alternating, bw);
      RoundTrip(maxed, bw);
      if (bw <= 8) {
        RoundTrip(std::vector<std::uint8_t>(random.begin(), random.end()), bw);
        RoundTrip(std::vector<std::uint8_t>(runs.begin(), runs.end()), bw);
      }
    }
  }
}

TEST(RleBpTest, RunsStraddlingGroupBoundaries) {
  // Runs of 7, 8 and 9 starting at every offset within a group.
  for (std::size_t offset = 0; offset < 8; ++offset) {
    for (std::size_t len : {7, 8, 9, 20}) {
      std::vector<std::uint8_t> v(offset, 2);
      for (std::size_t i = 0; i < offset; ++i) v[i] = static_cast<std::uint8_t>(i % 3);
      v.insert(v.end(), len, 3);
      v.push_back(1);
      RoundTrip(v, 2);
    }
  }
}

TEST(RleBpTest, DecoderRejectsShortAndHostileInput) {
  // Asking for more values than the runs hold.
  std::string out;
  const std::vector<std::uint8_t> v(10, 1);
  RleBpEncode(v.data(), v.size(), 1, &out);
  EXPECT_THROW(Decode<std::uint8_t>(out, 1, 11), CorruptionError);
  // Truncated header, truncated RLE value.
  EXPECT_THROW(Decode<std::uint8_t>(Bytes({0x80}), 1, 1), CorruptionError);
  EXPECT_THROW(Decode<std::uint32_t>(Bytes({0x10, 0x01}), 16, 1), CorruptionError);
  // A run value wider than the bit width.
  EXPECT_THROW(Decode<std::uint8_t>(Bytes({0x10, 0x04}), 2, 1), CorruptionError);
  // A bit-packed run that claims a billion groups but holds 2 bytes yields only its 16 values.
  EXPECT_THROW(Decode<std::uint8_t>(Bytes({0xFF, 0xFF, 0xFF, 0x07, 0xAA, 0xAA}), 1, 17), CorruptionError);
  EXPECT_EQ(Decode<std::uint8_t>(Bytes({0xFF, 0xFF, 0xFF, 0x07, 0xAA, 0xAA}), 1, 16).size(), 16u);
  // A huge RLE run is fine to decode in part and costs nothing up front.
  EXPECT_EQ(Decode<std::uint8_t>(Bytes({0xFE, 0xFF, 0xFF, 0xFF, 0x0F, 0x01}), 1, 3),
            (std::vector<std::uint8_t>{1, 1, 1}));
  // Bit widths that do not fit the output.
  EXPECT_THROW(Decode<std::uint8_t>(Bytes({0x02, 0x00, 0x01}), 9, 1), CorruptionError);
  EXPECT_THROW(RleBpDecoder("", 33, "test"), CorruptionError);
  // Empty input with no values wanted is fine.
  EXPECT_TRUE(Decode<std::uint8_t>("", 1, 0).empty());
}

}  // namespace
}  // namespace fruitpipe::parquet
