// AWS Signature Version 4, written on OpenSSL's HMAC-SHA256 rather than libcurl's
// CURLOPT_AWS_SIGV4 so that this code decides exactly what is signed: x-amz-content-sha256
// (S3 requires it), the session token, and the canonical query (S3 continuation tokens carry
// '+', '/', '='). Checked against the AWS SigV4 test suite and @smithy/signature-v4.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fruitpipe::storage::s3 {

struct AwsCredentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // empty for long-term keys
  // When temporary credentials stop working (IMDS, STS); nullopt for long-term keys.
  std::optional<std::chrono::system_clock::time_point> expiration;
};

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// A request as the signer sees it. `path` and the query are raw (not percent-encoded): the
// signer and the URL builder encode them the same way, so what is sent is what is signed.
struct SignableRequest {
  std::string method;
  std::string path = "/";
  std::vector<std::pair<std::string, std::string>> query;
  HeaderList headers;           // must contain "host"; names in any case
  std::string payload_sha256;   // hex, or "UNSIGNED-PAYLOAD"
};

// Percent-encodes every byte except RFC 3986 unreserved characters (A-Z a-z 0-9 - . _ ~);
// '/' is kept when `keep_slash` (object key paths).
std::string UriEncode(std::string_view s, bool keep_slash);

// "a=1&b=2": names and values encoded, sorted by encoded name then value. Also the query
// string the client sends, so the server sees the signed bytes.
std::string CanonicalQueryString(const std::vector<std::pair<std::string, std::string>>& query);

// "20150830T123600Z".
std::string AmzDate(std::chrono::system_clock::time_point t);

class SigV4Signer {
 public:
  SigV4Signer(std::string region, std::string service);

  // The headers to add to `request` before sending it: x-amz-date, x-amz-security-token
  // (when the credentials carry one; it is signed) and authorization.
  HeaderList Sign(const SignableRequest& request, const AwsCredentials& credentials,
                  std::chrono::system_clock::time_point now) const;

  // The intermediate strings, exposed for the test-suite vectors.
  std::string CanonicalRequest(const SignableRequest& request, std::string* signed_headers) const;
  std::string StringToSign(std::string_view amz_date, std::string_view canonical_request) const;

  const std::string& region() const { return region_; }

 private:
  std::string Scope(std::string_view date) const;
  std::string region_;
  std::string service_;
};

// Replaces secrets in text that may reach a log or an error (server messages that echo the
// request): the value of Authorization / X-Amz-Security-Token / X-Amz-Credential headers or
// parameters, Signature=..., and the AWS secret-like fields of a credentials document.
std::string RedactSecrets(std::string_view text);

}  // namespace fruitpipe::storage::s3
