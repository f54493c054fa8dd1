#include "fruitpipe/common/hash.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "fruitpipe/common/error.h"

namespace fruitpipe {

std::string ToHex(const std::uint8_t* data, std::size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(size * 2, '0');
  for (std::size_t i = 0; i < size; ++i) {
    out[2 * i] = kDigits[data[i] >> 4];
    out[2 * i + 1] = kDigits[data[i] & 0xf];
  }
  return out;
}

Sha256Digest Sha256(std::string_view data) {
  Sha256Digest digest{};
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), digest.data(), &len, EVP_sha256(), nullptr) != 1) {
    throw Error("sha256: OpenSSL EVP_Digest failed");
  }
  return digest;
}

std::string Sha256Hex(std::string_view data) {
  const Sha256Digest d = Sha256(data);
  return ToHex(d.data(), d.size());
}

Sha256Digest HmacSha256(std::string_view key, std::string_view data) {
  Sha256Digest digest{};
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest.data(),
           &len) == nullptr) {
    throw Error("hmac-sha256: OpenSSL HMAC failed");
  }
  return digest;
}

std::string HmacSha256Hex(std::string_view key, std::string_view data) {
  const Sha256Digest d = HmacSha256(key, data);
  return ToHex(d.data(), d.size());
}

Sha256Hasher::Sha256Hasher() : ctx_(EVP_MD_CTX_new()) {
  if (ctx_ == nullptr || EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr) != 1) {
    throw Error("sha256: OpenSSL digest init failed");
  }
}

Sha256Hasher::~Sha256Hasher() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }

void Sha256Hasher::Update(std::string_view data) {
  EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data.data(), data.size());
}

std::string Sha256Hasher::FinishHex() {
  Sha256Digest d{};
  unsigned int len = 0;
  EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), d.data(), &len);
  return ToHex(d.data(), d.size());
}

}  // namespace fruitpipe
