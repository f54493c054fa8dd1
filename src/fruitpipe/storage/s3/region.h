// GDPR residency: fruitpipe keeps personal data (contributors' photos) in EU/EEA regions only,
// unless the operator explicitly allows another region.
#pragma once

#include <string>
#include <string_view>

#include "fruitpipe/storage/s3/credentials.h"

namespace fruitpipe::storage::s3 {

// Used when no region is configured anywhere: Ireland, an EU region.
inline constexpr const char* kDefaultRegion = "eu-west-1";

bool IsEuRegion(std::string_view region);

struct RegionChoice {
  std::string region;
  std::string source;  // "--region", "AWS_REGION", "profile 'x' (path)", "default"
};

// --region (option), else AWS_REGION, else AWS_DEFAULT_REGION, else the profile's config
// `region`, else kDefaultRegion.
RegionChoice ResolveRegion(const std::string& option, const AwsProfile& profile);

// Throws a one-line InvalidArgumentError naming `what`, the region, where it came from and how
// to override, unless the region is in the EU/EEA or `allow_non_eu` is set.
void RequireEuResidency(const RegionChoice& choice, bool allow_non_eu, const std::string& what);

}  // namespace fruitpipe::storage::s3
