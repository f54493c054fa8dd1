// libFuzzer target: the PCA statistics and PCA model deserializers. Both records end with a
// SHA-256 of their body, which random bytes never match, so the target appends a valid
// checksum to the fuzzed body: the parsers behind the checksum are what is exercised. The
// first byte picks the record kind. Anything malformed must be a CorruptionError; anything
// accepted must serialize back to the same bytes.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fruitpipe/common/error.h"
#include "fruitpipe/common/hash.h"
#include "fruitpipe/pca/pca.h"

namespace {

std::string WithChecksum(std::string body) {
  const fruitpipe::Sha256Digest d = fruitpipe::Sha256(body);
  body.append(reinterpret_cast<const char*>(d.data()), d.size());
  return body;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool model = data[0] & 1;
  // The magic of each record kind, from a serialized record.
  static const std::string stats_magic = fruitpipe::pca::PcaStats().Serialize().substr(0, 8);
  static const std::string model_magic = [] {
    fruitpipe::pca::PcaModel m;
    m.dim = m.k = 1;
    m.n = 2;
    m.mean = m.explained_variance = m.explained_variance_ratio = Eigen::VectorXd::Ones(1);
    m.components = Eigen::MatrixXd::Ones(1, 1);
    return m.Serialize().substr(0, 8);
  }();
  const std::string record = WithChecksum((model ? model_magic : stats_magic) +
                                          std::string(reinterpret_cast<const char*>(data) + 1, size - 1));
  try {
    if (model) {
      const fruitpipe::pca::PcaModel m = fruitpipe::pca::PcaModel::Deserialize(record, "fuzz");
      if (m.Serialize() != record) __builtin_trap();
    } else {
      const fruitpipe::pca::PcaStats s = fruitpipe::pca::PcaStats::Deserialize(record, "fuzz");
      if (s.Serialize() != record) __builtin_trap();
    }
  } catch (const fruitpipe::CorruptionError&) {
  }
  return 0;
}
