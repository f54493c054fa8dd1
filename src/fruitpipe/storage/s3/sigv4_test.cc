#include "fruitpipe/storage/s3/sigv4.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "fruitpipe/common/hash.h"
#include "fruitpipe/storage/s3/harness.h"
#include "fruitpipe/storage/s3/test_util.h"

namespace fruitpipe::storage::s3 {
namespace {

using std::chrono::system_clock;

// The AWS SigV4 test suite's fixed inputs.
const AwsCredentials kSuiteCredentials{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "",
                                       std::nullopt};
const system_clock::time_point kSuiteTime = system_clock::from_time_t(1440938160);  // 20150830T123600Z
constexpr char kScope[] = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, ";

std::string Header(const HeaderList& headers, const std::string& name) {
  for (const auto& [n, v] : headers) {
    if (n == name) return v;
  }
  return {};
}

SignableRequest SuiteRequest(std::string method, std::string path,
                             std::vector<std::pair<std::string, std::string>> query = {},
                             HeaderList extra = {}, std::string_view body = "") {
  SignableRequest r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.query = std::move(query);
  r.headers = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}};
  r.headers.insert(r.headers.end(), extra.begin(), extra.end());
  r.payload_sha256 = Sha256Hex(body);
  return r;
}

struct SuiteCase {
  const char* name;
  SignableRequest request;
  std::string session_token;
  const char* expected;  // SignedHeaders=..., Signature=...
};

TEST(SigV4Test, AwsTestSuiteVectors) {
  const std::string token =
      "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";
  const std::string unreserved = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  const std::vector<SuiteCase> cases = {
      {"get-vanilla", SuiteRequest("GET", "/"), "",
       "SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
      {"get-vanilla-query-order-key-case",
       SuiteRequest("GET", "/", {{"Param2", "value2"}, {"Param1", "value1"}}), "",
       "SignedHeaders=host;x-amz-date, Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
      {"get-vanilla-query-unreserved", SuiteRequest("GET", "/", {{unreserved, unreserved}}), "",
       "SignedHeaders=host;x-amz-date, Signature=9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"},
      {"get-vanilla-utf8-query", SuiteRequest("GET", "/", {{"\xE1\x88\xB4", "bar"}}), "",
       "SignedHeaders=host;x-amz-date, Signature=2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"},
      {"get-unreserved", SuiteRequest("GET", "/" + unreserved), "",
       "SignedHeaders=host;x-amz-date, Signature=07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"},
      {"get-utf8", SuiteRequest("GET", "/\xE1\x88\xB4"), "",
       "SignedHeaders=host;x-amz-date, Signature=8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"},
      {"get-header-value-trim",
       SuiteRequest("GET", "/", {}, {{"My-Header1", " value1"}, {"My-Header2", "\"a   b   c\""}}), "",
       "SignedHeaders=host;my-header1;my-header2;x-amz-date, "
       "Signature=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"},
      {"get-header-key-duplicate",
       SuiteRequest("GET", "/", {}, {{"My-Header1", "value2"}, {"My-Header1", "value2"}, {"My-Header1", "value1"}}),
       "",
       "SignedHeaders=host;my-header1;x-amz-date, "
       "Signature=c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"},
      {"post-vanilla", SuiteRequest("POST", "/"), "",
       "SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
      {"post-vanilla-query", SuiteRequest("POST", "/", {{"Param1", "value1"}}), "",
       "SignedHeaders=host;x-amz-date, Signature=28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"},
      {"post-header-key-sort", SuiteRequest("POST", "/", {}, {{"My-Header1", "value1"}}), "",
       "SignedHeaders=host;my-header1;x-amz-date, "
       "Signature=c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c"},
      {"post-x-www-form-urlencoded",
       SuiteRequest("POST", "/", {}, {{"Content-Type", "application/x-www-form-urlencoded"}}, "Param1=value1"), "",
       "SignedHeaders=content-type;host;x-amz-date, "
       "Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"},
      {"post-sts-header-before", SuiteRequest("POST", "/"), token,
       "SignedHeaders=host;x-amz-date;x-amz-security-token, "
       "Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"},
  };
  const SigV4Signer signer("us-east-1", "service");
  for (const auto& c : cases) {
    AwsCredentials creds = kSuiteCredentials;
    creds.session_token = c.session_token;
    const HeaderList added = signer.Sign(c.request, creds, kSuiteTime);
    EXPECT_EQ(Header(added, "authorization"), std::string(kScope) + c.expected) << c.name;
    EXPECT_EQ(Header(added, "x-amz-date"), "20150830T123600Z") << c.name;
    EXPECT_EQ(Header(added, "x-amz-security-token"), c.session_token) << c.name;
  }
}

TEST(SigV4Test, CanonicalRequestAndStringToSignMatchTheSuite) {
  const SigV4Signer signer("us-east-1", "service");
  const SignableRequest r = SuiteRequest("POST", "/", {}, {{"Content-Type", "application/x-www-form-urlencoded"}},
                                         "Param1=value1");
  std::string signed_headers;
  const std::string creq = signer.CanonicalRequest(r, &signed_headers);
  EXPECT_EQ(creq,
            "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\n"
            "x-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n"
            "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e");
  EXPECT_EQ(signed_headers, "content-type;host;x-amz-date");

  const SignableRequest q = SuiteRequest("GET", "/", {{"Param2", "value2"}, {"Param1", "value1"}});
  EXPECT_EQ(signer.StringToSign("20150830T123600Z", signer.CanonicalRequest(q, nullptr)),
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
            "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0");
}

TEST(SigV4Test, UriEncodeKeepsUnreservedAndOptionallySlash) {
  EXPECT_EQ(UriEncode("Test/Apple Braeburn/r_1+2~x.jpg", true), "Test/Apple%20Braeburn/r_1%2B2~x.jpg");
  EXPECT_EQ(UriEncode("a/b=c", false), "a%2Fb%3Dc");
  EXPECT_EQ(UriEncode("(1)!*'", false), "%281%29%21%2A%27");
  EXPECT_EQ(CanonicalQueryString({{"prefix", "Test/"}, {"list-type", "2"}, {"uploads", ""}}),
            "list-type=2&prefix=Test%2F&uploads=");
}

TEST(SigV4Test, RedactSecretsRemovesCredentialMaterial) {
  const std::string text =
      "Authorization: AWS4-HMAC-SHA256 Credential=AKID/20150830/eu-west-1/s3/aws4_request, "
      "SignedHeaders=host, Signature=abcdef0123\n"
      "x-amz-security-token: FwoGZXIvYXdzEXAMPLETOKEN\n"
      "{\"SecretAccessKey\": \"wJalrXUtnFEMI/K7MDENG\", \"Token\": \"IQoJb3JpZ2luEXAMPLE\"}\n"
      "https://b.s3.amazonaws.com/k?X-Amz-Signature=0123abcd&X-Amz-Credential=AKID%2F2015";
  const std::string out = RedactSecrets(text);
  for (const char* secret : {"abcdef0123", "FwoGZXIvYXdzEXAMPLETOKEN", "wJalrXUtnFEMI", "IQoJb3JpZ2luEXAMPLE",
                             "0123abcd", "AKID%2F2015"}) {
    EXPECT_EQ(out.find(secret), std::string::npos) << secret << " survived in: " << out;
  }
  EXPECT_NE(out.find("[REDACTED]"), std::string::npos);
  EXPECT_EQ(RedactSecrets("s3://b/k: GET failed: 503 SlowDown"), "s3://b/k: GET failed: 503 SlowDown");
}

// The same S3 requests signed by @smithy/signature-v4, the AWS SDK for JavaScript's signer.
TEST(SigV4Test, MatchesSmithySignatureV4OnS3Requests) {
  FRUITPIPE_REQUIRE_NODE_TOOLS();
  const AwsCredentials creds{"AKIAFRUITPIPEEXAMPLE", "s3cr3t/with+symbols=", "session/token+==", std::nullopt};
  const auto now = system_clock::from_time_t(1714564800);  // 2024-05-01T12:00:00Z
  const std::string host = "fruit-bucket.s3.eu-west-1.amazonaws.com";
  const std::string data = "jpeg bytes \x01\x02";
  std::vector<SignableRequest> requests;
  auto add = [&](std::string method, std::string path, std::vector<std::pair<std::string, std::string>> query,
                 HeaderList headers, std::string payload) {
    SignableRequest r;
    r.method = std::move(method);
    r.path = std::move(path);
    r.query = std::move(query);
    r.headers = {{"host", host}, {"x-amz-content-sha256", payload}};
    r.headers.insert(r.headers.end(), headers.begin(), headers.end());
    r.payload_sha256 = std::move(payload);
    requests.push_back(std::move(r));
  };
  const std::string empty = Sha256Hex("");
  add("GET", "/Test/Apple Braeburn/r_1_100.jpg", {}, {}, empty);
  add("GET", "/dir/\xE1\x88\xB4 (copy)!*'.jpg", {}, {}, empty);
  add("GET", "/", {{"list-type", "2"}, {"prefix", "Test/A b+c"}, {"continuation-token", "1/abc+def=="}}, {}, empty);
  add("PUT", "/Results/part-00000.snappy.parquet", {},
      {{"x-amz-server-side-encryption", "aws:kms"}, {"x-amz-server-side-encryption-aws-kms-key-id", "arn:aws:kms:eu-west-1:1:key/k"}},
      Sha256Hex(data));
  add("POST", "/big.bin", {{"uploads", ""}}, {{"x-amz-server-side-encryption", "AES256"}}, empty);
  add("PUT", "/big.bin", {{"partNumber", "2"}, {"uploadId", "VXBsb2Fk+SUQ="}}, {}, Sha256Hex(data));
  add("POST", "/", {{"delete", ""}}, {{"content-md5", "1B2M2Y8AsgTpgAmY7PhCfg=="}, {"content-type", "application/xml"}},
      Sha256Hex("<Delete/>"));
  add("PUT", "/to key", {}, {{"x-amz-copy-source", "/fruit-bucket/from%20key"}}, empty);

  nlohmann::json job = {{"accessKeyId", creds.access_key_id},
                        {"secretAccessKey", creds.secret_access_key},
                        {"sessionToken", creds.session_token},
                        {"region", "eu-west-1"},
                        {"service", "s3"},
                        {"date", "2024-05-01T12:00:00Z"},
                        {"requests", nlohmann::json::array()}};
  for (const auto& r : requests) {
    nlohmann::json query = nlohmann::json::object(), headers = nlohmann::json::object();
    for (const auto& [k, v] : r.query) query[k] = v;
    for (const auto& [k, v] : r.headers) {
      if (k != "host" && k != "x-amz-content-sha256") headers[k] = v;
    }
    job["requests"].push_back({{"method", r.method},
                               {"host", host},
                               {"path", r.path},
                               {"query", query},
                               {"headers", headers},
                               {"payloadSha256", r.payload_sha256}});
  }
  const auto smithy = nlohmann::json::parse(harness::RunNodeScript("sign_smithy.mjs", {}, job.dump()));
  ASSERT_EQ(smithy.size(), requests.size());
  const SigV4Signer signer("eu-west-1", "s3");
  for (std::size_t i = 0; i < requests.size(); ++i) {
    ASSERT_EQ(smithy[i].get<std::string>().rfind(
                  "AWS4-HMAC-SHA256 Credential=AKIAFRUITPIPEEXAMPLE/20240501/eu-west-1/s3/aws4_request, ", 0),
              0u);
    EXPECT_EQ(Header(signer.Sign(requests[i], creds, now), "authorization"), smithy[i].get<std::string>())
        << requests[i].method << " " << requests[i].path;
  }
}

}  // namespace
}  // namespace fruitpipe::storage::s3
