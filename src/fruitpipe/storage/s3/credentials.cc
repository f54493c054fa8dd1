#include "fruitpipe/storage/s3/credentials.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>

#include <nlohmann/json.hpp>
#include <pugixml.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <ctime>

#include "fruitpipe/common/env_vars.h"
#include "fruitpipe/common/error.h"
#include "fruitpipe/storage/s3/region.h"

namespace fruitpipe::storage::s3 {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// "2024-05-01T12:00:00Z", also with fractional seconds ("...:00.123Z") or an offset
// ("...:00+02:00"); IMDS, the container endpoints and STS answer in UTC.
std::optional<std::chrono::system_clock::time_point> ParseIso8601(const std::string& s) {
  std::tm tm{};
  int consumed = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6) {
    return std::nullopt;
  }
  std::string_view rest = std::string_view(s).substr(static_cast<std::size_t>(consumed));
  if (!rest.empty() && rest.front() == '.') {
    rest.remove_prefix(1);
    while (!rest.empty() && std::isdigit(static_cast<unsigned char>(rest.front()))) rest.remove_prefix(1);
  }
  long offset_s = 0;
  if (!rest.empty() && (rest.front() == '+' || rest.front() == '-')) {
    int hh = 0, mm = 0;
    const std::string off(rest.substr(1));
    if (std::sscanf(off.c_str(), "%2d:%2d", &hh, &mm) != 2) return std::nullopt;
    offset_s = (rest.front() == '+' ? 1 : -1) * (hh * 3600L + mm * 60L);
  } else if (!rest.empty() && rest != "Z" && rest != "z") {
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return std::chrono::system_clock::from_time_t(timegm(&tm)) - std::chrono::seconds(offset_s);
}

// The JSON document of IMDS and of the container endpoints: AccessKeyId, SecretAccessKey,
// Token, Expiration (and Code on IMDS). `what` prefixes messages ("...: credentials"). The body
// holds the secret: messages name fields, never quote the body.
AwsCredentials CredentialsFromJson(const std::string& body, const std::string& what) {
  const auto doc = nlohmann::json::parse(body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) throw IOError(what + " are not a JSON object");
  if (doc.contains("Code") && doc["Code"] != "Success") {
    throw IOError(what + " have Code " + (doc["Code"].is_string() ? doc["Code"].dump() : "(not a string)"));
  }
  for (const char* field : {"AccessKeyId", "SecretAccessKey", "Token", "Expiration"}) {
    if (!doc.contains(field) || !doc[field].is_string() || doc[field].get_ref<const std::string&>().empty()) {
      throw IOError(what + " lack " + field);
    }
  }
  AwsCredentials c;
  c.access_key_id = doc["AccessKeyId"].get<std::string>();
  c.secret_access_key = doc["SecretAccessKey"].get<std::string>();
  c.session_token = doc["Token"].get<std::string>();
  c.expiration = ParseIso8601(doc["Expiration"].get<std::string>());
  if (!c.expiration) throw IOError(what + " have an unreadable Expiration");
  return c;
}

// A short, printable, one-line excerpt of a server's message for an error, with `secret`
// (the token sent) cut out should the server echo it, and signatures/tokens redacted.
std::string ServerMessage(std::string text, const std::string& secret) {
  if (!secret.empty()) {
    for (auto at = text.find(secret); at != std::string::npos; at = text.find(secret, at)) {
      text.replace(at, secret.size(), "<token>");
    }
  }
  text = RedactSecrets(text);
  for (char& ch : text) {
    if (static_cast<unsigned char>(ch) < 0x20) ch = ' ';
  }
  if (text.size() > 200) text = text.substr(0, 200) + "...";
  return text;
}

struct UrlParts {
  std::string scheme;    // lower-case
  std::string host;      // lower-case; IPv6 without brackets
  std::string hostport;  // as written, without user info
};

std::optional<UrlParts> ParseUrl(std::string_view url) {
  const auto sep = url.find("://");
  if (sep == std::string_view::npos || sep == 0) return std::nullopt;
  UrlParts u;
  u.scheme = Lower(url.substr(0, sep));
  std::string_view authority = url.substr(sep + 3);
  authority = authority.substr(0, authority.find_first_of("/?#"));
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) authority.remove_prefix(at + 1);
  if (authority.empty()) return std::nullopt;
  u.hostport = std::string(authority);
  if (authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    u.host = Lower(authority.substr(1, close - 1));
  } else {
    u.host = Lower(authority.substr(0, authority.find(':')));
  }
  if (u.host.empty()) return std::nullopt;
  return u;
}

// 127.0.0.0/8, ::1 or "localhost" (an IP literal, not a name that merely starts with 127.).
bool IsLoopbackHost(const std::string& host) {
  if (host == "localhost") return true;
  in_addr v4{};
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  return ::inet_pton(AF_INET6, host.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

// Hosts plain http may reach for container credentials, as in the AWS SDKs: loopback, the ECS
// agent (169.254.170.2) and the EKS Pod Identity agent (169.254.170.23, fd00:ec2::23).
bool IsContainerHttpHost(const std::string& host) {
  if (IsLoopbackHost(host)) return true;
  in_addr v4{};
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    const std::uint32_t a = ntohl(v4.s_addr);
    return a == 0xA9FEAA02u /* 169.254.170.2 */ || a == 0xA9FEAA17u /* 169.254.170.23 */;
  }
  in6_addr v6{}, eks{};
  ::inet_pton(AF_INET6, "fd00:ec2::23", &eks);
  return ::inet_pton(AF_INET6, host.c_str(), &v6) == 1 && std::memcmp(&v6, &eks, sizeof v6) == 0;
}

// The answer of a container endpoint that refused: its "code" when it is a plain word.
std::string ErrorCodeOf(const std::string& body) {
  const auto doc = nlohmann::json::parse(body, nullptr, false);
  if (!doc.is_object()) return {};
  for (const char* key : {"code", "Code"}) {
    if (doc.contains(key) && doc[key].is_string()) {
      const std::string code = doc[key].get<std::string>();
      const bool word = !code.empty() && code.size() <= 64 &&
                        std::all_of(code.begin(), code.end(), [](unsigned char c) {
                          return std::isalnum(c) || c == '_' || c == '-' || c == '.';
                        });
      return word ? code : std::string();
    }
  }
  return {};
}

// An XML child by local name (STS answers in a default namespace; a prefix is tolerated).
pugi::xml_node Child(const pugi::xml_node& parent, std::string_view name) {
  for (pugi::xml_node c = parent.first_child(); c; c = c.next_sibling()) {
    if (c.type() != pugi::node_element) continue;
    std::string_view n = c.name();
    if (const auto colon = n.find(':'); colon != std::string_view::npos) n.remove_prefix(colon + 1);
    if (n == name) return c;
  }
  return {};
}

bool MetadataDisabled() {
  return Lower(GetEnvOr("AWS_EC2_METADATA_DISABLED", "")) == "true";
}

std::string Home() { return GetEnvOr("HOME", "/"); }

IniSection ReadSection(const std::string& path, const std::string& profile, bool config_file) {
  std::string text;
  try {
    text = ReadLocalFile(path);
  } catch (const NotFoundError&) {
    return {};
  }
  auto sections = ParseAwsIni(text, config_file);
  auto it = sections.find(profile);
  return it == sections.end() ? IniSection{} : it->second;
}

}  // namespace

StaticCredentialsProvider::StaticCredentialsProvider(AwsCredentials credentials,
                                                     std::string description)
    : credentials_(std::move(credentials)), description_(std::move(description)) {}

std::map<std::string, IniSection> ParseAwsIni(std::string_view text, bool config_file) {
  std::map<std::string, IniSection> out;
  IniSection* section = nullptr;
  IniSection ignored;  // sections that are not profiles ([sso-session x], [services x])
  std::string parent;  // a "key =" line with no value opens nested "  sub = value" lines
  while (!text.empty()) {
    const auto eol = text.find('\n');
    std::string_view raw = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
    const bool indented = !raw.empty() && (raw.front() == ' ' || raw.front() == '\t');
    const std::string_view line = Trim(raw);
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    if (line.front() == '[') {
      const auto close = line.find(']');
      std::string name(Trim(line.substr(1, close == std::string_view::npos ? line.size() - 1 : close - 1)));
      parent.clear();
      if (config_file && name != "default") {
        if (name.rfind("profile ", 0) != 0) {
          section = &ignored;
          continue;
        }
        name = std::string(Trim(std::string_view(name).substr(8)));
      }
      section = &out[name];
      continue;
    }
    if (section == nullptr) continue;
    const auto eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    const std::string key = Lower(Trim(line.substr(0, eq)));
    const std::string value(Trim(line.substr(eq + 1)));
    if (indented && !parent.empty()) {
      (*section)[parent + "." + key] = value;
      continue;
    }
    parent = value.empty() ? key : std::string();
    (*section)[key] = value;
  }
  return out;
}

AwsProfile LoadAwsProfile() {
  AwsProfile p;
  p.name = GetEnvOr("AWS_PROFILE", "default");
  p.credentials_path = GetEnvOr("AWS_SHARED_CREDENTIALS_FILE", Home() + "/.aws/credentials");
  p.config_path = GetEnvOr("AWS_CONFIG_FILE", Home() + "/.aws/config");
  p.credentials = ReadSection(p.credentials_path, p.name, false);
  p.config = ReadSection(p.config_path, p.name, true);
  return p;
}

AwsCredentials RefreshingCredentialsProvider::Get() {
  std::lock_guard lock(mu_);
  const auto now = std::chrono::system_clock::now();
  if (cached_ && (!cached_->expiration || now + refresh_before_ < *cached_->expiration)) return *cached_;
  try {
    cached_ = Fetch();
    return *cached_;
  } catch (const Error&) {
    // A refresh that fails while the old credentials still work is not fatal yet.
    if (cached_ && cached_->expiration && now < *cached_->expiration) return *cached_;
    throw;
  }
}

ImdsCredentialsProvider::ImdsCredentialsProvider(Options options)
    : RefreshingCredentialsProvider(options.refresh_before), options_(std::move(options)) {
  while (!options_.endpoint.empty() && options_.endpoint.back() == '/') options_.endpoint.pop_back();
}

std::string ImdsCredentialsProvider::Describe() const {
  return "instance role" + (role_.empty() ? std::string() : " '" + role_ + "'") +
         " (IMDSv2 at " + options_.endpoint + ")";
}

HttpResponse ImdsCredentialsProvider::Call(const std::string& method, const std::string& path,
                                           const HeaderList& headers) {
  RetryPolicy retry;
  retry.max_attempts = options_.max_attempts;
  retry.base_delay = std::chrono::milliseconds(50);
  retry.max_delay = std::chrono::milliseconds(500);
  retry.retryable = [](const HttpResponse& r) {
    // Unreachable is final (not on an instance); a reset or a 5xx is worth another try.
    if (r.transport_code == CURLE_COULDNT_CONNECT || r.transport_code == CURLE_OPERATION_TIMEDOUT)
      return false;
    return r.status == 0 || r.status >= 500;
  };
  return http_.Perform(retry, [&] {
    HttpRequest req;
    req.method = method;
    req.url = options_.endpoint + path;
    req.headers = headers;
    req.connect_timeout = options_.connect_timeout;
    req.timeout = options_.timeout;
    req.bypass_proxy = true;
    return req;
  });
}

std::string ImdsCredentialsProvider::Token() {
  const auto now = std::chrono::steady_clock::now();
  if (!token_.empty() && now + std::chrono::seconds(60) < token_expiry_) return token_;
  const HttpResponse r = Call("PUT", "/latest/api/token",
                              {{"X-aws-ec2-metadata-token-ttl-seconds",
                                std::to_string(options_.token_ttl.count())}});
  if (r.status == 0) {
    throw IOError("instance metadata (IMDSv2) at " + options_.endpoint +
                  ": unreachable: " + r.transport_error);
  }
  if (r.status != 200 || r.body.empty()) {
    throw IOError("instance metadata (IMDSv2) at " + options_.endpoint + ": token request got HTTP " +
                  std::to_string(r.status));
  }
  token_ = std::string(Trim(r.body));
  token_expiry_ = now + options_.token_ttl;
  return token_;
}

AwsCredentials ImdsCredentialsProvider::Fetch() {
  const std::string where = "instance metadata (IMDSv2) at " + options_.endpoint;
  const std::string base = "/latest/meta-data/iam/security-credentials/";
  HttpResponse roles;
  for (int round = 0; round < 2; ++round) {
    roles = Call("GET", base, {{"X-aws-ec2-metadata-token", Token()}});
    if (roles.status != 401) break;
    token_.clear();  // the session token expired or was revoked: get a new one once
  }
  if (roles.status == 404) throw IOError(where + ": no IAM role is attached to this instance");
  if (roles.status != 200) {
    throw IOError(where + ": role listing got " +
                  (roles.status == 0 ? roles.transport_error : "HTTP " + std::to_string(roles.status)));
  }
  std::string_view body = Trim(roles.body);
  role_ = std::string(Trim(body.substr(0, body.find('\n'))));
  if (role_.empty()) throw IOError(where + ": no IAM role is attached to this instance");

  const HttpResponse r = Call("GET", base + role_, {{"X-aws-ec2-metadata-token", Token()}});
  if (r.status != 200) {
    throw IOError(where + ": credentials for role '" + role_ + "' got " +
                  (r.status == 0 ? r.transport_error : "HTTP " + std::to_string(r.status)));
  }
  return CredentialsFromJson(r.body, where + ": credentials for role '" + role_ + "'");
}

ContainerCredentialsProvider::ContainerCredentialsProvider(Options options)
    : RefreshingCredentialsProvider(options.refresh_before), options_(std::move(options)) {
  const auto url = ParseUrl(options_.url);
  where_ = "container credentials (" + (url ? url->scheme + "://" + url->hostport : std::string("?")) + ")";
}

std::string ContainerCredentialsProvider::Describe() const { return where_; }

AwsCredentials ContainerCredentialsProvider::Fetch() {
  std::string authorization = options_.authorization;
  std::string from = "AWS_CONTAINER_AUTHORIZATION_TOKEN";
  if (!options_.authorization_file.empty()) {
    // EKS Pod Identity rotates the token file: read it for every fetch.
    try {
      authorization = ReadLocalFile(options_.authorization_file);
    } catch (const Error& e) {
      throw IOError(where_ + ": authorization token file: " + e.what());
    }
    from = options_.authorization_file;
  }
  authorization = std::string(Trim(authorization));
  if (authorization.find_first_of("\r\n") != std::string::npos) {
    throw InvalidArgumentError(where_ + ": the authorization token (" + from + ") contains a line break");
  }
  HeaderList headers = {{"Accept", "application/json"}};
  if (!authorization.empty()) headers.emplace_back("Authorization", authorization);
  const auto url = ParseUrl(options_.url);
  const bool local = url && IsContainerHttpHost(url->host);

  RetryPolicy retry;
  retry.max_attempts = options_.max_attempts;
  retry.base_delay = std::chrono::milliseconds(50);
  retry.max_delay = std::chrono::milliseconds(500);
  retry.retryable = [](const HttpResponse& r) { return r.status == 0 || r.status == 429 || r.status >= 500; };
  const HttpResponse r = http_.Perform(retry, [&] {
    HttpRequest req;
    req.url = options_.url;
    req.headers = headers;
    req.connect_timeout = options_.connect_timeout;
    req.timeout = options_.timeout;
    req.bypass_proxy = local;  // the agents are link-local: never through a proxy
    return req;
  });
  if (r.status == 0) throw IOError(where_ + ": unreachable: " + r.transport_error);
  if (r.status != 200) {
    const std::string code = ErrorCodeOf(r.body);
    throw IOError(where_ + ": HTTP " + std::to_string(r.status) + (code.empty() ? "" : " " + code) +
                  (r.status == 401 || r.status == 403 ? " (check the authorization token, " + from + ")" : ""));
  }
  return CredentialsFromJson(r.body, where_ + ": credentials");
}

std::optional<ContainerCredentialsProvider::Options> ContainerOptionsFromEnvironment(const std::string& what) {
  ContainerCredentialsProvider::Options o;
  if (auto relative = GetEnv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")) {
    o.url = std::string(kEcsCredentialsHost) + (relative->front() == '/' ? "" : "/") + *relative;
  } else if (auto full = GetEnv("AWS_CONTAINER_CREDENTIALS_FULL_URI")) {
    const auto url = ParseUrl(*full);
    // The URI itself can carry a secret: messages name its scheme and host only.
    if (!url || (url->scheme != "http" && url->scheme != "https")) {
      throw InvalidArgumentError(what + ": AWS_CONTAINER_CREDENTIALS_FULL_URI is not an http:// or https:// URL");
    }
    if (url->scheme == "http" && !IsContainerHttpHost(url->host)) {
      throw InvalidArgumentError(what + ": AWS_CONTAINER_CREDENTIALS_FULL_URI names http://" + url->hostport +
                                 ": plain http is only allowed to a loopback host or the ECS/EKS "
                                 "agents (169.254.170.2, 169.254.170.23, [fd00:ec2::23]); use https");
    }
    o.url = *full;
  } else {
    return std::nullopt;
  }
  o.authorization = GetEnvOr("AWS_CONTAINER_AUTHORIZATION_TOKEN", "");
  o.authorization_file = GetEnvOr("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "");
  return o;
}

WebIdentityCredentialsProvider::WebIdentityCredentialsProvider(Options options)
    : RefreshingCredentialsProvider(options.refresh_before), options_(std::move(options)) {
  while (!options_.endpoint.empty() && options_.endpoint.back() == '/') options_.endpoint.pop_back();
}

std::string WebIdentityCredentialsProvider::Describe() const {
  return "web identity (role " + options_.role_arn + ", token file " + options_.token_file + ", STS at " +
         options_.endpoint + ")";
}

AwsCredentials WebIdentityCredentialsProvider::Fetch() {
  const std::string where = Describe();
  std::string token;
  try {
    token = ReadLocalFile(options_.token_file);  // rotated by the kubelet: read for every fetch
  } catch (const Error& e) {
    throw IOError(where + ": " + e.what());
  }
  token = std::string(Trim(token));
  if (token.empty()) throw IOError(where + ": the token file is empty");

  // Unsigned: the web identity token is the proof. POSTed, so that the token is in no URL.
  const std::string body = "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=" +
                           UriEncode(options_.role_arn, false) +
                           "&RoleSessionName=" + UriEncode(options_.session_name, false) +
                           "&WebIdentityToken=" + UriEncode(token, false);
  const auto url = ParseUrl(options_.endpoint);
  const bool loopback = url && IsLoopbackHost(url->host);
  RetryPolicy retry;
  retry.max_attempts = options_.max_attempts;
  retry.base_delay = std::chrono::milliseconds(100);
  retry.max_delay = std::chrono::milliseconds(1000);
  retry.retryable = [](const HttpResponse& r) {
    if (r.status == 0 || r.status == 429 || r.status >= 500) return true;
    // The identity provider's keys could not be fetched, or STS throttles: worth another try.
    return r.status == 400 && (r.body.find("IDPCommunicationError") != std::string::npos ||
                               r.body.find("<Code>Throttling</Code>") != std::string::npos);
  };
  const HttpResponse r = http_.Perform(retry, [&] {
    HttpRequest req;
    req.method = "POST";
    req.url = options_.endpoint + "/";
    req.headers = {{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"},
                   {"Accept", "text/xml"}};
    req.body = body;
    req.connect_timeout = options_.connect_timeout;
    req.timeout = options_.timeout;
    req.bypass_proxy = loopback;
    return req;
  });
  if (r.status == 0) throw IOError(where + ": unreachable: " + r.transport_error);

  pugi::xml_document doc;
  const bool parsed = doc.load_buffer(r.body.data(), r.body.size());
  if (r.status != 200) {
    std::string detail;
    if (parsed) {
      const pugi::xml_node error = Child(Child(doc, "ErrorResponse"), "Error");
      const std::string code = Child(error, "Code").text().as_string();
      const std::string message = Child(error, "Message").text().as_string();
      if (!code.empty()) detail = " " + ServerMessage(code, token);
      if (!message.empty()) detail += ": " + ServerMessage(message, token);
    }
    throw IOError(where + ": AssumeRoleWithWebIdentity got HTTP " + std::to_string(r.status) + detail);
  }
  if (!parsed) throw IOError(where + ": the AssumeRoleWithWebIdentity answer is not XML");
  const pugi::xml_node creds =
      Child(Child(Child(doc, "AssumeRoleWithWebIdentityResponse"), "AssumeRoleWithWebIdentityResult"),
            "Credentials");
  if (!creds) {
    throw IOError(where + ": the AssumeRoleWithWebIdentity answer has no "
                          "AssumeRoleWithWebIdentityResult/Credentials");
  }
  std::map<std::string, std::string> fields;
  for (const char* field : {"AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"}) {
    // pugixml has already replaced entities (&amp; &lt; &#43; ...).
    const std::string value(Trim(Child(creds, field).text().as_string()));
    if (value.empty()) throw IOError(where + ": the AssumeRoleWithWebIdentity credentials lack " + field);
    fields[field] = value;
  }
  AwsCredentials c{fields["AccessKeyId"], fields["SecretAccessKey"], fields["SessionToken"],
                   ParseIso8601(fields["Expiration"])};
  if (!c.expiration) {
    throw IOError(where + ": the AssumeRoleWithWebIdentity credentials have an unreadable Expiration");
  }
  return c;
}

std::string StsEndpoint(const std::string& region) {
  if (auto e = GetEnv("AWS_ENDPOINT_URL_STS")) return *e;
  if (auto e = GetEnv("AWS_ENDPOINT_URL")) return *e;
  // Regional, never the global sts.amazonaws.com (us-east-1): the call stays in the region.
  return "https://sts." + region + (region.rfind("cn-", 0) == 0 ? ".amazonaws.com.cn" : ".amazonaws.com");
}

std::optional<WebIdentityCredentialsProvider::Options> WebIdentityOptionsFromEnvironment(
    const std::string& region, const std::string& what) {
  const auto token_file = GetEnv("AWS_WEB_IDENTITY_TOKEN_FILE");
  const auto role_arn = GetEnv("AWS_ROLE_ARN");
  if (!token_file && !role_arn) return std::nullopt;
  if (!token_file || !role_arn) {
    throw InvalidArgumentError(what + ": " + (token_file ? "AWS_WEB_IDENTITY_TOKEN_FILE" : "AWS_ROLE_ARN") +
                               " is set but " + (token_file ? "AWS_ROLE_ARN" : "AWS_WEB_IDENTITY_TOKEN_FILE") +
                               " is not");
  }
  WebIdentityCredentialsProvider::Options o;
  o.token_file = *token_file;
  o.role_arn = *role_arn;
  if (auto name = GetEnv("AWS_ROLE_SESSION_NAME")) {
    o.session_name = *name;
  } else {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
    o.session_name = "fruitpipe-" + std::to_string(ms);
  }
  o.endpoint = StsEndpoint(region);
  return o;
}

// The order of the AWS SDKs' default chains (the Rust and C++ SDKs, JS v3 fromNodeProviderChain):
// environment, shared files (profile), web identity, container endpoint, instance metadata.
// Java v2 and botocore put web identity before the profile; they differ only when a machine
// has both, which the EKS pods this step is for do not.
std::shared_ptr<CredentialsProvider> DefaultCredentialsChain(const AwsProfile& profile,
                                                             const std::string& what,
                                                             const std::string& region) {
  const auto key_id = GetEnv("AWS_ACCESS_KEY_ID");
  const auto secret = GetEnv("AWS_SECRET_ACCESS_KEY");
  if (key_id && secret) {
    AwsCredentials c{*key_id, *secret, GetEnvOr("AWS_SESSION_TOKEN", ""), std::nullopt};
    return std::make_shared<StaticCredentialsProvider>(std::move(c), "environment");
  }
  if (key_id || secret) {
    throw InvalidArgumentError(what + ": " + (key_id ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY") +
                               " is set but " + (key_id ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID") +
                               " is not");
  }

  for (const auto* section : {&profile.credentials, &profile.config}) {
    auto id = section->find("aws_access_key_id");
    auto sk = section->find("aws_secret_access_key");
    if (id == section->end() || sk == section->end() || id->second.empty() || sk->second.empty())
      continue;
    AwsCredentials c{id->second, sk->second, {}, std::nullopt};
    if (auto tok = section->find("aws_session_token"); tok != section->end()) c.session_token = tok->second;
    const std::string& path = section == &profile.credentials ? profile.credentials_path : profile.config_path;
    return std::make_shared<StaticCredentialsProvider>(std::move(c),
                                                       "profile '" + profile.name + "' (" + path + ")");
  }
  if (GetEnv("AWS_PROFILE") && profile.credentials.empty() && profile.config.empty()) {
    throw InvalidArgumentError(what + ": AWS_PROFILE names profile '" + profile.name +
                               "', which is in neither " + profile.credentials_path + " nor " +
                               profile.config_path);
  }

  if (auto o = WebIdentityOptionsFromEnvironment(
          region.empty() ? ResolveRegion("", profile).region : region, what)) {
    return std::make_shared<WebIdentityCredentialsProvider>(std::move(*o));
  }
  if (auto o = ContainerOptionsFromEnvironment(what)) {
    return std::make_shared<ContainerCredentialsProvider>(std::move(*o));
  }

  if (!MetadataDisabled()) {
    ImdsCredentialsProvider::Options o;
    if (auto endpoint = GetEnv("AWS_EC2_METADATA_SERVICE_ENDPOINT")) o.endpoint = *endpoint;
    return std::make_shared<ImdsCredentialsProvider>(std::move(o));
  }
  throw InvalidArgumentError(
      what + ": no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or keys for profile '" +
      profile.name + "' in " + profile.credentials_path +
      " (AWS_PROFILE), or AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN (EKS), or "
      "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI / _FULL_URI (ECS, AWS Batch, EKS Pod Identity), or run "
      "with an instance role (instance metadata is disabled by AWS_EC2_METADATA_DISABLED=true)");
}

}  // namespace fruitpipe::storage::s3
