// Option groups shared by several commands, so every command spells them the same way.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "fruitpipe/model/featurizer.h"
#include "fruitpipe/storage/storage.h"

namespace fruitpipe::cli {

// --s3-endpoint --region --allow-non-eu-region --sse --sse-kms-key-id --s3-max-in-flight
void AddStorageOptions(CLI::App* cmd, storage::StorageOptions* options);

// --model --backend --precision --input-size --calibration-dir
struct ModelOptions {
  std::string card;  // resolved with model::ResolveModelCardPath
  model::FeaturizerOptions featurizer;
};
void AddModelOptions(CLI::App* cmd, ModelOptions* options);

// Throws InvalidArgumentError when the pseudonymisation key file lies under one of the local
// data roots: whoever reads the data could then re-identify people.
void CheckKeyApart(const std::string& key_file, const std::vector<std::string>& roots);

// A store root as the ledger records it: local paths absolute and normalised (purge must find
// the photos again from any working directory), remote URIs as given.
std::string NormalRoot(const std::string& uri);

// Makes s3:// usable (registers the S3 storage scheme) — called once by main().
void RegisterStorageSchemes();

}  // namespace fruitpipe::cli
