#include "fruitpipe/storage/s3/sigv4.h"

#include <algorithm>
#include <ctime>
#include <map>
#include <regex>

#include "fruitpipe/common/hash.h"

namespace fruitpipe::storage::s3 {
namespace {

bool IsUnreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '-' || c == '.' || c == '_' || c == '~';
}

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// SigV4 "Trimall": no leading/trailing blanks, runs of spaces collapsed to one.
std::string TrimAll(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  bool in_space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t') {
      in_space = true;
      continue;
    }
    if (in_space && !out.empty()) out.push_back(' ');
    in_space = false;
    out.push_back(c);
  }
  return out;
}

std::string DigestBytes(const Sha256Digest& d) {
  return std::string(reinterpret_cast<const char*>(d.data()), d.size());
}

bool IsSignerHeader(const std::string& lower_name) {
  return lower_name == "x-amz-date" || lower_name == "x-amz-security-token" ||
         lower_name == "authorization";
}

}  // namespace

std::string UriEncode(std::string_view s, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3 / 2);
  for (unsigned char c : s) {
    if (IsUnreserved(c) || (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

std::string CanonicalQueryString(const std::vector<std::pair<std::string, std::string>>& query) {
  std::vector<std::pair<std::string, std::string>> encoded;
  encoded.reserve(query.size());
  for (const auto& [name, value] : query) {
    encoded.emplace_back(UriEncode(name, false), UriEncode(value, false));
  }
  std::sort(encoded.begin(), encoded.end());
  std::string out;
  for (const auto& [name, value] : encoded) {
    if (!out.empty()) out.push_back('&');
    out.append(name).append("=").append(value);
  }
  return out;
}

std::string AmzDate(std::chrono::system_clock::time_point t) {
  const std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

SigV4Signer::SigV4Signer(std::string region, std::string service)
    : region_(std::move(region)), service_(std::move(service)) {}

std::string SigV4Signer::Scope(std::string_view date) const {
  return std::string(date) + "/" + region_ + "/" + service_ + "/aws4_request";
}

std::string SigV4Signer::CanonicalRequest(const SignableRequest& request,
                                          std::string* signed_headers) const {
  // Repeated headers are signed as one, values joined with ',' in their order.
  std::map<std::string, std::string> headers;
  for (const auto& [name, value] : request.headers) {
    auto [it, inserted] = headers.emplace(Lower(name), TrimAll(value));
    if (!inserted) it->second.append(",").append(TrimAll(value));
  }
  std::string canonical_headers, names;
  for (const auto& [name, value] : headers) {
    canonical_headers.append(name).append(":").append(value).append("\n");
    if (!names.empty()) names.push_back(';');
    names.append(name);
  }
  if (signed_headers != nullptr) *signed_headers = names;
  std::string out;
  out.append(request.method).append("\n");
  out.append(UriEncode(request.path.empty() ? "/" : request.path, true)).append("\n");
  out.append(CanonicalQueryString(request.query)).append("\n");
  out.append(canonical_headers).append("\n");
  out.append(names).append("\n");
  out.append(request.payload_sha256);
  return out;
}

std::string SigV4Signer::StringToSign(std::string_view amz_date,
                                      std::string_view canonical_request) const {
  std::string out = "AWS4-HMAC-SHA256\n";
  out.append(amz_date).append("\n");
  out.append(Scope(amz_date.substr(0, 8))).append("\n");
  out.append(Sha256Hex(canonical_request));
  return out;
}

HeaderList SigV4Signer::Sign(const SignableRequest& request, const AwsCredentials& credentials,
                             std::chrono::system_clock::time_point now) const {
  const std::string amz_date = AmzDate(now);
  HeaderList added = {{"x-amz-date", amz_date}};
  if (!credentials.session_token.empty()) {
    added.emplace_back("x-amz-security-token", credentials.session_token);
  }

  SignableRequest signable;
  signable.method = request.method;
  signable.path = request.path;
  signable.query = request.query;
  signable.payload_sha256 = request.payload_sha256;
  for (const auto& h : request.headers) {
    if (!IsSignerHeader(Lower(h.first))) signable.headers.push_back(h);
  }
  signable.headers.insert(signable.headers.end(), added.begin(), added.end());

  std::string signed_headers;
  const std::string canonical = CanonicalRequest(signable, &signed_headers);
  const std::string string_to_sign = StringToSign(amz_date, canonical);

  const std::string date = amz_date.substr(0, 8);
  const std::string k_date = DigestBytes(HmacSha256("AWS4" + credentials.secret_access_key, date));
  const std::string k_region = DigestBytes(HmacSha256(k_date, region_));
  const std::string k_service = DigestBytes(HmacSha256(k_region, service_));
  const std::string k_signing = DigestBytes(HmacSha256(k_service, "aws4_request"));
  const std::string signature = HmacSha256Hex(k_signing, string_to_sign);

  added.emplace_back("authorization", "AWS4-HMAC-SHA256 Credential=" + credentials.access_key_id +
                                          "/" + Scope(date) + ", SignedHeaders=" +
                                          signed_headers + ", Signature=" + signature);
  return added;
}

std::string RedactSecrets(std::string_view text) {
  static const std::regex kPatterns[] = {
      std::regex(R"((authorization["']?\s*[:=]\s*)[^\r\n]*)", std::regex::icase),
      std::regex(R"((x-amz-security-token["']?\s*[:=]\s*)[^\s&"'<,;]+)", std::regex::icase),
      std::regex(R"((x-amz-credential["']?\s*[:=]\s*)[^\s&"'<,;]+)", std::regex::icase),
      std::regex(R"((signature=)[0-9a-f]+)", std::regex::icase),
      std::regex(
          R"((["']?(secretaccesskey|secret_access_key|aws_secret_access_key|sessiontoken|aws_session_token|token)["']?\s*[:=]\s*["']?)[^"'\s,}&]+)",
          std::regex::icase),
  };
  std::string out(text);
  for (const auto& re : kPatterns) out = std::regex_replace(out, re, "$1[REDACTED]");
  return out;
}

}  // namespace fruitpipe::storage::s3
