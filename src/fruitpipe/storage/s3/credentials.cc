#include "fruitpipe/storage/s3/credentials.h"

#include <curl/curl.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <ctime>

#include "fruitpipe/common/env_vars.h"
#include "fruitpipe/common/error.h"

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

// "2024-05-01T12:00:00Z" (IMDS always answers in UTC).
std::optional<std::chrono::system_clock::time_point> ParseIso8601(const std::string& s) {
  std::tm tm{};
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6) {
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return std::chrono::system_clock::from_time_t(timegm(&tm));
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

ImdsCredentialsProvider::ImdsCredentialsProvider(Options options) : options_(std::move(options)) {
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

AwsCredentials ImdsCredentialsProvider::Get() {
  std::lock_guard lock(mu_);
  const auto now = std::chrono::system_clock::now();
  if (cached_ && cached_->expiration && now + options_.refresh_before < *cached_->expiration) {
    return *cached_;
  }
  const std::string where = "instance metadata (IMDSv2) at " + options_.endpoint;
  try {
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
    // The body holds the secret: error messages below name fields, never quote the body.
    const auto doc = nlohmann::json::parse(r.body, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) {
      throw IOError(where + ": credentials for role '" + role_ + "' are not a JSON object");
    }
    if (doc.contains("Code") && doc["Code"] != "Success") {
      throw IOError(where + ": credentials for role '" + role_ + "' have Code " +
                    doc["Code"].dump());
    }
    AwsCredentials c;
    for (const char* field : {"AccessKeyId", "SecretAccessKey", "Token", "Expiration"}) {
      if (!doc.contains(field) || !doc[field].is_string()) {
        throw IOError(where + ": credentials for role '" + role_ + "' lack " + field);
      }
    }
    c.access_key_id = doc["AccessKeyId"].get<std::string>();
    c.secret_access_key = doc["SecretAccessKey"].get<std::string>();
    c.session_token = doc["Token"].get<std::string>();
    c.expiration = ParseIso8601(doc["Expiration"].get<std::string>());
    if (!c.expiration) {
      throw IOError(where + ": credentials for role '" + role_ + "' have an unreadable Expiration");
    }
    cached_ = c;
    return c;
  } catch (const Error&) {
    // A refresh that fails while the old credentials still work is not fatal yet.
    if (cached_ && cached_->expiration && now < *cached_->expiration) return *cached_;
    throw;
  }
}

std::shared_ptr<CredentialsProvider> DefaultCredentialsChain(const AwsProfile& profile,
                                                             const std::string& what) {
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

  if (!MetadataDisabled()) {
    ImdsCredentialsProvider::Options o;
    if (auto endpoint = GetEnv("AWS_EC2_METADATA_SERVICE_ENDPOINT")) o.endpoint = *endpoint;
    return std::make_shared<ImdsCredentialsProvider>(std::move(o));
  }
  throw InvalidArgumentError(
      what + ": no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or keys for profile '" +
      profile.name + "' in " + profile.credentials_path +
      " (AWS_PROFILE), or run with an instance role (instance metadata is disabled by "
      "AWS_EC2_METADATA_DISABLED=true)");
}

}  // namespace fruitpipe::storage::s3
