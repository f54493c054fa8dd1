// Delta decoders: the examples of Encodings.md byte for byte, round trips through a small
// reference encoder written from the spec, and hostile input.
#include "fruitpipe/parquet/delta.h"

#include <gtest/gtest.h>

#include <bit>
#include <limits>
#include <random>
#include <string>

#include "fruitpipe/common/error.h"

namespace fruitpipe::parquet {
namespace {

std::string Bytes(std::initializer_list<int> b) {
  std::string s;
  for (int x : b) s.push_back(static_cast<char>(x));
  return s;
}

void Uleb(std::uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

void ZigZag(std::int64_t v, std::string* out) {
  Uleb((static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63), out);
}

// Reference encoder: blocks of 128 values in 4 miniblocks of 32, as parquet-mr writes.
template <typename T>
std::string EncodeDelta(const std::vector<T>& v) {
  using U = std::make_unsigned_t<T>;
  std::string out;
  Uleb(128, &out);
  Uleb(4, &out);
  Uleb(v.size(), &out);
  ZigZag(v.empty() ? 0 : v[0], &out);
  for (std::size_t start = 1; start < v.size(); start += 128) {
    const std::size_t end = std::min(v.size(), start + 128);
    std::vector<U> deltas;
    for (std::size_t i = start; i < end; ++i) deltas.push_back(static_cast<U>(static_cast<U>(v[i]) - static_cast<U>(v[i - 1])));
    // The minimum as a signed value of T's width; relative deltas wrap in U.
    T min_delta = static_cast<T>(deltas[0]);
    for (U d : deltas) min_delta = std::min(min_delta, static_cast<T>(d));
    ZigZag(min_delta, &out);
    std::string widths, bodies;
    for (std::size_t m = 0; m < 4; ++m) {
      const std::size_t b = m * 32;
      if (b >= deltas.size()) {
        widths.push_back(0);
        continue;
      }
      int w = 0;
      for (std::size_t i = b; i < std::min(deltas.size(), b + 32); ++i) {
        w = std::max(w, static_cast<int>(std::bit_width(static_cast<U>(deltas[i] - static_cast<U>(min_delta)))));
      }
      widths.push_back(static_cast<char>(w));
      std::string body(32 * w / 8, '\0');
      for (std::size_t i = b; i < std::min(deltas.size(), b + 32); ++i) {
        const std::uint64_t rel = static_cast<U>(deltas[i] - static_cast<U>(min_delta));
        for (int bit = 0; bit < w; ++bit) {
          if ((rel >> bit) & 1) {
            const std::size_t pos = (i - b) * w + bit;
            body[pos / 8] = static_cast<char>(body[pos / 8] | (1 << (pos % 8)));
          }
        }
      }
      bodies += body;
    }
    out += widths + bodies;
  }
  return out;
}

template <typename T>
std::vector<T> Decode(std::string_view data, std::size_t n, std::size_t* consumed = nullptr) {
  std::vector<T> out;
  const std::size_t c = DecodeDeltaBinaryPacked(data, n, &out, "test");
  if (consumed) *consumed = c;
  return out;
}

TEST(DeltaTest, SpecExampleOneToFive) {
  // 1..5: min delta 1, all bit widths 0, no miniblock bodies.
  const std::string data = Bytes({0x80, 0x01, 0x04, 0x05, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00});
  std::size_t consumed = 0;
  EXPECT_EQ(Decode<std::int32_t>(data, 5, &consumed), (std::vector<std::int32_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(consumed, data.size());
}

TEST(DeltaTest, SpecExampleWithNegativeDeltas) {
  // 7 5 3 1 2 3 4 5: min delta -2, relative deltas 0 0 0 3 3 3 3 at 2 bits, one miniblock.
  std::string data = Bytes({0x80, 0x01, 0x04, 0x08, 0x0E, 0x03, 0x02, 0x00, 0x00, 0x00, 0xC0, 0xFF});
  data += std::string(6, '\0');
  std::size_t consumed = 0;
  EXPECT_EQ(Decode<std::int64_t>(data + "trailing", 8, &consumed),
            (std::vector<std::int64_t>{7, 5, 3, 1, 2, 3, 4, 5}));
  EXPECT_EQ(consumed, data.size());
}

template <typename T>
void RoundTrip(const std::vector<T>& v) {
  const std::string data = EncodeDelta(v);
  std::size_t consumed = 0;
  ASSERT_EQ(Decode<T>(data, v.size(), &consumed), v);
  EXPECT_EQ(consumed, data.size());
}

TEST(DeltaTest, RoundTripsWithExtremesAndWrapping) {
  std::mt19937_64 rng(5);
  for (std::size_t n : {0, 1, 2, 31, 32, 33, 128, 129, 1000}) {
    std::vector<std::int64_t> random64(n), sorted(n), extremes(n);
    std::vector<std::int32_t> random32(n);
    for (std::size_t i = 0; i < n; ++i) {
      random64[i] = static_cast<std::int64_t>(rng());
      random32[i] = static_cast<std::int32_t>(rng());
      sorted[i] = static_cast<std::int64_t>(i * 1000 + rng() % 10);
      extremes[i] = i % 2 ? std::numeric_limits<std::int64_t>::max() : std::numeric_limits<std::int64_t>::min();
    }
    RoundTrip(random64);
    RoundTrip(random32);
    RoundTrip(sorted);
    RoundTrip(extremes);
  }
}

TEST(DeltaTest, LengthByteArray) {
  std::vector<std::int32_t> lengths = {3, 0, 5};
  const std::string data = EncodeDelta(lengths) + "abc" + "hello" + "rest";
  std::vector<std::string_view> out;
  const std::size_t consumed = DecodeDeltaLengthByteArray(data, 3, &out, "test");
  EXPECT_EQ(out, (std::vector<std::string_view>{"abc", "", "hello"}));
  EXPECT_EQ(data.substr(consumed), "rest");
  // Lengths running past the data, or negative.
  EXPECT_THROW(DecodeDeltaLengthByteArray(EncodeDelta(std::vector<std::int32_t>{3, 100}) + "abc", 2, &out, "t"),
               CorruptionError);
  EXPECT_THROW(DecodeDeltaLengthByteArray(EncodeDelta(std::vector<std::int32_t>{-1}), 1, &out, "t"), CorruptionError);
}

// DELTA_BYTE_ARRAY as parquet-mr writes it: prefix lengths, then suffixes.
std::string EncodeDeltaByteArray(const std::vector<std::string>& values) {
  std::vector<std::int32_t> prefixes, lengths;
  std::string suffixes;
  std::string prev;
  for (const std::string& v : values) {
    std::size_t p = 0;
    while (p < prev.size() && p < v.size() && prev[p] == v[p]) ++p;
    prefixes.push_back(static_cast<std::int32_t>(p));
    lengths.push_back(static_cast<std::int32_t>(v.size() - p));
    suffixes += v.substr(p);
    prev = v;
  }
  return EncodeDelta(prefixes) + EncodeDelta(lengths) + suffixes;
}

TEST(DeltaTest, ByteArrayWithSharedPrefixes) {
  const std::vector<std::string> values = {"apple", "applesauce", "apricot", "", "banana", "band", "band"};
  const std::string data = EncodeDeltaByteArray(values) + "next";
  std::vector<std::string> out = {"kept"};
  std::uint64_t charged = 0;
  const std::size_t consumed =
      DecodeDeltaByteArray(data, values.size(), &out, "test", [&](std::uint64_t b) { charged += b; });
  EXPECT_EQ(data.substr(consumed), "next");
  EXPECT_EQ(std::vector<std::string>(out.begin() + 1, out.end()), values);
  EXPECT_EQ(out[0], "kept");
  std::uint64_t total = 0;
  for (const auto& v : values) total += v.size();
  EXPECT_EQ(charged, total);

  // The budget refuses before anything is built.
  out.clear();
  EXPECT_THROW(DecodeDeltaByteArray(data, values.size(), &out, "test",
                                    [](std::uint64_t) { throw CorruptionError("over budget"); }),
               CorruptionError);
  EXPECT_TRUE(out.empty());
  // A prefix longer than the previous value.
  const std::string bad = EncodeDelta(std::vector<std::int32_t>{0, 5}) + EncodeDelta(std::vector<std::int32_t>{2, 1}) + "abc";
  EXPECT_THROW(DecodeDeltaByteArray(bad, 2, &out, "test", [](std::uint64_t) {}), CorruptionError);
}

TEST(DeltaTest, HostileInput) {
  std::vector<std::int64_t> out;
  // Wrong declared count, bad block sizes, truncation at every byte.
  const std::string good = EncodeDelta(std::vector<std::int64_t>{1, 5, -7, 100, 3});
  EXPECT_THROW(DecodeDeltaBinaryPacked(good, 4, &out, "t"), CorruptionError);
  EXPECT_THROW(DecodeDeltaBinaryPacked(Bytes({0x00, 0x04, 0x01, 0x00}), 1, &out, "t"), CorruptionError);
  EXPECT_THROW(DecodeDeltaBinaryPacked(Bytes({0x80, 0x01, 0x03, 0x01, 0x00}), 1, &out, "t"), CorruptionError);
  EXPECT_THROW(DecodeDeltaBinaryPacked(Bytes({0x80, 0x01, 0x00, 0x01, 0x00}), 1, &out, "t"), CorruptionError);
  for (std::size_t cut = 0; cut < good.size(); ++cut) {
    EXPECT_THROW(DecodeDeltaBinaryPacked(std::string_view(good).substr(0, cut), 5, &out, "t"), CorruptionError) << cut;
  }
  // A bit width wider than the type.
  std::string wide;
  Uleb(128, &wide);
  Uleb(4, &wide);
  Uleb(2, &wide);
  ZigZag(0, &wide);
  ZigZag(0, &wide);
  wide += Bytes({33, 0, 0, 0});
  wide += std::string(32 * 33 / 8, '\0');
  std::vector<std::int32_t> out32;
  EXPECT_THROW(DecodeDeltaBinaryPacked(wide, 2, &out32, "t"), CorruptionError);
}

}  // namespace
}  // namespace fruitpipe::parquet
