// Where S3 credentials come from, in the order the AWS SDKs use: the environment, the shared
// credentials/config files with AWS_PROFILE, then the EC2/EMR instance role through IMDSv2.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "fruitpipe/storage/s3/http.h"
#include "fruitpipe/storage/s3/sigv4.h"

namespace fruitpipe::storage::s3 {

class CredentialsProvider {
 public:
  virtual ~CredentialsProvider() = default;
  // Valid credentials for a request about to be signed; thread-safe. Throws when none can be
  // obtained. Messages never contain the secret or the token.
  virtual AwsCredentials Get() = 0;
  // Where they come from, for messages: "environment", "profile 'x' (/home/u/.aws/credentials)".
  virtual std::string Describe() const = 0;
};

class StaticCredentialsProvider : public CredentialsProvider {
 public:
  StaticCredentialsProvider(AwsCredentials credentials, std::string description);
  AwsCredentials Get() override { return credentials_; }
  std::string Describe() const override { return description_; }

 private:
  AwsCredentials credentials_;
  std::string description_;
};

// IMDSv2: PUT /latest/api/token (session token with a TTL), then
// GET /latest/meta-data/iam/security-credentials/ (the role) and .../<role> (JSON with
// AccessKeyId, SecretAccessKey, Token, Expiration). Credentials are fetched on first use and
// again when they are within `refresh_before` of their expiration.
class ImdsCredentialsProvider : public CredentialsProvider {
 public:
  struct Options {
    std::string endpoint = "http://169.254.169.254";  // AWS_EC2_METADATA_SERVICE_ENDPOINT
    std::chrono::seconds token_ttl{21600};
    std::chrono::seconds refresh_before{300};
    // The metadata service answers within milliseconds on an instance; anywhere else the
    // address is unreachable, so fail fast instead of hanging.
    std::chrono::milliseconds connect_timeout{1000};
    std::chrono::milliseconds timeout{3000};
    int max_attempts = 3;
  };
  explicit ImdsCredentialsProvider(Options options);
  AwsCredentials Get() override;
  std::string Describe() const override;

 private:
  std::string Token();
  HttpResponse Call(const std::string& method, const std::string& path, const HeaderList& headers);
  Options options_;
  HttpClient http_;
  std::mutex mu_;
  std::string token_;
  std::chrono::steady_clock::time_point token_expiry_;
  std::optional<AwsCredentials> cached_;
  std::string role_;
};

// One [section] of an AWS ini file: key -> value.
using IniSection = std::map<std::string, std::string>;
// Parses the AWS shared credentials/config format: [name] sections, key = value lines,
// '#' and ';' comments. In the config file, sections other than [default] are
// "[profile name]"; the result is keyed by the plain profile name either way.
std::map<std::string, IniSection> ParseAwsIni(std::string_view text, bool config_file);

// The profile the process uses (AWS_PROFILE, else "default") and its files
// (AWS_SHARED_CREDENTIALS_FILE / AWS_CONFIG_FILE, else ~/.aws/credentials and ~/.aws/config).
struct AwsProfile {
  std::string name;
  std::string credentials_path;
  std::string config_path;
  IniSection credentials;  // the profile's section of the credentials file (may be empty)
  IniSection config;       // the profile's section of the config file (may be empty)
};
AwsProfile LoadAwsProfile();

// The chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY(/AWS_SESSION_TOKEN), then the profile's
// keys, then IMDSv2 unless AWS_EC2_METADATA_DISABLED=true. Throws InvalidArgumentError, naming
// what was tried, when nothing applies. `what` names the resource for messages.
std::shared_ptr<CredentialsProvider> DefaultCredentialsChain(const AwsProfile& profile,
                                                             const std::string& what);

}  // namespace fruitpipe::storage::s3
