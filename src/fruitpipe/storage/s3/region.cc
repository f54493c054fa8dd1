#include "fruitpipe/storage/s3/region.h"

#include <array>

#include "fruitpipe/common/env_vars.h"
#include "fruitpipe/common/error.h"

namespace fruitpipe::storage::s3 {
namespace {

constexpr std::array<std::string_view, 8> kEuRegions = {
    "eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1",
    "eu-central-2", "eu-north-1", "eu-south-1", "eu-south-2"};

}  // namespace

bool IsEuRegion(std::string_view region) {
  for (auto r : kEuRegions) {
    if (r == region) return true;
  }
  return false;
}

RegionChoice ResolveRegion(const std::string& option, const AwsProfile& profile) {
  if (!option.empty()) return {option, "--region"};
  if (auto v = GetEnv("AWS_REGION")) return {*v, "AWS_REGION"};
  if (auto v = GetEnv("AWS_DEFAULT_REGION")) return {*v, "AWS_DEFAULT_REGION"};
  if (auto it = profile.config.find("region"); it != profile.config.end() && !it->second.empty()) {
    return {it->second, "profile '" + profile.name + "' in " + profile.config_path};
  }
  return {kDefaultRegion, "default"};
}

void RequireEuResidency(const RegionChoice& choice, bool allow_non_eu, const std::string& what) {
  if (allow_non_eu || IsEuRegion(choice.region)) return;
  std::string allowed;
  for (auto r : kEuRegions) {
    if (!allowed.empty()) allowed += ", ";
    allowed += r;
  }
  throw InvalidArgumentError(what + ": region " + choice.region + " (from " + choice.source +
                             ") is outside the EU/EEA; GDPR data residency requires one of " +
                             allowed + " (pass --allow-non-eu-region to override)");
}

}  // namespace fruitpipe::storage::s3
