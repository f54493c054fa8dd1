#include "options.h"

namespace fruitpipe::cli {

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
