// The credentials chain, profile files, region resolution, and the providers that fetch
// against local cpp-httplib servers on 127.0.0.1: the EC2 metadata service (IMDSv2), the
// container credentials endpoint (ECS, AWS Batch, EKS Pod Identity) and STS
// AssumeRoleWithWebIdentity (EKS IRSA); then the keys they hand out, signed and verified by
// s3rver.
#include "fruitpipe/storage/s3/credentials.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "fruitpipe/common/error.h"
#include "fruitpipe/common/testing.h"
#include "fruitpipe/storage/s3/harness.h"
#include "fruitpipe/storage/s3/region.h"
#include "fruitpipe/storage/s3/s3_storage.h"
#include "fruitpipe/storage/s3/test_util.h"

namespace fruitpipe::storage::s3 {
namespace {

using namespace std::chrono_literals;

std::string Iso8601(std::chrono::system_clock::time_point t) {
  const std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// The EC2 instance metadata service, IMDSv2 only: every metadata GET needs a token from
// PUT /latest/api/token (with a TTL header), as on instances that enforce IMDSv2.
class FakeImds {
 public:
  FakeImds() {
    server_.Put("/latest/api/token", [this](const httplib::Request& req, httplib::Response& res) {
      ++token_requests;
      if (!req.has_header("X-aws-ec2-metadata-token-ttl-seconds")) {
        res.status = 400;
        return;
      }
      std::lock_guard lock(mu_);
      token_ = "token-" + std::to_string(token_requests.load());
      res.set_content(token_, "text/plain");
    });
    server_.Get("/latest/meta-data/iam/security-credentials/",
                [this](const httplib::Request& req, httplib::Response& res) {
                  if (!Authorized(req, res)) return;
                  res.set_content(role + "\n", "text/plain");
                });
    server_.Get(R"(/latest/meta-data/iam/security-credentials/([^/]+))",
                [this](const httplib::Request& req, httplib::Response& res) {
                  if (!Authorized(req, res)) return;
                  if (req.matches[1] != role) {
                    res.status = 404;
                    return;
                  }
                  ++credential_requests;
                  std::lock_guard lock(mu_);
                  res.set_content(document_.dump(), "application/json");
                });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // bind_to_any_port already listens: early connections wait in the backlog.
  }
  ~FakeImds() {
    server_.stop();
    thread_.join();
  }

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

  void SetCredentials(const std::string& key_id, const std::string& secret, const std::string& token,
                      std::chrono::system_clock::time_point expiration) {
    std::lock_guard lock(mu_);
    document_ = {{"Code", "Success"},       {"Type", "AWS-HMAC"},        {"AccessKeyId", key_id},
                 {"SecretAccessKey", secret}, {"Token", token},          {"Expiration", Iso8601(expiration)},
                 {"LastUpdated", Iso8601(std::chrono::system_clock::now())}};
  }
  void SetDocument(nlohmann::json doc) {
    std::lock_guard lock(mu_);
    document_ = std::move(doc);
  }
  void RevokeToken() {
    std::lock_guard lock(mu_);
    token_ = "revoked";
  }

  std::string role = "fruitpipe-emr-role";
  std::atomic<int> token_requests{0};
  std::atomic<int> credential_requests{0};
  std::atomic<int> unauthorized{0};

 private:
  bool Authorized(const httplib::Request& req, httplib::Response& res) {
    std::lock_guard lock(mu_);
    if (req.get_header_value("X-aws-ec2-metadata-token") != token_ || token_.empty()) {
      ++unauthorized;
      res.status = 401;
      return false;
    }
    return true;
  }

  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mu_;
  std::string token_;
  nlohmann::json document_;
};

// The container credentials endpoint: GET /creds, checking Authorization when told to.
class FakeContainerEndpoint {
 public:
  FakeContainerEndpoint() {
    server_.Get("/creds", [this](const httplib::Request& req, httplib::Response& res) {
      ++requests;
      std::lock_guard lock(mu_);
      authorizations_.push_back(req.get_header_value("Authorization"));
      if (!expected_authorization_.empty() && authorizations_.back() != expected_authorization_) {
        res.status = 401;
        res.set_content(R"({"code":"AccessDeniedException","message":"wrong token"})", "application/json");
        return;
      }
      if (fail_status_ != 0) {
        res.status = fail_status_;
        res.set_content(fail_body_, "application/json");
        return;
      }
      res.set_content(body_, "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~FakeContainerEndpoint() {
    server_.stop();
    thread_.join();
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/creds"; }
  void SetCredentials(const std::string& key_id, const std::string& secret, const std::string& token,
                      std::chrono::system_clock::time_point expiration) {
    SetBody(nlohmann::json{{"RoleArn", "arn:aws:iam::123456789012:role/fruitpipe-batch"},
                           {"AccessKeyId", key_id},
                           {"SecretAccessKey", secret},
                           {"Token", token},
                           {"Expiration", Iso8601(expiration)}}
                .dump());
  }
  void SetBody(std::string body) {
    std::lock_guard lock(mu_);
    body_ = std::move(body);
    fail_status_ = 0;
  }
  void Fail(int status, std::string body = "") {
    std::lock_guard lock(mu_);
    fail_status_ = status;
    fail_body_ = std::move(body);
  }
  void ExpectAuthorization(std::string value) {
    std::lock_guard lock(mu_);
    expected_authorization_ = std::move(value);
  }
  std::vector<std::string> authorizations() {
    std::lock_guard lock(mu_);
    return authorizations_;
  }

  std::atomic<int> requests{0};

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mu_;
  std::string body_ = "{}";
  int fail_status_ = 0;
  std::string fail_body_;
  std::string expected_authorization_;
  std::vector<std::string> authorizations_;
};

std::string XmlEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      default: out += c;
    }
  }
  return out;
}

// STS, AssumeRoleWithWebIdentity only: a form POSTed to /, answered in XML as AWS does.
class FakeSts {
 public:
  FakeSts() {
    server_.Post("/", [this](const httplib::Request& req, httplib::Response& res) {
      ++requests;
      httplib::Params params;
      httplib::detail::parse_query_text(req.body, params);
      std::lock_guard lock(mu_);
      Call call;
      for (const auto& [k, v] : params) call.params[k] = v;
      call.authorization = req.has_header("Authorization");
      call.content_type = req.get_header_value("Content-Type");
      call.target = req.target;
      calls_.push_back(call);
      if (fail_status_ != 0) {
        res.status = fail_status_;
        res.set_content(fail_body_, "text/xml");
        return;
      }
      if (call.params["Action"] != "AssumeRoleWithWebIdentity" || call.params["Version"] != "2011-06-15") {
        res.status = 400;
        res.set_content(Error("InvalidAction", "Could not find operation"), "text/xml");
        return;
      }
      res.set_content(body_, "text/xml");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~FakeSts() {
    server_.stop();
    thread_.join();
  }

  struct Call {
    std::map<std::string, std::string> params;
    bool authorization = false;
    std::string content_type;
    std::string target;  // path and query as sent
  };

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  static std::string Error(const std::string& code, const std::string& message) {
    return "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>" +
           code + "</Code><Message>" + XmlEscape(message) +
           "</Message></Error><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ErrorResponse>";
  }
  void SetCredentials(const std::string& key_id, const std::string& secret, const std::string& token,
                      const std::string& expiration) {
    SetBody(
        "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
        "  <AssumeRoleWithWebIdentityResult>\n"
        "    <SubjectFromWebIdentityToken>system:serviceaccount:fruits:fruitpipe</SubjectFromWebIdentityToken>\n"
        "    <Audience>sts.amazonaws.com</Audience>\n"
        "    <AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/fruitpipe-irsa/s</Arn>"
        "<AssumedRoleId>AROAEXAMPLE:s</AssumedRoleId></AssumedRoleUser>\n"
        "    <Credentials>\n"
        "      <SessionToken>" + XmlEscape(token) + "</SessionToken>\n"
        "      <SecretAccessKey>" + XmlEscape(secret) + "</SecretAccessKey>\n"
        "      <Expiration>" + expiration + "</Expiration>\n"
        "      <AccessKeyId>" + key_id + "</AccessKeyId>\n"
        "    </Credentials>\n"
        "    <Provider>arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/X</Provider>\n"
        "  </AssumeRoleWithWebIdentityResult>\n"
        "  <ResponseMetadata><RequestId>ad4156e9-bce1-11e2-82e6-6b6efEXAMPLE</RequestId></ResponseMetadata>\n"
        "</AssumeRoleWithWebIdentityResponse>\n");
  }
  void SetBody(std::string body) {
    std::lock_guard lock(mu_);
    body_ = std::move(body);
    fail_status_ = 0;
  }
  void Fail(int status, std::string body) {
    std::lock_guard lock(mu_);
    fail_status_ = status;
    fail_body_ = std::move(body);
  }
  std::vector<Call> calls() {
    std::lock_guard lock(mu_);
    return calls_;
  }

  std::atomic<int> requests{0};

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mu_;
  std::string body_;
  int fail_status_ = 0;
  std::string fail_body_;
  std::vector<Call> calls_;
};

class CredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override { testing::IsolateAwsEnvironment(); }
  void TearDown() override { testing::IsolateAwsEnvironment(); }

  std::string Write(const std::string& name, const std::string& text) {
    const auto path = (tmp_.path() / name).string();
    std::ofstream(path) << text;
    return path;
  }

  ImdsCredentialsProvider::Options ImdsOptions(const FakeImds& imds) {
    ImdsCredentialsProvider::Options o;
    o.endpoint = imds.endpoint();
    return o;
  }

  WebIdentityCredentialsProvider::Options StsOptions(const FakeSts& sts, const std::string& token_file) {
    WebIdentityCredentialsProvider::Options o;
    o.token_file = token_file;
    o.role_arn = "arn:aws:iam::123456789012:role/fruitpipe-irsa";
    o.session_name = "fruitpipe-test";
    o.endpoint = sts.endpoint();
    return o;
  }

  // The message of the Error `f` throws (a test failure when it does not throw).
  template <typename E = Error, typename F>
  std::string ErrorOf(F&& f) {
    try {
      f();
    } catch (const E& e) {
      const std::string msg = e.what();
      EXPECT_EQ(msg.find('\n'), std::string::npos) << "not one line: " << msg;
      return msg;
    }
    ADD_FAILURE() << "no error";
    return {};
  }

  fruitpipe::testing::TempDir tmp_;
};

TEST_F(CredentialsTest, ParsesSharedCredentialsAndConfigFiles) {
  const auto creds = ParseAwsIni(
      "# comment\n[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key=secret/default+\n\n"
      "[work]\n  aws_access_key_id = AKIAWORK  \n; another comment\naws_secret_access_key = s=w\n"
      "aws_session_token = tok\n",
      false);
  ASSERT_EQ(creds.size(), 2u);
  EXPECT_EQ(creds.at("default").at("aws_secret_access_key"), "secret/default+");
  EXPECT_EQ(creds.at("work").at("aws_access_key_id"), "AKIAWORK");
  EXPECT_EQ(creds.at("work").at("aws_secret_access_key"), "s=w");
  EXPECT_EQ(creds.at("work").at("aws_session_token"), "tok");

  const auto config = ParseAwsIni(
      "[default]\nregion = eu-west-3\n[profile work]\nregion=eu-central-1\ns3 =\n  addressing_style = path\n"
      "output = json\n[sso-session corp]\nregion = us-east-1\n",
      true);
  EXPECT_EQ(config.at("default").at("region"), "eu-west-3");
  EXPECT_EQ(config.at("work").at("region"), "eu-central-1");
  EXPECT_EQ(config.at("work").at("s3.addressing_style"), "path");
  EXPECT_EQ(config.at("work").at("output"), "json");
  EXPECT_EQ(config.count("sso-session corp"), 0u);
  EXPECT_EQ(config.count("corp"), 0u);
}

TEST_F(CredentialsTest, ChainPrefersEnvironmentThenProfile) {
  ::setenv("AWS_SHARED_CREDENTIALS_FILE",
           Write("credentials", "[default]\naws_access_key_id=AKIADEFAULT\naws_secret_access_key=d\n"
                                "[work]\naws_access_key_id=AKIAWORK\naws_secret_access_key=w\n")
               .c_str(),
           1);
  ::setenv("AWS_CONFIG_FILE", Write("config", "[profile work]\nregion = eu-central-1\n").c_str(), 1);
  ::setenv("AWS_PROFILE", "work", 1);
  AwsProfile profile = LoadAwsProfile();
  EXPECT_EQ(profile.name, "work");
  auto from_profile = DefaultCredentialsChain(profile, "s3://b");
  EXPECT_EQ(from_profile->Get().access_key_id, "AKIAWORK");
  EXPECT_NE(from_profile->Describe().find("profile 'work'"), std::string::npos);
  EXPECT_EQ(ResolveRegion("", profile).region, "eu-central-1");

  ::setenv("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", "e", 1);
  ::setenv("AWS_SESSION_TOKEN", "envtoken", 1);
  auto from_env = DefaultCredentialsChain(profile, "s3://b");
  EXPECT_EQ(from_env->Get().access_key_id, "AKIAENV");
  EXPECT_EQ(from_env->Get().session_token, "envtoken");
  EXPECT_EQ(from_env->Describe(), "environment");

  ::unsetenv("AWS_SECRET_ACCESS_KEY");
  EXPECT_THROW(DefaultCredentialsChain(profile, "s3://b"), InvalidArgumentError);
  ::unsetenv("AWS_ACCESS_KEY_ID");

  ::setenv("AWS_PROFILE", "nope", 1);
  try {
    DefaultCredentialsChain(LoadAwsProfile(), "s3://b");
    FAIL() << "a missing profile was accepted";
  } catch (const InvalidArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("profile 'nope'"), std::string::npos) << e.what();
  }
}

TEST_F(CredentialsTest, NoCredentialsIsAClearErrorWhenMetadataIsDisabled) {
  try {
    DefaultCredentialsChain(LoadAwsProfile(), "s3://bucket/Test");
    FAIL() << "credentials came from nowhere";
  } catch (const InvalidArgumentError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind("s3://bucket/Test: no AWS credentials", 0), 0u) << msg;
    EXPECT_NE(msg.find("AWS_EC2_METADATA_DISABLED"), std::string::npos) << msg;
  }
}

TEST_F(CredentialsTest, RegionResolutionOrderAndResidency) {
  AwsProfile profile;
  profile.name = "default";
  profile.config["region"] = "eu-north-1";
  EXPECT_EQ(ResolveRegion("", profile).region, "eu-north-1");
  ::setenv("AWS_DEFAULT_REGION", "eu-south-1", 1);
  EXPECT_EQ(ResolveRegion("", profile).region, "eu-south-1");
  ::setenv("AWS_REGION", "eu-west-2", 1);
  EXPECT_EQ(ResolveRegion("", profile).source, "AWS_REGION");
  EXPECT_EQ(ResolveRegion("eu-central-2", profile).region, "eu-central-2");
  EXPECT_EQ(ResolveRegion("", AwsProfile{}).region, "eu-west-2");
  testing::IsolateAwsEnvironment();
  EXPECT_EQ(ResolveRegion("", AwsProfile{}).region, "eu-west-1");
  EXPECT_EQ(ResolveRegion("", AwsProfile{}).source, "default");

  for (const char* r : {"eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1", "eu-central-2", "eu-north-1",
                        "eu-south-1", "eu-south-2"}) {
    EXPECT_NO_THROW(RequireEuResidency({r, "--region"}, false, "s3://b")) << r;
  }
  for (const char* r : {"us-east-1", "eu-isoe-west-1", "il-central-1", "me-central-1", ""}) {
    EXPECT_THROW(RequireEuResidency({r, "--region"}, false, "s3://b"), InvalidArgumentError) << r;
    EXPECT_NO_THROW(RequireEuResidency({r, "--region"}, true, "s3://b")) << r;
  }
}

TEST_F(CredentialsTest, ImdsV2FetchesRoleCredentialsWithASessionToken) {
  FakeImds imds;
  const auto expiry = std::chrono::system_clock::now() + 6h;
  imds.SetCredentials("ASIAROLE", "role-secret", "role-session-token", expiry);
  ImdsCredentialsProvider provider(ImdsOptions(imds));
  const AwsCredentials c = provider.Get();
  EXPECT_EQ(c.access_key_id, "ASIAROLE");
  EXPECT_EQ(c.secret_access_key, "role-secret");
  EXPECT_EQ(c.session_token, "role-session-token");
  ASSERT_TRUE(c.expiration.has_value());
  EXPECT_LT(std::chrono::abs(*c.expiration - expiry), 2s);
  EXPECT_EQ(imds.token_requests, 1);
  EXPECT_EQ(imds.unauthorized, 0);
  EXPECT_NE(provider.Describe().find("fruitpipe-emr-role"), std::string::npos);

  // Far from expiry: served from the cache, no new request.
  provider.Get();
  EXPECT_EQ(imds.credential_requests, 1);
}

TEST_F(CredentialsTest, ImdsCredentialsAreRefreshedBeforeTheyExpire) {
  FakeImds imds;
  // Inside the 5-minute refresh window: usable now, replaced on the next request.
  imds.SetCredentials("ASIAOLD", "old", "t1", std::chrono::system_clock::now() + 2min);
  ImdsCredentialsProvider provider(ImdsOptions(imds));
  EXPECT_EQ(provider.Get().access_key_id, "ASIAOLD");
  imds.SetCredentials("ASIANEW", "new", "t2", std::chrono::system_clock::now() + 6h);
  EXPECT_EQ(provider.Get().access_key_id, "ASIANEW");
  EXPECT_EQ(imds.credential_requests, 2);
  EXPECT_EQ(imds.token_requests, 1);  // the session token is still valid

  // A revoked session token is replaced once (401, new PUT, retry).
  imds.SetCredentials("ASIANEWER", "newer", "t3", std::chrono::system_clock::now() + 1min);
  imds.RevokeToken();
  ImdsCredentialsProvider::Options o = ImdsOptions(imds);
  o.refresh_before = 10min;
  ImdsCredentialsProvider second(o);
  EXPECT_EQ(second.Get().access_key_id, "ASIANEWER");
  imds.RevokeToken();
  EXPECT_EQ(second.Get().access_key_id, "ASIANEWER");
  EXPECT_EQ(imds.token_requests, 3);
}

TEST_F(CredentialsTest, ImdsErrorsNeverQuoteTheSecret) {
  FakeImds imds;
  imds.SetDocument({{"Code", "Success"}, {"AccessKeyId", "ASIAX"}, {"SecretAccessKey", "very-secret-value"},
                    {"Token", "very-secret-token"}});  // no Expiration
  ImdsCredentialsProvider provider(ImdsOptions(imds));
  try {
    provider.Get();
    FAIL() << "credentials without Expiration were accepted";
  } catch (const IOError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("lack Expiration"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("very-secret"), std::string::npos) << msg;
  }
  imds.role = "";
  try {
    provider.Get();
    FAIL() << "an instance without a role produced credentials";
  } catch (const IOError& e) {
    EXPECT_NE(std::string(e.what()).find("no IAM role"), std::string::npos) << e.what();
  }
}

TEST_F(CredentialsTest, UnreachableMetadataServiceFailsFast) {
  // A loopback port nobody listens on stands in for 169.254.169.254 off EC2.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ::close(fd);
  ImdsCredentialsProvider::Options o;
  o.endpoint = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  ImdsCredentialsProvider provider(o);
  const auto start = std::chrono::steady_clock::now();
  try {
    provider.Get();
    FAIL() << "credentials from a closed port";
  } catch (const IOError& e) {
    EXPECT_NE(std::string(e.what()).find("instance metadata (IMDSv2) at " + o.endpoint + ": unreachable"),
              std::string::npos)
        << e.what();
  }
  // Not retried: off EC2 the chain must give up at once.
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
}

TEST_F(CredentialsTest, ChainFallsBackToImdsAtTheOverriddenEndpoint) {
  FakeImds imds;
  imds.SetCredentials("ASIACHAIN", "s", "t", std::chrono::system_clock::now() + 1h);
  ::unsetenv("AWS_EC2_METADATA_DISABLED");
  ::setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", (imds.endpoint() + "/").c_str(), 1);
  auto provider = DefaultCredentialsChain(LoadAwsProfile(), "s3://b");
  EXPECT_EQ(provider->Get().access_key_id, "ASIACHAIN");
  EXPECT_NE(provider->Describe().find(imds.endpoint()), std::string::npos);

  ::setenv("AWS_EC2_METADATA_DISABLED", "TRUE", 1);
  EXPECT_THROW(DefaultCredentialsChain(LoadAwsProfile(), "s3://b"), InvalidArgumentError);
}

// The whole path on an EMR node: role credentials from IMDSv2, session token signed, s3rver
// verifies the signature.
TEST_F(CredentialsTest, S3RoundTripWithInstanceRoleCredentials) {
  FRUITPIPE_REQUIRE_NODE_TOOLS();
  harness::S3rver server({"role-bucket"});
  FakeImds imds;
  imds.SetCredentials("S3RVER", "S3RVER", "session-token-from-imds", std::chrono::system_clock::now() + 1h);
  ::unsetenv("AWS_EC2_METADATA_DISABLED");
  ::setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.endpoint().c_str(), 1);
  RegisterS3Storage();
  StorageOptions options;
  options.endpoint = server.endpoint();
  auto store = OpenStorage("s3://role-bucket/Results", options);
  store->Put("part-00000.parquet", "PAR1");
  EXPECT_EQ(store->Get("part-00000.parquet"), "PAR1");
  EXPECT_EQ(imds.credential_requests, 1);
}

// ---- Container credentials (ECS, AWS Batch, EKS Pod Identity) ----

TEST_F(CredentialsTest, ContainerRelativeUriIsOnTheEcsAgent) {
  ::setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/6f3a-task-guid", 1);
  auto o = ContainerOptionsFromEnvironment("s3://b");
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->url, "http://169.254.170.2/v2/credentials/6f3a-task-guid");
  EXPECT_EQ(o->authorization, "");
  ::setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "v2/credentials/x", 1);
  EXPECT_EQ(ContainerOptionsFromEnvironment("s3://b")->url, "http://169.254.170.2/v2/credentials/x");

  // The relative URI wins over a full one, as in the SDKs; the chain picks it without a request
  // and describes it without the path (which acts as a credential).
  ::setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/6f3a-task-guid", 1);
  ::setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:1/elsewhere", 1);
  ::setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "tok", 1);
  ::setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "/var/run/secrets/pods.eks.amazonaws.com/token", 1);
  o = ContainerOptionsFromEnvironment("s3://b");
  EXPECT_EQ(o->url, "http://169.254.170.2/v2/credentials/6f3a-task-guid");
  EXPECT_EQ(o->authorization, "tok");
  EXPECT_EQ(o->authorization_file, "/var/run/secrets/pods.eks.amazonaws.com/token");
  auto chain = DefaultCredentialsChain(LoadAwsProfile(), "s3://b", "eu-west-1");
  EXPECT_EQ(chain->Describe(), "container credentials (http://169.254.170.2)");

  testing::IsolateAwsEnvironment();
  EXPECT_FALSE(ContainerOptionsFromEnvironment("s3://b").has_value());
}

TEST_F(CredentialsTest, ContainerFullUriIsHttpsAnywhereOrHttpToLoopbackAndTheAgents) {
  for (const char* ok : {"http://127.0.0.1:8080/creds", "http://127.1.2.3/creds", "http://localhost/creds",
                         "http://[::1]:9000/creds", "http://169.254.170.2/v2/credentials/x",
                         "http://169.254.170.23/v1/credentials", "http://[fd00:ec2::23]/v1/credentials",
                         "HTTP://LOCALHOST:1/x", "https://credentials.example.com/x?id=1"}) {
    ::setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", ok, 1);
    auto o = ContainerOptionsFromEnvironment("s3://b");
    ASSERT_TRUE(o.has_value()) << ok;
    EXPECT_EQ(o->url, ok);
  }
  for (const char* refused : {"http://example.com/creds?secret=s3cr3t", "http://169.254.169.254/latest/s3cr3t",
                              "http://127.evil.example/s3cr3t", "http://10.0.0.5/s3cr3t",
                              "http://[fd00:ec2::24]/s3cr3t", "http://user:s3cr3t@example.com/"}) {
    ::setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", refused, 1);
    const std::string msg = ErrorOf<InvalidArgumentError>([] { ContainerOptionsFromEnvironment("s3://b"); });
    EXPECT_EQ(msg.rfind("s3://b: AWS_CONTAINER_CREDENTIALS_FULL_URI names http://", 0), 0u) << msg;
    EXPECT_NE(msg.find("plain http is only allowed to a loopback host or the ECS/EKS agents"), std::string::npos)
        << msg;
    EXPECT_EQ(msg.find("s3cr3t"), std::string::npos) << msg;
    // The chain refuses it too, rather than falling through to IMDS.
    EXPECT_THROW(DefaultCredentialsChain(LoadAwsProfile(), "s3://b", "eu-west-1"), InvalidArgumentError);
  }
  for (const char* bad : {"ftp://127.0.0.1/creds", "127.0.0.1/creds", "http:///creds"}) {
    ::setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", bad, 1);
    const std::string msg = ErrorOf<InvalidArgumentError>([] { ContainerOptionsFromEnvironment("s3://b"); });
    EXPECT_NE(msg.find("is not an http:// or https:// URL"), std::string::npos) << bad << ": " << msg;
  }
}

TEST_F(CredentialsTest, ContainerFullUriWithAnAuthorizationToken) {
  FakeContainerEndpoint endpoint;
  const auto expiry = std::chrono::system_clock::now() + 6h;
  endpoint.SetCredentials("ASIABATCH", "batch-secret", "batch-session", expiry);
  endpoint.ExpectAuthorization("Basic pod-identity-token");
  ::setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", endpoint.url().c_str(), 1);
  ::setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "Basic pod-identity-token", 1);
  auto provider = DefaultCredentialsChain(LoadAwsProfile(), "s3://b", "eu-west-1");
  const AwsCredentials c = provider->Get();
  EXPECT_EQ(c.access_key_id, "ASIABATCH");
  EXPECT_EQ(c.secret_access_key, "batch-secret");
  EXPECT_EQ(c.session_token, "batch-session");
  ASSERT_TRUE(c.expiration.has_value());
  EXPECT_LT(std::chrono::abs(*c.expiration - expiry), 2s);
  EXPECT_EQ(provider->Describe(), "container credentials (" + endpoint.url().substr(0, endpoint.url().size() - 6) + ")");
  // Far from expiry: from the cache.
  provider->Get();
  EXPECT_EQ(endpoint.requests, 1);

  // No token configured: no Authorization header (the ECS agent needs none).
  FakeContainerEndpoint ecs;
  ecs.SetCredentials("ASIAECS", "s", "t", expiry);
  ContainerCredentialsProvider::Options o;
  o.url = ecs.url();
  ContainerCredentialsProvider plain(o);
  EXPECT_EQ(plain.Get().access_key_id, "ASIAECS");
  EXPECT_EQ(ecs.authorizations(), std::vector<std::string>{""});
}

TEST_F(CredentialsTest, ContainerTokenFileWinsAndIsReReadWhenCredentialsAreRefreshed) {
  FakeContainerEndpoint endpoint;
  // Inside the 5-minute refresh window: usable now, replaced on the next request.
  endpoint.SetCredentials("ASIAOLD", "old", "t1", std::chrono::system_clock::now() + 2min);
  const std::string token_file = Write("eks-pod-identity-token", "token-one\n");
  ::setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", endpoint.url().c_str(), 1);
  ::setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "ignored-when-a-file-is-set", 1);
  ::setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", token_file.c_str(), 1);
  auto provider = DefaultCredentialsChain(LoadAwsProfile(), "s3://b", "eu-west-1");
  EXPECT_EQ(provider->Get().access_key_id, "ASIAOLD");

  Write("eks-pod-identity-token", "token-two");  // rotated by the agent
  endpoint.ExpectAuthorization("token-two");
  endpoint.SetCredentials("ASIANEW", "new", "t2", std::chrono::system_clock::now() + 6h);
  EXPECT_EQ(provider->Get().access_key_id, "ASIANEW");
  EXPECT_EQ(provider->Get().access_key_id, "ASIANEW");
  EXPECT_EQ(endpoint.authorizations(), (std::vector<std::string>{"token-one", "token-two"}));
}

TEST_F(CredentialsTest, ContainerRefreshFailuresKeepCredentialsUntilTheyExpire) {
  FakeContainerEndpoint endpoint;
  endpoint.SetCredentials("ASIASOON", "s", "t", std::chrono::system_clock::now() + 2min);
  ContainerCredentialsProvider::Options o;
  o.url = endpoint.url();
  ContainerCredentialsProvider provider(o);
  EXPECT_EQ(provider.Get().access_key_id, "ASIASOON");
  endpoint.Fail(500);
  // The refresh fails (retried: 3 attempts) but the credentials still work for 2 minutes.
  EXPECT_EQ(provider.Get().access_key_id, "ASIASOON");
  EXPECT_EQ(endpoint.requests, 4);

  // Credentials that have expired are not handed out when the refresh fails.
  endpoint.SetCredentials("ASIAEXPIRED", "s", "t", std::chrono::system_clock::now() - 1min);
  ContainerCredentialsProvider expired(o);
  EXPECT_EQ(expired.Get().access_key_id, "ASIAEXPIRED");
  endpoint.Fail(503);
  const std::string msg = ErrorOf<IOError>([&] { expired.Get(); });
  EXPECT_NE(msg.find(": HTTP 503"), std::string::npos) << msg;
}

TEST_F(CredentialsTest, ContainerErrorsAreOneLineAndNeverQuoteSecrets) {
  FakeContainerEndpoint endpoint;
  ContainerCredentialsProvider::Options o;
  o.url = endpoint.url();
  o.authorization = "very-secret-auth";
  const std::string where = "container credentials (" + o.url.substr(0, o.url.size() - 6) + ")";
  auto message = [&](auto setup) {
    setup();
    ContainerCredentialsProvider p(o);
    const std::string msg = ErrorOf<Error>([&] { p.Get(); });
    EXPECT_EQ(msg.rfind(where + ": ", 0), 0u) << msg;
    EXPECT_EQ(msg.find("very-secret"), std::string::npos) << msg;
    return msg;
  };
  EXPECT_NE(message([&] { endpoint.Fail(403, R"({"code":"AccessDeniedException","message":"very-secret-auth is bad"})"); })
                .find("HTTP 403 AccessDeniedException (check the authorization token"),
            std::string::npos);
  endpoint.requests = 0;
  EXPECT_NE(message([&] { endpoint.Fail(500, "<html>very-secret</html>"); }).find(": HTTP 500"), std::string::npos);
  EXPECT_EQ(endpoint.requests, 3);  // 5xx is retried, within bounds
  EXPECT_NE(message([&] { endpoint.SetBody("very-secret-not-json"); }).find("credentials are not a JSON object"),
            std::string::npos);
  EXPECT_NE(message([&] {
              endpoint.SetBody(R"({"AccessKeyId":"ASIAX","Token":"very-secret-token","Expiration":"2030-01-01T00:00:00Z"})");
            }).find("credentials lack SecretAccessKey"),
            std::string::npos);
  EXPECT_NE(message([&] {
              endpoint.SetBody(R"({"AccessKeyId":"ASIAX","SecretAccessKey":"very-secret-key","Token":"t","Expiration":"soon"})");
            }).find("credentials have an unreadable Expiration"),
            std::string::npos);
  EXPECT_NE(message([&] { o.authorization = "very-secret\r\nX-Injected: 1"; }).find("contains a line break"),
            std::string::npos);
  o.authorization = "";
  EXPECT_NE(message([&] { o.authorization_file = (tmp_.path() / "missing-token").string(); }).find("missing-token"),
            std::string::npos);
  o.authorization_file.clear();

  // Nobody listening: one line, quickly.
  o.url = "http://127.0.0.1:1/creds";
  ContainerCredentialsProvider closed(o);
  EXPECT_NE(ErrorOf<IOError>([&] { closed.Get(); }).find("container credentials (http://127.0.0.1:1): unreachable"),
            std::string::npos);
}

// ---- Web identity (EKS IRSA): STS AssumeRoleWithWebIdentity ----

TEST_F(CredentialsTest, WebIdentityExchangesTheTokenWithSts) {
  FakeSts sts;
  // XML entities in the answer are unescaped: AWS secrets hold '+' and '/', tokens '&'-free
  // base64, but a parser that does not unescape would corrupt any '&'.
  sts.SetCredentials("ASIAIRSA", "irsa/secret+&amp;&lt;", "irsa-session-token", "2031-02-03T04:05:06.789Z");
  const std::string token_file = Write("eks.amazonaws.com-token", "eyJhbGciOiJSUzI1NiJ9.payload+/=.sig\n");
  auto o = StsOptions(sts, token_file);
  WebIdentityCredentialsProvider provider(o);
  const AwsCredentials c = provider.Get();
  EXPECT_EQ(c.access_key_id, "ASIAIRSA");
  EXPECT_EQ(c.secret_access_key, "irsa/secret+&amp;&lt;");
  EXPECT_EQ(c.session_token, "irsa-session-token");
  ASSERT_TRUE(c.expiration.has_value());
  EXPECT_EQ(std::chrono::system_clock::to_time_t(*c.expiration), 1927857906);  // 2031-02-03T04:05:06Z

  const auto calls = sts.calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].params.at("Action"), "AssumeRoleWithWebIdentity");
  EXPECT_EQ(calls[0].params.at("Version"), "2011-06-15");
  EXPECT_EQ(calls[0].params.at("RoleArn"), "arn:aws:iam::123456789012:role/fruitpipe-irsa");
  EXPECT_EQ(calls[0].params.at("RoleSessionName"), "fruitpipe-test");
  EXPECT_EQ(calls[0].params.at("WebIdentityToken"), "eyJhbGciOiJSUzI1NiJ9.payload+/=.sig");
  EXPECT_FALSE(calls[0].authorization);  // unsigned
  EXPECT_EQ(calls[0].target, "/");      // the token travels in the body, not the URL
  EXPECT_EQ(calls[0].content_type.rfind("application/x-www-form-urlencoded", 0), 0u);
  EXPECT_NE(provider.Describe().find("role arn:aws:iam::123456789012:role/fruitpipe-irsa"), std::string::npos);
  EXPECT_NE(provider.Describe().find("STS at " + sts.endpoint()), std::string::npos);

  provider.Get();
  EXPECT_EQ(sts.requests, 1);  // cached until near expiry
}

TEST_F(CredentialsTest, WebIdentityReReadsTheRotatedTokenFileWhenRefreshing) {
  FakeSts sts;
  sts.SetCredentials("ASIAOLD", "old", "t1", Iso8601(std::chrono::system_clock::now() + 2min));
  const std::string token_file = Write("token", "token-one");
  WebIdentityCredentialsProvider provider(StsOptions(sts, token_file));
  EXPECT_EQ(provider.Get().access_key_id, "ASIAOLD");
  Write("token", "token-two");  // the kubelet rotates it
  sts.SetCredentials("ASIANEW", "new", "t2", Iso8601(std::chrono::system_clock::now() + 1h));
  EXPECT_EQ(provider.Get().access_key_id, "ASIANEW");
  EXPECT_EQ(provider.Get().access_key_id, "ASIANEW");
  const auto calls = sts.calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].params.at("WebIdentityToken"), "token-one");
  EXPECT_EQ(calls[1].params.at("WebIdentityToken"), "token-two");
}

TEST_F(CredentialsTest, WebIdentityErrorsAreOneLineAndNeverQuoteTokensOrSecrets) {
  FakeSts sts;
  const std::string token_file = Write("token", "very-secret-jwt");
  auto o = StsOptions(sts, token_file);
  auto message = [&](auto setup) {
    setup();
    WebIdentityCredentialsProvider p(o);
    const std::string msg = ErrorOf<IOError>([&] { p.Get(); });
    EXPECT_EQ(msg.rfind("web identity (role arn:aws:iam::123456789012:role/fruitpipe-irsa, token file ", 0), 0u)
        << msg;
    EXPECT_EQ(msg.find("very-secret"), std::string::npos) << msg;
    return msg;
  };
  std::string msg = message([&] {
    sts.Fail(400, FakeSts::Error("InvalidIdentityToken", "Token very-secret-jwt\nhas expired"));
  });
  EXPECT_NE(msg.find("AssumeRoleWithWebIdentity got HTTP 400 InvalidIdentityToken: Token <token> has expired"),
            std::string::npos)
      << msg;
  msg = message([&] {
    sts.Fail(403, FakeSts::Error("AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity"));
  });
  EXPECT_NE(msg.find("HTTP 403 AccessDenied: Not authorized"), std::string::npos) << msg;
  sts.requests = 0;
  msg = message([&] { sts.Fail(503, "Service Unavailable"); });
  EXPECT_NE(msg.find("got HTTP 503"), std::string::npos) << msg;
  EXPECT_EQ(sts.requests, 3);  // retried, within bounds
  sts.requests = 0;
  message([&] { sts.Fail(400, FakeSts::Error("IDPCommunicationError", "try again")); });
  EXPECT_EQ(sts.requests, 3);
  EXPECT_NE(message([&] { sts.SetBody("very-secret {not xml"); }).find("answer is not XML"), std::string::npos);
  EXPECT_NE(message([&] { sts.SetBody("<AssumeRoleWithWebIdentityResponse/>"); })
                .find("has no AssumeRoleWithWebIdentityResult/Credentials"),
            std::string::npos);
  msg = message([&] {
    sts.SetCredentials("ASIAX", "very-secret-key", "", Iso8601(std::chrono::system_clock::now() + 1h));
  });
  EXPECT_NE(msg.find("credentials lack SessionToken"), std::string::npos) << msg;
  msg = message([&] { sts.SetCredentials("ASIAX", "very-secret-key", "very-secret-tok", "tomorrow"); });
  EXPECT_NE(msg.find("unreadable Expiration"), std::string::npos) << msg;

  sts.requests = 0;
  Write("token", "  \n");
  EXPECT_NE(message([] {}).find("the token file is empty"), std::string::npos);
  o.token_file = (tmp_.path() / "no-such-token").string();
  EXPECT_NE(message([] {}).find("no-such-token"), std::string::npos);
  EXPECT_EQ(sts.requests, 0);  // no token, no request
}

TEST_F(CredentialsTest, WebIdentityConfigurationFromTheEnvironment) {
  EXPECT_FALSE(WebIdentityOptionsFromEnvironment("eu-west-1", "s3://b").has_value());
  ::setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/r", 1);
  EXPECT_NE(ErrorOf<InvalidArgumentError>([] { WebIdentityOptionsFromEnvironment("eu-west-1", "s3://b"); })
                .find("s3://b: AWS_ROLE_ARN is set but AWS_WEB_IDENTITY_TOKEN_FILE is not"),
            std::string::npos);
  ::setenv("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/secrets/eks.amazonaws.com/serviceaccount/token", 1);
  auto o = WebIdentityOptionsFromEnvironment("eu-central-1", "s3://b");
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->token_file, "/var/run/secrets/eks.amazonaws.com/serviceaccount/token");
  EXPECT_EQ(o->role_arn, "arn:aws:iam::123456789012:role/r");
  EXPECT_EQ(o->session_name.rfind("fruitpipe-", 0), 0u) << o->session_name;
  EXPECT_EQ(o->endpoint, "https://sts.eu-central-1.amazonaws.com");  // regional, not global
  EXPECT_EQ(StsEndpoint("cn-north-1"), "https://sts.cn-north-1.amazonaws.com.cn");
  ::setenv("AWS_ROLE_SESSION_NAME", "featurize-7", 1);
  ::setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9/general", 1);
  o = WebIdentityOptionsFromEnvironment("eu-central-1", "s3://b");
  EXPECT_EQ(o->session_name, "featurize-7");
  EXPECT_EQ(o->endpoint, "http://127.0.0.1:9/general");
  ::setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9/sts", 1);
  EXPECT_EQ(WebIdentityOptionsFromEnvironment("eu-central-1", "s3://b")->endpoint, "http://127.0.0.1:9/sts");

  // The chain asks STS in the store's region, ResolveRegion's when none is given.
  ::unsetenv("AWS_ENDPOINT_URL_STS");
  ::unsetenv("AWS_ENDPOINT_URL");
  ::setenv("AWS_REGION", "eu-north-1", 1);
  EXPECT_NE(DefaultCredentialsChain(LoadAwsProfile(), "s3://b")->Describe().find("STS at https://sts.eu-north-1.amazonaws.com"),
            std::string::npos);
  EXPECT_NE(DefaultCredentialsChain(LoadAwsProfile(), "s3://b", "eu-south-2")->Describe().find("sts.eu-south-2."),
            std::string::npos);
}

TEST_F(CredentialsTest, ChainOrderIsEnvironmentProfileWebIdentityContainerInstance) {
  // Everything configured at once (IMDS at a closed loopback port); no step fetches anything
  // while the chain is built.
  ::unsetenv("AWS_EC2_METADATA_DISABLED");
  ::setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1", 1);
  ::setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:1/creds", 1);
  ::setenv("AWS_WEB_IDENTITY_TOKEN_FILE", Write("token", "jwt").c_str(), 1);
  ::setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/r", 1);
  ::setenv("AWS_SHARED_CREDENTIALS_FILE",
           Write("credentials", "[default]\naws_access_key_id=AKIAPROFILE\naws_secret_access_key=p\n").c_str(), 1);
  ::setenv("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", "e", 1);
  auto describe = [] { return DefaultCredentialsChain(LoadAwsProfile(), "s3://b", "eu-west-1")->Describe(); };
  EXPECT_EQ(describe(), "environment");
  ::unsetenv("AWS_ACCESS_KEY_ID");
  ::unsetenv("AWS_SECRET_ACCESS_KEY");
  EXPECT_EQ(describe().rfind("profile 'default'", 0), 0u) << describe();
  ::setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/fruitpipe-test/credentials", 1);
  EXPECT_EQ(describe().rfind("web identity (role arn:aws:iam::123456789012:role/r", 0), 0u) << describe();
  ::unsetenv("AWS_WEB_IDENTITY_TOKEN_FILE");
  ::unsetenv("AWS_ROLE_ARN");
  EXPECT_EQ(describe(), "container credentials (http://127.0.0.1:1)");
  ::unsetenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
  EXPECT_EQ(describe(), "instance role (IMDSv2 at http://127.0.0.1:1)");
  ::setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
  const std::string msg = ErrorOf<InvalidArgumentError>([&] { describe(); });
  EXPECT_NE(msg.find("AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN"), std::string::npos) << msg;
  EXPECT_NE(msg.find("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"), std::string::npos) << msg;
}

// The whole path in an AWS Batch job / ECS task: credentials from the container endpoint,
// signed with their session token; s3rver knows that key pair only and verifies the signature.
TEST_F(CredentialsTest, S3RoundTripWithContainerCredentials) {
  FRUITPIPE_REQUIRE_NODE_TOOLS();
  harness::S3rver server({"batch-bucket"}, {{"ASIABATCHJOB", "batch/job+secret"}});
  FakeContainerEndpoint endpoint;
  endpoint.SetCredentials("ASIABATCHJOB", "batch/job+secret", "session-token-from-ecs",
                          std::chrono::system_clock::now() + 1h);
  endpoint.ExpectAuthorization("pod-identity-token");
  ::setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", endpoint.url().c_str(), 1);
  ::setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", Write("token", "pod-identity-token\n").c_str(), 1);
  RegisterS3Storage();
  StorageOptions options;
  options.endpoint = server.endpoint();
  auto store = OpenStorage("s3://batch-bucket/Results", options);
  store->Put("part-00000.parquet", "PAR1");
  EXPECT_EQ(store->Get("part-00000.parquet"), "PAR1");
  EXPECT_EQ(endpoint.requests, 1);

  // A key s3rver was not given is refused: the keys above really were checked.
  endpoint.SetCredentials("ASIAUNKNOWN", "batch/job+secret", "t", std::chrono::system_clock::now() + 1h);
  const std::string msg = ErrorOf<Error>([&] { OpenStorage("s3://batch-bucket/Other", options)->Put("x", "y"); });
  EXPECT_NE(msg.find("InvalidAccessKeyId"), std::string::npos) << msg;
  EXPECT_NE(msg.find("container credentials (http://127.0.0.1:"), std::string::npos) << msg;
}

// The whole path in an EKS pod with IRSA: the service account token exchanged with (a loopback)
// STS, the role's keys signed and verified by s3rver.
TEST_F(CredentialsTest, S3RoundTripWithWebIdentityCredentials) {
  FRUITPIPE_REQUIRE_NODE_TOOLS();
  harness::S3rver server({"eks-bucket"}, {{"ASIAIRSAROLE", "irsa/role+secret"}});
  FakeSts sts;
  sts.SetCredentials("ASIAIRSAROLE", "irsa/role+secret", "session-token-from-sts",
                     Iso8601(std::chrono::system_clock::now() + 1h));
  ::setenv("AWS_WEB_IDENTITY_TOKEN_FILE", Write("token", "eyJ.service-account.jwt").c_str(), 1);
  ::setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/fruitpipe-irsa", 1);
  ::setenv("AWS_ENDPOINT_URL_STS", sts.endpoint().c_str(), 1);
  RegisterS3Storage();
  StorageOptions options;
  options.endpoint = server.endpoint();
  auto store = OpenStorage("s3://eks-bucket/Results", options);
  store->Put("part-00000.parquet", "PAR1");
  EXPECT_EQ(store->Get("part-00000.parquet"), "PAR1");
  ASSERT_EQ(sts.requests, 1);
  EXPECT_EQ(sts.calls()[0].params.at("WebIdentityToken"), "eyJ.service-account.jwt");
}

}  // namespace
}  // namespace fruitpipe::storage::s3
