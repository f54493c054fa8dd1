// The credentials chain, profile files, region resolution, and IMDSv2 against a local
// cpp-httplib server on 127.0.0.1 playing the EC2 metadata service.
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

}  // namespace
}  // namespace fruitpipe::storage::s3
