// Content hashes used across outputs (image_sha256, model cards, audit chains, HMAC subject ids).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace fruitpipe {

using Sha256Digest = std::array<std::uint8_t, 32>;

Sha256Digest Sha256(std::string_view data);
std::string Sha256Hex(std::string_view data);
std::string HmacSha256Hex(std::string_view key, std::string_view data);
Sha256Digest HmacSha256(std::string_view key, std::string_view data);
std::string ToHex(const std::uint8_t* data, std::size_t size);

// Streaming SHA-256 for files too large to hold in memory (model files).
class Sha256Hasher {
 public:
  Sha256Hasher();
  ~Sha256Hasher();
  Sha256Hasher(const Sha256Hasher&) = delete;
  Sha256Hasher& operator=(const Sha256Hasher&) = delete;
  void Update(std::string_view data);
  std::string FinishHex();

 private:
  void* ctx_;  // EVP_MD_CTX, kept opaque so OpenSSL headers stay out of ours.
};

}  // namespace fruitpipe
