#include "fruitpipe/storage/s3/s3_storage.h"

#include <curl/curl.h>
#include <openssl/evp.h>

#include <pugixml.hpp>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <sstream>

#include "fruitpipe/common/env_vars.h"
#include "fruitpipe/common/error.h"
#include "fruitpipe/common/hash.h"

namespace fruitpipe::storage {

using s3::HeaderList;
using s3::HttpRequest;
using s3::HttpResponse;

namespace {

constexpr std::string_view kEmptySha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr std::size_t kDeleteBatch = 1000;  // the DeleteObjects limit

std::string_view TrimSlashes(std::string_view s) {
  while (!s.empty() && s.front() == '/') s.remove_prefix(1);
  while (!s.empty() && s.back() == '/') s.remove_suffix(1);
  return s;
}

std::string Md5Base64(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &len, EVP_md5(), nullptr) != 1) {
    throw Error("md5: OpenSSL EVP_Digest failed");
  }
  std::string out(4 * ((len + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), digest, static_cast<int>(len));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

struct S3ErrorBody {
  std::string code;
  std::string message;
};

// S3 reports errors as <Error><Code/><Message/></Error>, sometimes with status 200
// (CopyObject, CompleteMultipartUpload).
std::optional<S3ErrorBody> ParseErrorBody(const std::string& body) {
  if (body.find("<Error") == std::string::npos) return std::nullopt;
  pugi::xml_document doc;
  if (!doc.load_buffer(body.data(), body.size())) return std::nullopt;
  const pugi::xml_node error = doc.child("Error");
  if (!error) return std::nullopt;
  return S3ErrorBody{error.child_value("Code"), error.child_value("Message")};
}

bool IsRetryableCode(std::string_view code) {
  return code == "SlowDown" || code == "RequestTimeout" || code == "InternalError" ||
         code == "ServiceUnavailable" || code == "Throttling" || code == "ThrottlingException" ||
         code == "RequestLimitExceeded";
}

bool IsRetryable(const HttpResponse& r) {
  if (r.status == 0) {
    switch (r.transport_code) {
      case CURLE_OPERATION_TIMEDOUT:
      case CURLE_COULDNT_CONNECT:
      case CURLE_RECV_ERROR:
      case CURLE_SEND_ERROR:
      case CURLE_GOT_NOTHING:
      case CURLE_PARTIAL_FILE:
      case CURLE_SSL_CONNECT_ERROR:
      case CURLE_HTTP2:
      case CURLE_HTTP2_STREAM:
        return true;
      default:
        return false;
    }
  }
  if (r.status == 500 || r.status == 502 || r.status == 503 || r.status == 504 || r.status == 429)
    return true;
  if (r.status >= 400) {
    if (auto e = ParseErrorBody(r.body)) return IsRetryableCode(e->code);
  }
  return false;
}

std::string TransportCause(const HttpResponse& r) {
  switch (r.transport_code) {
    case CURLE_OPERATION_TIMEDOUT:
      return "timed out (" + r.transport_error + ")";
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
      return "connection reset (" + r.transport_error + ")";
    case CURLE_COULDNT_CONNECT:
      return "cannot connect (" + r.transport_error + ")";
    default:
      return r.transport_error;
  }
}

bool IsAwsHost(std::string_view host) {
  const auto colon = host.find(':');
  host = host.substr(0, colon);
  return host == "amazonaws.com" || (host.size() > 14 && host.substr(host.size() - 14) == ".amazonaws.com");
}

bool IsLoopbackHost(std::string_view host) {
  if (!host.empty() && host.front() == '[') return host.rfind("[::1]", 0) == 0;
  host = host.substr(0, host.find(':'));
  return host == "localhost" || host.rfind("127.", 0) == 0 ||
         (host.size() > 10 && host.substr(host.size() - 10) == ".localhost");
}

// A bucket name that can be a DNS label (virtual-hosted addressing, TLS wildcard certificates).
bool IsDnsCompatibleBucket(std::string_view bucket) {
  if (bucket.size() < 3 || bucket.size() > 63) return false;
  for (char c : bucket) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

int EnvInt(const char* name, int fallback, int lo, int hi) {
  const auto v = GetEnv(name);
  if (!v) return fallback;
  char* end = nullptr;
  const long n = std::strtol(v->c_str(), &end, 10);
  if (end == v->c_str() || *end != '\0' || n < lo || n > hi) {
    throw InvalidArgumentError(std::string(name) + "=" + *v + ": expected an integer from " +
                               std::to_string(lo) + " to " + std::to_string(hi));
  }
  return static_cast<int>(n);
}

}  // namespace

// One S3 request before signing.
struct S3Storage::Call {
  std::string method = "GET";
  std::string key;            // full key in the bucket; empty = the bucket itself
  std::vector<std::pair<std::string, std::string>> query;
  HeaderList headers;         // extra headers (SSE, copy source, content type)
  std::string_view body;
  std::string payload_sha256;  // computed from body when empty
};

struct S3Storage::Failure {
  enum Kind { kNotFound, kInvalid, kIO } kind = kIO;
  std::string message;
};

S3Location ParseS3Uri(std::string_view uri) {
  constexpr std::string_view kScheme = "s3://";
  if (uri.rfind(kScheme, 0) != 0) {
    throw InvalidArgumentError(std::string(uri) + ": not an s3:// URI");
  }
  std::string_view rest = uri.substr(kScheme.size());
  const auto slash = rest.find('/');
  S3Location loc;
  loc.bucket = std::string(rest.substr(0, slash));
  if (slash != std::string_view::npos) loc.prefix = std::string(TrimSlashes(rest.substr(slash + 1)));
  if (loc.bucket.empty()) throw InvalidArgumentError(std::string(uri) + ": missing bucket name (s3://bucket/prefix)");
  return loc;
}

S3Storage::S3Storage(S3Config config, std::shared_ptr<s3::CredentialsProvider> credentials)
    : config_(std::move(config)),
      credentials_(std::move(credentials)),
      signer_(config_.region, "s3"),
      http_(std::make_unique<s3::HttpClient>()) {
  config_.prefix = std::string(TrimSlashes(config_.prefix));
  const std::string what = Uri("");
  if (config_.bucket.empty() || config_.bucket.find('/') != std::string::npos) {
    throw InvalidArgumentError(what + ": invalid bucket name '" + config_.bucket + "'");
  }
  s3::RequireEuResidency({config_.region, "configuration"}, config_.allow_non_eu_region, what);
  if (config_.sse != "AES256" && config_.sse != "aws:kms") {
    throw InvalidArgumentError(what + ": server-side encryption '" + config_.sse +
                               "' is not supported (use AES256 or aws:kms)");
  }
  if (config_.sse != "aws:kms" && !config_.sse_kms_key_id.empty()) {
    throw InvalidArgumentError(what + ": a KMS key id needs server-side encryption aws:kms");
  }
  if (config_.part_size < (5u << 20)) {
    throw InvalidArgumentError(what + ": multipart part size must be at least 5 MiB");
  }
  if (!credentials_) throw InvalidArgumentError(what + ": no credentials provider");

  std::string endpoint = config_.endpoint;
  if (endpoint.empty()) endpoint = "https://s3." + config_.region + ".amazonaws.com";
  const auto sep = endpoint.find("://");
  if (sep == std::string::npos) throw InvalidArgumentError(what + ": endpoint " + endpoint + " has no http:// or https://");
  scheme_ = endpoint.substr(0, sep);
  if (scheme_ != "http" && scheme_ != "https") {
    throw InvalidArgumentError(what + ": endpoint " + endpoint + " must be http:// or https://");
  }
  host_ = std::string(TrimSlashes(endpoint.substr(sep + 3)));
  if (host_.empty() || host_.find('/') != std::string::npos) {
    throw InvalidArgumentError(what + ": endpoint " + endpoint + " must be scheme://host[:port] without a path");
  }
  // libcurl leaves default ports out of Host; the signed host must match what is sent.
  const std::string default_port = scheme_ == "https" ? ":443" : ":80";
  if (host_.size() > default_port.size() &&
      host_.compare(host_.size() - default_port.size(), default_port.size(), default_port) == 0) {
    host_.resize(host_.size() - default_port.size());
  }
  switch (config_.addressing) {
    case S3Addressing::kPath:
      virtual_hosted_ = false;
      break;
    case S3Addressing::kVirtualHosted:
      virtual_hosted_ = true;
      break;
    case S3Addressing::kAuto:
      // Dots in a bucket name break the *.s3 wildcard certificate, so those stay path-style.
      virtual_hosted_ = IsAwsHost(host_) && IsDnsCompatibleBucket(config_.bucket);
      break;
  }
  bypass_proxy_ = IsLoopbackHost(host_);
  retry_.max_attempts = std::max(1, config_.max_attempts);
  retry_.base_delay = config_.retry_base_delay;
  retry_.max_delay = config_.retry_max_delay;
  retry_.retryable = &IsRetryable;
}

S3Storage::~S3Storage() = default;

std::unique_ptr<S3Storage> S3Storage::Open(std::string_view uri, const StorageOptions& options) {
  const S3Location loc = ParseS3Uri(uri);
  const std::string what(uri);
  const s3::AwsProfile profile = s3::LoadAwsProfile();
  // Residency first: a refused region must not cost a single request, IMDS included.
  const s3::RegionChoice region = s3::ResolveRegion(options.region, profile);
  s3::RequireEuResidency(region, options.allow_non_eu_region, what);

  S3Config c;
  c.bucket = loc.bucket;
  c.prefix = loc.prefix;
  c.region = region.region;
  c.allow_non_eu_region = options.allow_non_eu_region;
  c.endpoint = options.endpoint;
  if (c.endpoint.empty()) c.endpoint = GetEnvOr("AWS_ENDPOINT_URL_S3", GetEnvOr("AWS_ENDPOINT_URL", ""));
  if (auto it = profile.config.find("s3.addressing_style"); it != profile.config.end()) {
    if (it->second == "path") c.addressing = S3Addressing::kPath;
    if (it->second == "virtual") c.addressing = S3Addressing::kVirtualHosted;
  }
  c.sse = options.sse.empty() ? "AES256" : options.sse;
  c.sse_kms_key_id = options.sse_kms_key_id;
  c.max_in_flight = std::max(1, options.max_in_flight);
  c.max_attempts = EnvInt("FRUITPIPE_S3_MAX_ATTEMPTS", c.max_attempts, 1, 100);
  return std::make_unique<S3Storage>(std::move(c), s3::DefaultCredentialsChain(profile, what, region.region));
}

std::string S3Storage::FullKey(std::string_view key) const { return JoinKey(config_.prefix, key); }

std::string S3Storage::Uri(std::string_view key) const {
  return "s3://" + config_.bucket + "/" + FullKey(key);
}

std::string S3Storage::ObjectUrl(std::string_view key) const {
  const std::string full = FullKey(key);
  if (virtual_hosted_) return scheme_ + "://" + config_.bucket + "." + host_ + "/" + s3::UriEncode(full, true);
  return scheme_ + "://" + host_ + "/" + config_.bucket + (full.empty() ? "" : "/" + s3::UriEncode(full, true));
}

s3::HeaderList S3Storage::EncryptionHeaders() const {
  HeaderList h = {{"x-amz-server-side-encryption", config_.sse}};
  if (!config_.sse_kms_key_id.empty()) {
    h.emplace_back("x-amz-server-side-encryption-aws-kms-key-id", config_.sse_kms_key_id);
  }
  return h;
}

HttpRequest S3Storage::Build(const Call& call) const {
  s3::SignableRequest s;
  s.method = call.method;
  std::string host;
  if (virtual_hosted_) {
    host = config_.bucket + "." + host_;
    s.path = "/" + call.key;
  } else {
    host = host_;
    // The bucket itself is "/bucket", never "/bucket/": some servers (s3rver) canonicalize the
    // trailing slash differently and reject the signature.
    s.path = "/" + config_.bucket + (call.key.empty() ? "" : "/" + call.key);
  }
  s.query = call.query;
  s.payload_sha256 = !call.payload_sha256.empty() ? call.payload_sha256
                     : call.body.empty()           ? std::string(kEmptySha256)
                                                   : Sha256Hex(call.body);
  s.headers = {{"host", host}, {"x-amz-content-sha256", s.payload_sha256}};
  s.headers.insert(s.headers.end(), call.headers.begin(), call.headers.end());

  HttpRequest req;
  req.method = call.method;
  req.url = scheme_ + "://" + host + s3::UriEncode(s.path, true);
  if (!s.query.empty()) req.url += "?" + s3::CanonicalQueryString(s.query);
  req.headers = s.headers;
  const HeaderList auth = signer_.Sign(s, credentials_->Get(), std::chrono::system_clock::now());
  req.headers.insert(req.headers.end(), auth.begin(), auth.end());
  req.body = call.body;
  req.connect_timeout = config_.connect_timeout;
  req.timeout = config_.request_timeout;
  req.bypass_proxy = bypass_proxy_;
  return req;
}

HttpResponse S3Storage::Perform(const Call& call) const {
  return http_->Perform(retry_, [&] { return Build(call); });
}

S3Storage::Failure S3Storage::Describe(const std::string& op, std::string_view key,
                                       const HttpResponse& r) const {
  const std::string uri = key.empty() && op == "LIST" ? Uri("") : Uri(key);
  const std::string failed =
      r.attempts > 1 ? op + " failed after " + std::to_string(r.attempts) + " attempts: " : op + " failed: ";
  if (r.status == 0) return {Failure::kIO, uri + ": " + failed + TransportCause(r)};

  const auto body = ParseErrorBody(r.body);
  const std::string code = body ? body->code : "";
  const std::string status = std::to_string(r.status);
  if (r.status == 404 && (code == "NoSuchKey" || code.empty()) && !key.empty()) {
    return {Failure::kNotFound, uri + ": no such key"};
  }
  if (code == "NoSuchBucket") {
    return {Failure::kInvalid, uri + ": " + failed + "bucket '" + config_.bucket + "' does not exist (NoSuchBucket)"};
  }
  std::string hint;
  if (code == "SignatureDoesNotMatch") {
    hint = "check AWS_SECRET_ACCESS_KEY; credentials from " + credentials_->Describe();
  } else if (code == "InvalidAccessKeyId") {
    hint = "check AWS_ACCESS_KEY_ID; credentials from " + credentials_->Describe();
  } else if (code == "ExpiredToken" || code == "InvalidToken" || code == "TokenRefreshRequired") {
    hint = "the session token is expired or invalid: refresh AWS_SESSION_TOKEN";
  } else if (code == "RequestTimeTooSkewed") {
    hint = "the system clock is off by more than 15 minutes";
  } else if (code == "AccessDenied" || (r.status == 403 && code.empty())) {
    hint = "the IAM or bucket policy does not allow this action; see docs/s3.md";
  } else if (code == "AuthorizationHeaderMalformed" || code == "PermanentRedirect" || r.status == 301) {
    hint = "the bucket is not in region " + config_.region + "; set --region or AWS_REGION";
  }
  if (!hint.empty()) {
    const std::string what = code.empty() ? status : code;
    return {Failure::kInvalid, uri + ": " + op + " access denied: " + what + " (" + hint + ")"};
  }
  std::string msg = uri + ": " + failed + status + (code.empty() ? "" : " " + code);
  if (body && !body->message.empty() && !IsRetryable(r)) msg += ": " + body->message;
  // Servers may echo request headers in messages; nothing secret leaves this function.
  std::string line = s3::RedactSecrets(msg);
  std::replace(line.begin(), line.end(), '\n', ' ');
  return {Failure::kIO, line};
}

void S3Storage::Throw(const std::string& op, std::string_view key, const HttpResponse& r) const {
  Failure f = Describe(op, key, r);
  switch (f.kind) {
    case Failure::kNotFound:
      throw NotFoundError(f.message);
    case Failure::kInvalid:
      throw InvalidArgumentError(f.message);
    case Failure::kIO:
      break;
  }
  throw IOError(f.message);
}

std::vector<ObjectInfo> S3Storage::List(std::string_view prefix) {
  const std::string root = config_.prefix.empty() ? "" : config_.prefix + "/";
  const std::string full = root + std::string(prefix);
  std::vector<ObjectInfo> out;
  std::string token;
  for (;;) {
    Call call;
    call.query = {{"list-type", "2"}, {"prefix", full}};
    if (!token.empty()) call.query.emplace_back("continuation-token", token);
    const HttpResponse r = Perform(call);
    if (!r.ok()) Throw("LIST", prefix, r);
    pugi::xml_document doc;
    if (!doc.load_buffer(r.body.data(), r.body.size())) {
      throw IOError(Uri(prefix) + ": LIST returned a response that is not XML");
    }
    const pugi::xml_node result = doc.child("ListBucketResult");
    if (!result) throw IOError(Uri(prefix) + ": LIST returned no ListBucketResult");
    for (pugi::xml_node c = result.child("Contents"); c; c = c.next_sibling("Contents")) {
      std::string key = c.child_value("Key");
      if (key.compare(0, root.size(), root) != 0) continue;
      out.push_back({key.substr(root.size()), c.child("Size").text().as_ullong()});
    }
    if (std::string_view(result.child_value("IsTruncated")) != "true") break;
    token = result.child_value("NextContinuationToken");
    if (token.empty()) throw IOError(Uri(prefix) + ": LIST is truncated but has no continuation token");
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.key < b.key; });
  // AWS never repeats a key across pages, but S3-compatible servers may at page boundaries
  // when they do not walk keys in order (s3rver does); a repeated key would be read twice.
  out.erase(std::unique(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.key == b.key; }),
            out.end());
  return out;
}

std::string S3Storage::Get(std::string_view key) {
  if (key.empty()) throw InvalidArgumentError(Uri(key) + ": GET needs a key");
  Call call;
  call.key = FullKey(key);
  HttpResponse r = Perform(call);
  if (!r.ok()) Throw("GET", key, r);
  return std::move(r.body);
}

void S3Storage::GetMany(const std::vector<std::string>& keys,
                        const std::function<void(FetchResult&&)>& on_result) {
  http_->Run(
      keys.size(), config_.max_in_flight, retry_,
      [&](std::size_t i) {
        Call call;
        call.key = FullKey(keys[i]);
        return Build(call);
      },
      [&](std::size_t i, HttpResponse&& r) {
        FetchResult result;
        result.key = keys[i];
        if (r.ok()) {
          result.ok = true;
          result.data = std::move(r.body);
        } else {
          const Failure f = Describe("GET", keys[i], r);
          if (f.kind != Failure::kNotFound) Throw("GET", keys[i], r);
          result.error = f.message;
        }
        on_result(std::move(result));
      });
}

void S3Storage::Put(std::string_view key, std::string_view data) {
  if (key.empty()) throw InvalidArgumentError(Uri(key) + ": PUT needs a key");
  if (data.size() > config_.multipart_threshold) {
    MultipartPut(key, data);
    return;
  }
  Call call;
  call.method = "PUT";
  call.key = FullKey(key);
  call.body = data;
  call.payload_sha256 = Sha256Hex(data);
  call.headers = EncryptionHeaders();
  const HttpResponse r = Perform(call);
  if (!r.ok()) Throw("PUT", key, r);
}

void S3Storage::MultipartPut(std::string_view key, std::string_view data) {
  Call init;
  init.method = "POST";
  init.key = FullKey(key);
  init.query = {{"uploads", ""}};
  init.headers = EncryptionHeaders();
  const HttpResponse started = Perform(init);
  if (!started.ok()) Throw("PUT (initiate multipart upload)", key, started);
  pugi::xml_document doc;
  doc.load_buffer(started.body.data(), started.body.size());
  const std::string upload_id = doc.child("InitiateMultipartUploadResult").child_value("UploadId");
  if (upload_id.empty()) throw IOError(Uri(key) + ": PUT: multipart upload started without an UploadId");

  try {
    const std::size_t part_size = config_.part_size;
    const std::size_t parts = (data.size() + part_size - 1) / part_size;
    std::vector<std::string> sha(parts), etags(parts);
    for (std::size_t i = 0; i < parts; ++i) sha[i] = Sha256Hex(data.substr(i * part_size, part_size));
    http_->Run(
        parts, config_.upload_parallelism, retry_,
        [&](std::size_t i) {
          Call part;
          part.method = "PUT";
          part.key = FullKey(key);
          part.query = {{"partNumber", std::to_string(i + 1)}, {"uploadId", upload_id}};
          part.body = data.substr(i * part_size, part_size);
          part.payload_sha256 = sha[i];
          return Build(part);
        },
        [&](std::size_t i, HttpResponse&& r) {
          if (!r.ok()) Throw("PUT (part " + std::to_string(i + 1) + ")", key, r);
          etags[i] = r.Header("etag");
          if (etags[i].empty()) {
            throw IOError(Uri(key) + ": PUT (part " + std::to_string(i + 1) + ") returned no ETag");
          }
        });

    pugi::xml_document complete;
    pugi::xml_node root = complete.append_child("CompleteMultipartUpload");
    root.append_attribute("xmlns") = "http://s3.amazonaws.com/doc/2006-03-01/";
    for (std::size_t i = 0; i < parts; ++i) {
      pugi::xml_node p = root.append_child("Part");
      p.append_child("PartNumber").text() = static_cast<unsigned long long>(i + 1);
      p.append_child("ETag").text() = etags[i].c_str();
    }
    std::ostringstream xml;
    complete.save(xml, "", pugi::format_raw);
    const std::string body = xml.str();
    Call finish;
    finish.method = "POST";
    finish.key = FullKey(key);
    finish.query = {{"uploadId", upload_id}};
    finish.headers = {{"content-type", "application/xml"}};
    finish.body = body;
    const HttpResponse done = Perform(finish);
    // CompleteMultipartUpload can fail after answering 200: the error is in the body.
    if (!done.ok() || ParseErrorBody(done.body)) {
      HttpResponse failed = done;
      if (failed.ok()) failed.status = 500;
      Throw("PUT (complete multipart upload)", key, failed);
    }
  } catch (const Error& e) {
    // Parts of an unfinished upload are stored (and billed) until aborted.
    Call abort;
    abort.method = "DELETE";
    abort.key = FullKey(key);
    abort.query = {{"uploadId", upload_id}};
    HttpResponse aborted;
    try {
      aborted = Perform(abort);
    } catch (const Error&) {
      aborted.status = 0;
    }
    const bool gone = aborted.ok() || aborted.status == 404;
    const std::string note = gone ? " (multipart upload aborted)"
                                  : " (aborting multipart upload " + upload_id + " failed: " +
                                        (aborted.status == 0 ? aborted.transport_error
                                                             : std::to_string(aborted.status)) +
                                        "; a lifecycle rule removes it, see docs/s3.md)";
    const std::string message = e.what() + note;
    if (dynamic_cast<const InvalidArgumentError*>(&e)) throw InvalidArgumentError(message);
    throw IOError(message);
  }
}

void S3Storage::Delete(std::string_view key) {
  if (key.empty()) throw InvalidArgumentError(Uri(key) + ": DELETE needs a key");
  Call call;
  call.method = "DELETE";
  call.key = FullKey(key);
  const HttpResponse r = Perform(call);
  if (!r.ok() && r.status != 404) Throw("DELETE", key, r);
}

bool S3Storage::Exists(std::string_view key) {
  if (key.empty()) return false;
  Call call;
  call.method = "HEAD";
  call.key = FullKey(key);
  const HttpResponse r = Perform(call);
  if (r.ok()) return true;
  if (r.status == 404) return false;
  Throw("HEAD", key, r);
}

void S3Storage::Rename(std::string_view from, std::string_view to) {
  if (from.empty() || to.empty()) throw InvalidArgumentError(Uri(from) + ": RENAME needs two keys");
  Call copy;
  copy.method = "PUT";
  copy.key = FullKey(to);
  copy.headers = EncryptionHeaders();
  copy.headers.emplace_back("x-amz-copy-source",
                            "/" + config_.bucket + "/" + s3::UriEncode(FullKey(from), true));
  HttpResponse r = Perform(copy);
  if (r.status == 404) Throw("COPY", from, r);
  // CopyObject can fail after answering 200: the error is in the body.
  if (r.ok() && ParseErrorBody(r.body)) r.status = 500;
  if (!r.ok()) Throw("COPY to " + Uri(to), from, r);
  Delete(from);
}

void S3Storage::DeleteMany(const std::vector<std::string>& keys) {
  const std::size_t batches = (keys.size() + kDeleteBatch - 1) / kDeleteBatch;
  std::vector<std::string> bodies(batches);
  for (std::size_t b = 0; b < batches; ++b) {
    pugi::xml_document doc;
    pugi::xml_node root = doc.append_child("Delete");
    root.append_attribute("xmlns") = "http://s3.amazonaws.com/doc/2006-03-01/";
    root.append_child("Quiet").text() = "true";
    for (std::size_t i = b * kDeleteBatch; i < std::min(keys.size(), (b + 1) * kDeleteBatch); ++i) {
      root.append_child("Object").append_child("Key").text() = FullKey(keys[i]).c_str();
    }
    std::ostringstream xml;
    doc.save(xml, "", pugi::format_raw);
    bodies[b] = xml.str();
  }
  http_->Run(
      batches, config_.upload_parallelism, retry_,
      [&](std::size_t b) {
        Call call;
        call.method = "POST";
        call.query = {{"delete", ""}};
        // DeleteObjects requires Content-MD5 (or a checksum header) on AWS.
        call.headers = {{"content-md5", Md5Base64(bodies[b])}, {"content-type", "application/xml"}};
        call.body = bodies[b];
        return Build(call);
      },
      [&](std::size_t b, HttpResponse&& r) {
        const std::string& first = keys[b * kDeleteBatch];
        if (!r.ok()) Throw("DELETE (batch)", first, r);
        pugi::xml_document doc;
        if (!doc.load_buffer(r.body.data(), r.body.size())) return;
        const pugi::xml_node error = doc.child("DeleteResult").child("Error");
        if (!error) return;
        const std::string full = error.child_value("Key");
        const std::string root = config_.prefix.empty() ? "" : config_.prefix + "/";
        const std::string key = full.compare(0, root.size(), root) == 0 ? full.substr(root.size()) : full;
        throw IOError(Uri(key) + ": DELETE (batch) failed: " + error.child_value("Code") + ": " +
                      s3::RedactSecrets(error.child_value("Message")));
      });
}

void RegisterS3Storage() {
  RegisterStorageScheme("s3", [](std::string_view uri, const StorageOptions& options) {
    return std::unique_ptr<Storage>(S3Storage::Open(uri, options));
  });
}

}  // namespace fruitpipe::storage
