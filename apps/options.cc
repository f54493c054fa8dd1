#include "options.h"

#include <filesystem>

#include "fruitpipe/common/error.h"

namespace fruitpipe::cli {

namespace fs = std::filesystem;

// Local data roots must not hold the key: whoever reads the data could then re-identify.
void CheckKeyApart(const std::string& key_file, const std::vector<std::string>& roots) {
  if (key_file.empty()) return;
  std::error_code ec;
  const fs::path key = fs::weakly_canonical(fs::absolute(key_file), ec);
  for (const auto& root : roots) {
    if (root.empty() || storage::IsRemoteUri(root)) continue;
    const fs::path r = fs::weakly_canonical(fs::absolute(root), ec);
    const auto rel = key.lexically_relative(r);
    if (!rel.empty() && *rel.begin() != "..") {
      throw InvalidArgumentError(key_file + ": the pseudonymisation key must not be stored with the data (" + root + ")");
    }
  }
}

// Local roots as absolute paths: the ledger names the store a photo went to, and purge must
// find it again from any working directory.
std::string NormalRoot(const std::string& uri) {
  if (storage::IsRemoteUri(uri)) return uri;
  std::string path = fs::absolute(uri).lexically_normal().string();
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}


void AddStorageOptions(CLI::App* cmd, storage::StorageOptions* o) {
  cmd->add_option("--s3-endpoint", o->endpoint,
                  "S3 endpoint URL (default: AWS_ENDPOINT_URL, else AWS for the region)")
      ->group("Storage");
  cmd->add_option("--region", o->region, "S3 region (default: AWS_REGION, AWS_DEFAULT_REGION, profile)")
      ->group("Storage");
  cmd->add_flag("--allow-non-eu-region", o->allow_non_eu_region,
                "allow a region outside the EU/EEA (GDPR residency check is on by default)")
      ->group("Storage");
  cmd->add_option("--sse", o->sse, "server-side encryption for every PUT: AES256 or aws:kms")
      ->check(CLI::IsMember({"AES256", "aws:kms"}))
      ->default_val("AES256")
      ->group("Storage");
  cmd->add_option("--sse-kms-key-id", o->sse_kms_key_id, "KMS key id for --sse aws:kms")->group("Storage");
  cmd->add_option("--s3-max-in-flight", o->max_in_flight, "concurrent S3 GETs when reading many objects")
      ->check(CLI::Range(1, 1024))
      ->default_val(32)
      ->group("Storage");
}

void AddModelOptions(CLI::App* cmd, ModelOptions* o) {
  cmd->add_option("--model", o->card, "model card JSON (default: $FRUITPIPE_MODEL)")->group("Model");
  cmd->add_option("--backend", o->featurizer.backend, "inference engine: auto, onednn or opencv")
      ->check(CLI::IsMember({"auto", "onednn", "opencv"}))
      ->default_val("auto")
      ->group("Model");
  cmd->add_option("--precision", o->featurizer.precision, "fp32, or int8 (onednn, calibrated)")
      ->check(CLI::IsMember({"fp32", "int8"}))
      ->default_val("fp32")
      ->group("Model");
  cmd->add_option("--input-size", o->featurizer.input_size,
                  "square input side (default: the card's, 224); e.g. 160, 128, 96")
      ->check(CLI::Range(32, 1024))
      ->group("Model");
  cmd->add_option("--calibration-dir", o->featurizer.calibration_dir,
                  "images for int8 calibration (default: none; required with --precision int8)")
      ->group("Model");
}

}  // namespace fruitpipe::cli

#ifdef FRUITPIPE_HAVE_S3
#include "fruitpipe/storage/s3/s3_storage.h"
#endif

namespace fruitpipe::cli {

void RegisterStorageSchemes() {
#ifdef FRUITPIPE_HAVE_S3
  storage::RegisterS3Storage();
#endif
}

}  // namespace fruitpipe::cli
