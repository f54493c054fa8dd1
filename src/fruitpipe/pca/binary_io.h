// Little-endian binary records with an 8-byte magic in front and a SHA-256 of everything
// before it at the end; shared by the PCA statistics, the PCA model and the classifier
// weights (docs/formats/pca.md). The reader never reads past its input: every failure is a
// CorruptionError naming the record and the cause, which is what a fuzzer expects.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "fruitpipe/common/error.h"
#include "fruitpipe/common/hash.h"

namespace fruitpipe::pca {

static_assert(std::endian::native == std::endian::little,
              "binary records are little-endian; add byte swapping for this platform");

inline constexpr std::size_t kMagicSize = 8;
inline constexpr std::size_t kChecksumSize = 32;

class RecordWriter {
 public:
  explicit RecordWriter(std::string_view magic) : out_(magic) {}
  void Reserve(std::size_t bytes) { out_.reserve(bytes + kChecksumSize); }
  void U32(std::uint32_t v) { Raw(&v, sizeof v); }
  void I64(std::int64_t v) { Raw(&v, sizeof v); }
  void F64(double v) { Raw(&v, sizeof v); }
  void F64s(const double* v, std::size_t n) { Raw(v, n * sizeof(double)); }
  void F32s(const float* v, std::size_t n) { Raw(v, n * sizeof(float)); }
  void Bytes(std::string_view s) { out_.append(s); }
  // Appends the checksum and returns the record.
  std::string Finish() {
    const Sha256Digest d = Sha256(out_);
    out_.append(reinterpret_cast<const char*>(d.data()), d.size());
    return std::move(out_);
  }

 private:
  void Raw(const void* p, std::size_t n) { out_.append(static_cast<const char*>(p), n); }
  std::string out_;
};

class RecordReader {
 public:
  // Checks size, magic and checksum before any field is read. `what` names the record kind
  // ("PCA statistics"), `source` the file or key it came from (may be empty).
  RecordReader(std::string_view bytes, std::string_view magic, std::string_view what,
               std::string_view source)
      : what_(source.empty() ? std::string(what) : std::string(source) + ": " + std::string(what)) {
    if (bytes.size() < kMagicSize + kChecksumSize) Fail("truncated (" + std::to_string(bytes.size()) + " bytes)");
    if (bytes.substr(0, kMagicSize) != magic) Fail("bad magic");
    const std::string_view body = bytes.substr(0, bytes.size() - kChecksumSize);
    const Sha256Digest d = Sha256(body);
    if (std::memcmp(d.data(), bytes.data() + body.size(), kChecksumSize) != 0) Fail("checksum mismatch");
    rest_ = body.substr(kMagicSize);
  }

  std::uint32_t U32() { std::uint32_t v; Raw(&v, sizeof v); return v; }
  std::int64_t I64() { std::int64_t v; Raw(&v, sizeof v); return v; }
  double F64() { double v; Raw(&v, sizeof v); return v; }
  // n doubles (floats); the count is checked against the remaining bytes before copying, and
  // every value must be finite (a NaN would silently poison every later sum).
  void F64s(double* out, std::uint64_t n) { Finite(out, n); }
  void F32s(float* out, std::uint64_t n) { Finite(out, n); }
  std::string_view Bytes(std::uint64_t n) {
    if (n > rest_.size()) Fail("truncated");
    const std::string_view s = rest_.substr(0, n);
    rest_.remove_prefix(n);
    return s;
  }
  std::size_t remaining() const { return rest_.size(); }
  // Call after the last field: trailing bytes mean the writer and reader disagree.
  void ExpectEnd() {
    if (!rest_.empty()) Fail(std::to_string(rest_.size()) + " unexpected trailing bytes");
  }
  [[noreturn]] void Fail(const std::string& cause) const { throw CorruptionError(what_ + ": " + cause); }

 private:
  template <typename T>
  void Finite(T* out, std::uint64_t n) {
    if (n > rest_.size() / sizeof(T)) Fail("truncated");
    Raw(out, n * sizeof(T));
    for (std::uint64_t i = 0; i < n; ++i) {
      if (!std::isfinite(out[i])) Fail("non-finite value");
    }
  }
  void Raw(void* p, std::size_t n) {
    if (n > rest_.size()) Fail("truncated");
    std::memcpy(p, rest_.data(), n);
    rest_.remove_prefix(n);
  }
  std::string what_;
  std::string_view rest_;
};

}  // namespace fruitpipe::pca
