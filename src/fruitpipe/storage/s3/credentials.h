// Where S3 credentials come from, in the order the AWS SDKs use: the environment, the shared
// credentials/config files with AWS_PROFILE, a web identity token exchanged with STS (EKS IRSA),
// the container credentials endpoint (ECS, AWS Batch, EKS Pod Identity), then the EC2/EMR
// instance role through IMDSv2.
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

// Temporary credentials that expire: fetched on first use and again when they are within
// `refresh_before` of their expiration. A refresh that fails while the cached credentials still
// work returns them (the next request tries again); once they have expired, the error is thrown.
// Subclasses implement Fetch(), which runs under the provider's lock (one fetch at a time).
class RefreshingCredentialsProvider : public CredentialsProvider {
 public:
  AwsCredentials Get() final;

 protected:
  explicit RefreshingCredentialsProvider(std::chrono::seconds refresh_before)
      : refresh_before_(refresh_before) {}
  // New credentials, with an expiration; throws Error (messages without secrets).
  virtual AwsCredentials Fetch() = 0;

 private:
  std::chrono::seconds refresh_before_;
  std::mutex mu_;
  std::optional<AwsCredentials> cached_;
};

// IMDSv2: PUT /latest/api/token (session token with a TTL), then
// GET /latest/meta-data/iam/security-credentials/ (the role) and .../<role> (JSON with
// AccessKeyId, SecretAccessKey, Token, Expiration).
class ImdsCredentialsProvider : public RefreshingCredentialsProvider {
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
  std::string Describe() const override;

 private:
  AwsCredentials Fetch() override;
  std::string Token();
  HttpResponse Call(const std::string& method, const std::string& path, const HeaderList& headers);
  Options options_;
  HttpClient http_;
  std::string token_;
  std::chrono::steady_clock::time_point token_expiry_;
  std::string role_;
};

// The container credentials endpoint of ECS tasks, AWS Batch jobs (which run on ECS) and EKS
// Pod Identity: GET <url> with an optional Authorization header; the answer is JSON with
// AccessKeyId, SecretAccessKey, Token, Expiration.
class ContainerCredentialsProvider : public RefreshingCredentialsProvider {
 public:
  struct Options {
    std::string url;
    std::string authorization;       // AWS_CONTAINER_AUTHORIZATION_TOKEN
    std::string authorization_file;  // AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE; wins, re-read at each fetch
    std::chrono::seconds refresh_before{300};
    std::chrono::milliseconds connect_timeout{2000};
    std::chrono::milliseconds timeout{5000};
    int max_attempts = 3;
  };
  explicit ContainerCredentialsProvider(Options options);
  // "container credentials (http://169.254.170.2)": scheme and host only, since the path and
  // query of the URL can act as a credential.
  std::string Describe() const override;

 private:
  AwsCredentials Fetch() override;
  Options options_;
  std::string where_;
  HttpClient http_;
};

// The ECS agent's address, to which AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is relative.
inline constexpr const char* kEcsCredentialsHost = "http://169.254.170.2";

// The container endpoint the environment names, the way the AWS SDKs read it:
// AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (http://169.254.170.2<uri>) wins over
// AWS_CONTAINER_CREDENTIALS_FULL_URI. A full URI may be https to any host; plain http only to a
// loopback host or the ECS/EKS link-local agents (169.254.170.2, 169.254.170.23, fd00:ec2::23),
// anything else is an InvalidArgumentError. nullopt when neither variable is set. `what` names
// the resource for messages.
std::optional<ContainerCredentialsProvider::Options> ContainerOptionsFromEnvironment(const std::string& what);

// EKS IAM roles for service accounts (IRSA) and other OIDC federation: the token in
// `token_file` (re-read at each fetch: the kubelet rotates it) is exchanged for role
// credentials with an unsigned STS AssumeRoleWithWebIdentity request, POSTed as a form.
class WebIdentityCredentialsProvider : public RefreshingCredentialsProvider {
 public:
  struct Options {
    std::string token_file;    // AWS_WEB_IDENTITY_TOKEN_FILE
    std::string role_arn;      // AWS_ROLE_ARN
    std::string session_name;  // AWS_ROLE_SESSION_NAME, else "fruitpipe-<unix ms>"
    std::string endpoint;      // https://sts.<region>.amazonaws.com, AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL
    std::chrono::seconds refresh_before{300};
    std::chrono::milliseconds connect_timeout{3000};
    std::chrono::milliseconds timeout{10000};
    int max_attempts = 3;
  };
  explicit WebIdentityCredentialsProvider(Options options);
  std::string Describe() const override;

 private:
  AwsCredentials Fetch() override;
  Options options_;
  HttpClient http_;
};

// The regional STS endpoint (https://sts.<region>.amazonaws.com, .amazonaws.com.cn in China):
// AWS_ENDPOINT_URL_STS, else AWS_ENDPOINT_URL, else the region's.
std::string StsEndpoint(const std::string& region);

// Web identity from AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN (+ AWS_ROLE_SESSION_NAME);
// nullopt when neither is set, InvalidArgumentError when only one is.
std::optional<WebIdentityCredentialsProvider::Options> WebIdentityOptionsFromEnvironment(
    const std::string& region, const std::string& what);

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
// keys, then web identity (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN), then the container
// endpoint (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI / _FULL_URI), then IMDSv2 unless
// AWS_EC2_METADATA_DISABLED=true. The first step whose configuration is present is chosen,
// without a request; providers that fetch do so on first Get(). Throws InvalidArgumentError,
// naming what was tried, when nothing applies. `what` names the resource for messages;
// `region` is the one STS is asked in (empty: ResolveRegion's choice).
std::shared_ptr<CredentialsProvider> DefaultCredentialsChain(const AwsProfile& profile,
                                                             const std::string& what,
                                                             const std::string& region = "");

}  // namespace fruitpipe::storage::s3
