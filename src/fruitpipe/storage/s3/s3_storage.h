// S3 behind the Storage interface: s3://bucket/prefix on AWS or any S3-compatible server
// (MinIO-style, s3rver). Requests are signed with SigV4, reuse connections, run many GETs in
// flight for small objects, retry transient failures with backoff, and every PUT asks for
// server-side encryption. The region must be in the EU/EEA unless explicitly allowed (GDPR).
// docs/s3.md describes configuration, the credentials chain and the IAM policy.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fruitpipe/storage/s3/credentials.h"
#include "fruitpipe/storage/s3/region.h"
#include "fruitpipe/storage/s3/sigv4.h"
#include "fruitpipe/storage/storage.h"

namespace fruitpipe::storage {

struct S3Location {
  std::string bucket;
  std::string prefix;  // without leading or trailing '/'
};
// "s3://bucket/prefix" -> {bucket, prefix}; throws InvalidArgumentError for anything else.
S3Location ParseS3Uri(std::string_view uri);

enum class S3Addressing {
  kAuto,           // virtual-hosted on AWS endpoints, path-style on custom endpoints
  kPath,           // https://endpoint/bucket/key
  kVirtualHosted,  // https://bucket.endpoint/key
};

struct S3Config {
  std::string bucket;
  std::string prefix;    // the store's root inside the bucket; "" = the whole bucket
  std::string endpoint;  // "" = AWS (https://s3.<region>.amazonaws.com); else http(s)://host[:port]
  std::string region = s3::kDefaultRegion;
  bool allow_non_eu_region = false;
  S3Addressing addressing = S3Addressing::kAuto;
  std::string sse = "AES256";  // "AES256" or "aws:kms"
  std::string sse_kms_key_id;  // with aws:kms; empty = the account's aws/s3 key
  int max_in_flight = 32;      // concurrent GETs in GetMany
  int max_attempts = 5;        // per request, first try included
  std::chrono::milliseconds retry_base_delay{100};
  std::chrono::milliseconds retry_max_delay{20000};
  std::uint64_t multipart_threshold = 8u << 20;  // larger objects go up in parts
  std::uint64_t part_size = 8u << 20;            // S3 needs >= 5 MiB except the last part
  int upload_parallelism = 4;                    // parts in flight
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds request_timeout{0};  // 0 = none; stalled transfers end after 30 s
};

class S3Storage : public Storage {
 public:
  // Checks the region (residency) and SSE settings; sends nothing.
  S3Storage(S3Config config, std::shared_ptr<s3::CredentialsProvider> credentials);
  ~S3Storage() override;

  // What OpenStorage("s3://...") calls: options plus the environment (AWS_ENDPOINT_URL,
  // AWS_REGION, AWS_PROFILE, FRUITPIPE_S3_MAX_ATTEMPTS, ...), residency checked before the
  // credentials chain is consulted.
  static std::unique_ptr<S3Storage> Open(std::string_view uri, const StorageOptions& options);

  std::string Uri(std::string_view key) const override;
  std::vector<ObjectInfo> List(std::string_view prefix) override;
  std::string Get(std::string_view key) override;
  void Put(std::string_view key, std::string_view data) override;
  void Delete(std::string_view key) override;
  bool Exists(std::string_view key) override;
  // CopyObject then DeleteObject (objects up to 5 GB, the CopyObject limit).
  void Rename(std::string_view from, std::string_view to) override;
  // Keeps config().max_in_flight GETs in flight on reused connections. Only a missing key is
  // reported per key; a failure of the store itself (retries exhausted, access refused) throws,
  // like Get, and cancels the rest: the callers treat per-key failures as facts about the
  // objects (the pipeline lists them as rejected inputs), and an outage is not one.
  void GetMany(const std::vector<std::string>& keys,
               const std::function<void(FetchResult&&)>& on_result) override;

  // DeleteObjects, 1,000 keys per request; keys that do not exist are not an error.
  void DeleteMany(const std::vector<std::string>& keys);

  // The URL requests for `key` go to, after addressing style (for messages and tests).
  std::string ObjectUrl(std::string_view key) const;
  const S3Config& config() const { return config_; }
  std::string CredentialsSource() const { return credentials_->Describe(); }

 private:
  struct Call;
  struct Failure;
  s3::HttpRequest Build(const Call& call) const;
  s3::HttpResponse Perform(const Call& call) const;
  Failure Describe(const std::string& op, std::string_view key, const s3::HttpResponse& r) const;
  [[noreturn]] void Throw(const std::string& op, std::string_view key, const s3::HttpResponse& r) const;
  std::string FullKey(std::string_view key) const;
  void MultipartPut(std::string_view key, std::string_view data);
  s3::HeaderList EncryptionHeaders() const;

  S3Config config_;
  std::shared_ptr<s3::CredentialsProvider> credentials_;
  s3::SigV4Signer signer_;
  std::unique_ptr<s3::HttpClient> http_;
  s3::RetryPolicy retry_;
  std::string scheme_;       // "https" or "http"
  std::string host_;         // the endpoint's host[:port]
  bool virtual_hosted_ = false;
  bool bypass_proxy_ = false;
};

// Registers the "s3" scheme with OpenStorage. The CLI calls it at start: a static initializer
// in a static library would be dropped by the linker.
void RegisterS3Storage();

}  // namespace fruitpipe::storage
