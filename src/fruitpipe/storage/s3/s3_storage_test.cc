// S3Storage against a real S3 server: s3rver (verifies SigV4 like AWS), sometimes behind the
// fault-injecting proxy from tests/harness. Everything listens on 127.0.0.1.
#include "fruitpipe/storage/s3/s3_storage.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "fruitpipe/common/error.h"
#include "fruitpipe/storage/s3/harness.h"
#include "fruitpipe/storage/s3/test_util.h"

namespace fruitpipe::storage {
namespace {

using namespace std::chrono_literals;
using s3::harness::FaultProxy;
using s3::harness::S3rver;

constexpr char kBucket[] = "fruitpipe-test";

std::shared_ptr<s3::CredentialsProvider> Creds(const std::string& secret = "S3RVER") {
  return std::make_shared<s3::StaticCredentialsProvider>(s3::AwsCredentials{"S3RVER", secret, "", std::nullopt},
                                                         "test");
}

S3Config Config(const std::string& endpoint, const std::string& prefix) {
  S3Config c;
  c.bucket = kBucket;
  c.prefix = prefix;
  c.endpoint = endpoint;
  c.retry_base_delay = 5ms;
  c.retry_max_delay = 100ms;
  return c;
}

std::vector<nlohmann::json> Log(const FaultProxy& proxy) {
  std::vector<nlohmann::json> out;
  for (const auto& line : proxy.LogLines()) out.push_back(nlohmann::json::parse(line));
  return out;
}

std::string Payload(std::size_t i, std::size_t size = 64) {
  std::string s = "object-" + std::to_string(i) + ":";
  while (s.size() < size) s += static_cast<char>('a' + (s.size() * 7 + i) % 26);
  return s;
}

void PutAll(Storage& store, const std::vector<std::string>& keys, int threads) {
  std::atomic<std::size_t> next{0};
  std::vector<std::thread> pool;
  std::exception_ptr error;
  std::mutex mu;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (std::size_t i = next++; i < keys.size(); i = next++) {
        try {
          store.Put(keys[i], Payload(i));
        } catch (...) {
          std::lock_guard lock(mu);
          error = std::current_exception();
          return;
        }
      }
    });
  }
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

class S3StorageTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    s3::testing::IsolateAwsEnvironment();
    if (!s3::testing::NodeToolsMissing().empty()) return;
    server_ = new S3rver({kBucket});
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    s3::testing::IsolateAwsEnvironment();
    FRUITPIPE_REQUIRE_NODE_TOOLS();
    prefix_ = std::string("t-") + ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }
  std::unique_ptr<S3Storage> Store(const std::string& secret = "S3RVER") {
    return std::make_unique<S3Storage>(Config(server_->endpoint(), prefix_), Creds(secret));
  }
  std::unique_ptr<S3Storage> StoreVia(const FaultProxy& proxy) {
    return std::make_unique<S3Storage>(Config(proxy.endpoint(), prefix_), Creds());
  }

  static S3rver* server_;
  std::string prefix_;
};

S3rver* S3StorageTest::server_ = nullptr;

TEST_F(S3StorageTest, SignedRoundTripKeepsTheStorageContract) {
  auto store = Store();
  store->Put("Test/B/2.jpg", "2");
  store->Put("Test/A/1 (copy).jpg", std::string("1\0x", 3));
  store->Put("Test/A/0.jpg", "0");
  store->Put("Other/x", "x");
  EXPECT_EQ(store->Get("Test/A/1 (copy).jpg"), std::string("1\0x", 3));
  EXPECT_TRUE(store->Exists("Test/A/0.jpg"));
  EXPECT_FALSE(store->Exists("Test/A/none.jpg"));

  const auto listed = store->List("Test/");
  ASSERT_EQ(listed.size(), 3u);
  EXPECT_EQ(listed[0].key, "Test/A/0.jpg");
  EXPECT_EQ(listed[1].key, "Test/A/1 (copy).jpg");
  EXPECT_EQ(listed[1].size, 3u);
  EXPECT_EQ(listed[2].key, "Test/B/2.jpg");
  EXPECT_EQ(store->List("").size(), 4u);
  EXPECT_EQ(store->List("Test/A/1").size(), 1u);
  EXPECT_EQ(store->Uri("Test/B/2.jpg"), "s3://fruitpipe-test/" + prefix_ + "/Test/B/2.jpg");

  EXPECT_THROW(store->Get("Test/missing.jpg"), NotFoundError);
  EXPECT_FALSE(store->GetIfExists("Test/missing.jpg").has_value());

  store->Put("tmp/part-0", "payload");
  store->Rename("tmp/part-0", "final/part-0");
  EXPECT_FALSE(store->Exists("tmp/part-0"));
  EXPECT_EQ(store->Get("final/part-0"), "payload");
  EXPECT_THROW(store->Rename("tmp/none", "final/none"), NotFoundError);

  store->Delete("final/part-0");
  EXPECT_FALSE(store->Exists("final/part-0"));
  EXPECT_NO_THROW(store->Delete("final/part-0"));

  // Another root in the same bucket sees nothing of this one.
  S3Storage other(Config(server_->endpoint(), prefix_ + "-other"), Creds());
  EXPECT_TRUE(other.List("").empty());
}

TEST_F(S3StorageTest, WrongSecretIsAccessDeniedWithAOneLineHint) {
  auto store = Store("not-the-secret");
  try {
    store->Put("k", "v");
    FAIL() << "a wrong secret was accepted";
  } catch (const InvalidArgumentError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("s3://fruitpipe-test/" + prefix_ + "/k: PUT access denied: SignatureDoesNotMatch "
                       "(check AWS_SECRET_ACCESS_KEY"),
              std::string::npos)
        << msg;
    EXPECT_EQ(msg.find("not-the-secret"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
  // Refused access is the store's failure, not the objects': GetMany throws as Get does.
  try {
    store->GetMany({"a", "b"}, [&](FetchResult&&) { ADD_FAILURE() << "a refused GET reported per key"; });
    FAIL() << "GetMany with a wrong secret did not throw";
  } catch (const InvalidArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("GET access denied: SignatureDoesNotMatch"), std::string::npos) << e.what();
  }
}

TEST_F(S3StorageTest, OpenStorageUsesTheEnvironmentAndRejectsAWrongSecret) {
  RegisterS3Storage();
  ::setenv("AWS_ACCESS_KEY_ID", "S3RVER", 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", "S3RVER", 1);
  ::setenv("AWS_ENDPOINT_URL", server_->endpoint().c_str(), 1);
  auto store = OpenStorage("s3://fruitpipe-test/" + prefix_);
  store->Put("hello.txt", "world");
  EXPECT_EQ(store->Get("hello.txt"), "world");
  EXPECT_EQ(store->Uri("hello.txt"), "s3://fruitpipe-test/" + prefix_ + "/hello.txt");

  ::setenv("AWS_SECRET_ACCESS_KEY", "wrong", 1);
  auto wrong = OpenStorage("s3://fruitpipe-test/" + prefix_);
  EXPECT_THROW(wrong->Get("hello.txt"), InvalidArgumentError);
  s3::testing::IsolateAwsEnvironment();
}

// ListObjectsV2 returns at most 1,000 keys per page: 1,100 objects need the continuation token.
TEST_F(S3StorageTest, ListPaginatesOverMoreThanAThousandKeysAndGetManyReadsThemAll) {
  // Class names like the dataset's, where "Cherry Wax/" sorts before "Cherry/" as keys but
  // after it as directories: s3rver then repeats keys at the page boundary.
  const char* classes[] = {"Apple", "Apple Red 1", "Banana", "Cherry", "Cherry Wax", "Kiwi", "Nectarine"};
  std::vector<std::string> keys;
  for (std::size_t i = 0; i < 1100; ++i) {
    keys.push_back("Test/" + std::string(classes[i % 7]) + "/r_" + std::to_string(i) + "_100.jpg");
  }
  PutAll(*Store(), keys, 8);
  // Listing and reading go through the logging proxy, to count pages and connections.
  FaultProxy proxy(server_->port(), {});
  auto store = StoreVia(proxy);

  const auto listed = store->List("Test/");
  ASSERT_EQ(listed.size(), keys.size());
  std::vector<std::string> sorted = keys;
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t i = 0; i < sorted.size(); ++i) ASSERT_EQ(listed[i].key, sorted[i]);
  int pages = 0, continued = 0;
  for (const auto& entry : Log(proxy)) {
    const std::string url = entry["url"];
    if (url.find("list-type=2") == std::string::npos) continue;
    ++pages;
    if (url.find("continuation-token=") != std::string::npos) ++continued;
    EXPECT_EQ(url.rfind("/fruitpipe-test?", 0), 0u) << "list must use /bucket?..., not /bucket/?: " << url;
  }
  EXPECT_EQ(pages, 2);
  EXPECT_EQ(continued, 1);

  std::vector<std::string> wanted = keys;
  wanted.push_back("Test/missing.jpg");
  std::map<std::string, FetchResult> got;
  store->GetMany(wanted, [&](FetchResult&& r) { got[r.key] = std::move(r); });
  ASSERT_EQ(got.size(), wanted.size());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    ASSERT_TRUE(got[keys[i]].ok) << got[keys[i]].error;
    ASSERT_EQ(got[keys[i]].data, Payload(i));
  }
  EXPECT_FALSE(got["Test/missing.jpg"].ok);
  EXPECT_NE(got["Test/missing.jpg"].error.find("Test/missing.jpg: no such key"), std::string::npos);

  // GetMany keeps max_in_flight requests on reused connections instead of one per object.
  std::set<int> connections;
  for (const auto& entry : Log(proxy)) {
    if (entry["method"] == "GET" && entry["url"].get<std::string>().find("_100.jpg") != std::string::npos) {
      connections.insert(entry["conn"].get<int>());
    }
  }
  EXPECT_LE(connections.size(), static_cast<std::size_t>(store->config().max_in_flight) + 2);

  store->DeleteMany(keys);
  EXPECT_TRUE(store->List("Test/").empty());
}

TEST_F(S3StorageTest, MultipartUploadRoundTripsALargeObject) {
  FaultProxy proxy(server_->port(), {});
  S3Config config = Config(proxy.endpoint(), prefix_);
  config.part_size = 5u << 20;
  config.multipart_threshold = 5u << 20;
  S3Storage store(config, Creds());
  std::string data((20u << 20) + 12345, '\0');
  std::mt19937_64 rng(42);
  for (auto& c : data) c = static_cast<char>(rng());
  store.Put("big/blob.bin", data);
  EXPECT_EQ(store.Get("big/blob.bin"), data);
  EXPECT_EQ(store.List("big/")[0].size, data.size());

  int parts = 0, initiated = 0, completed = 0;
  for (const auto& e : Log(proxy)) {
    const std::string url = e["url"], method = e["method"];
    if (method == "POST" && url.find("?uploads") != std::string::npos) {
      ++initiated;
      EXPECT_EQ(e["sse"], "AES256");  // encryption is chosen when the upload starts
    }
    if (method == "PUT" && url.find("partNumber=") != std::string::npos) {
      ++parts;
      EXPECT_NE(e["contentSha256"], "UNSIGNED-PAYLOAD");
    }
    if (method == "POST" && url.find("?uploadId=") != std::string::npos) ++completed;
  }
  EXPECT_EQ(initiated, 1);
  EXPECT_EQ(parts, 5);
  EXPECT_EQ(completed, 1);
}

TEST_F(S3StorageTest, FailedMultipartUploadIsAborted) {
  // Part 2 fails every time: the upload must be aborted, never completed.
  FaultProxy proxy(server_->port(), {"--every", "1", "--modes", "500", "--match", "^PUT .*partNumber=2&"});
  S3Config config = Config(proxy.endpoint(), prefix_);
  config.part_size = 5u << 20;
  config.multipart_threshold = 5u << 20;
  config.max_attempts = 2;
  S3Storage store(config, Creds());
  const std::string data((12u << 20), 'x');
  try {
    store.Put("big/fails.bin", data);
    FAIL() << "the upload succeeded although part 2 always fails";
  } catch (const IOError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("PUT (part 2) failed after 2 attempts: 500 InternalError"), std::string::npos) << msg;
    EXPECT_NE(msg.find("multipart upload"), std::string::npos) << msg;
  }
  std::string upload_id;
  bool aborted = false, completed = false;
  for (const auto& e : Log(proxy)) {
    const std::string url = e["url"], method = e["method"];
    if (method == "POST" && url.find("?uploadId=") != std::string::npos) completed = true;
    if (method == "DELETE" && url.find("uploadId=") != std::string::npos) aborted = true;
  }
  EXPECT_TRUE(aborted) << "no AbortMultipartUpload (DELETE ?uploadId=) was sent";
  EXPECT_FALSE(completed);
  EXPECT_FALSE(store.Exists("big/fails.bin"));
}

TEST_F(S3StorageTest, TransientFailuresAreRetried) {
  // Every other request fails: 503 SlowDown, a connection reset, 500 InternalError in turn;
  // never the same request more than 3 times in a row, so 5 attempts always get through.
  FaultProxy proxy(server_->port(), {"--every", "2", "--modes", "503,reset,500", "--max-consecutive", "3"});
  auto store = StoreVia(proxy);
  std::vector<std::string> keys;
  for (int i = 0; i < 24; ++i) keys.push_back("r/" + std::to_string(i));
  PutAll(*store, keys, 4);
  for (std::size_t i = 0; i < keys.size(); ++i) EXPECT_EQ(store->Get(keys[i]), Payload(i));
  EXPECT_EQ(store->List("r/").size(), keys.size());
  int ok = 0;
  store->GetMany(keys, [&](FetchResult&& r) {
    EXPECT_TRUE(r.ok) << r.error;
    ok += r.ok ? 1 : 0;
  });
  EXPECT_EQ(ok, 24);
  std::map<std::string, int> faults;
  for (const auto& e : Log(proxy)) {
    if (!e["fault"].is_null()) ++faults[e["fault"].get<std::string>()];
    if (::testing::Test::HasFailure()) std::cerr << e.dump() << "\n";
  }
  EXPECT_GT(faults["503"], 5);
  EXPECT_GT(faults["reset"], 5);
  EXPECT_GT(faults["500"], 5);
}

TEST_F(S3StorageTest, RetriesAreBoundedAndTheLastErrorIsReported) {
  FaultProxy proxy(server_->port(), {"--every", "1", "--modes", "503"});
  RegisterS3Storage();
  ::setenv("AWS_ACCESS_KEY_ID", "S3RVER", 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", "S3RVER", 1);
  ::setenv("FRUITPIPE_S3_MAX_ATTEMPTS", "3", 1);
  StorageOptions options;
  options.endpoint = proxy.endpoint();
  auto store = OpenStorage("s3://fruitpipe-test/" + prefix_, options);
  try {
    store->Get("k");
    FAIL() << "no error although every request fails";
  } catch (const IOError& e) {
    EXPECT_STREQ(e.what(), ("s3://fruitpipe-test/" + prefix_ + "/k: GET failed after 3 attempts: 503 SlowDown").c_str());
  }
  EXPECT_EQ(proxy.LogLines().size(), 3u);

  FaultProxy resets(server_->port(), {"--every", "1", "--modes", "reset"});
  options.endpoint = resets.endpoint();
  store = OpenStorage("s3://fruitpipe-test/" + prefix_, options);
  try {
    store->Put("k", "v");
    FAIL() << "no error although every connection is reset";
  } catch (const IOError& e) {
    EXPECT_NE(std::string(e.what()).find("PUT failed after 3 attempts: connection reset"), std::string::npos)
        << e.what();
  }
  s3::testing::IsolateAwsEnvironment();
}

// An outage while reading many objects ends the call with the last error: reporting it per
// key would let the pipeline list every image of the outage as a rejected input and finish
// without them. A missing key stays a per-key result.
TEST_F(S3StorageTest, GetManyThrowsWhenRetriesRunOutAndReportsOnlyMissingKeysPerKey) {
  auto direct = Store();
  direct->Put("a", "1");
  direct->Put("b", "2");
  FaultProxy proxy(server_->port(), {"--every", "1", "--modes", "503", "--match", "^GET .*/b$"});
  auto store = StoreVia(proxy);
  std::vector<std::string> reported;
  try {
    store->GetMany({"a", "missing", "b"}, [&](FetchResult&& r) { reported.push_back(r.key); });
    FAIL() << "GetMany reported an outage per key";
  } catch (const IOError& e) {
    EXPECT_NE(std::string(e.what()).find("/b: GET failed after 5 attempts: 503 SlowDown"), std::string::npos)
        << e.what();
  }
  for (const auto& key : reported) EXPECT_NE(key, "b");

  std::map<std::string, FetchResult> got;
  direct->GetMany({"a", "missing"}, [&](FetchResult&& r) { got[r.key] = std::move(r); });
  EXPECT_TRUE(got["a"].ok);
  EXPECT_FALSE(got["missing"].ok);
  EXPECT_NE(got["missing"].error.find("missing: no such key"), std::string::npos) << got["missing"].error;
}

TEST_F(S3StorageTest, EveryPutAsksForServerSideEncryption) {
  FaultProxy proxy(server_->port(), {});
  auto store = StoreVia(proxy);
  store->Put("a", "1");
  store->Rename("a", "b");
  S3Config kms = Config(proxy.endpoint(), prefix_);
  kms.sse = "aws:kms";
  kms.sse_kms_key_id = "arn:aws:kms:eu-west-1:123456789000:key/test";
  S3Storage kms_store(kms, Creds());
  kms_store.Put("c", "3");
  int puts = 0;
  for (const auto& e : Log(proxy)) {
    if (e["method"] != "PUT") continue;
    ++puts;
    if (e["url"].get<std::string>().find("/c") != std::string::npos) {
      EXPECT_EQ(e["sse"], "aws:kms");
      EXPECT_EQ(e["sseKmsKeyId"], kms.sse_kms_key_id);
    } else {
      EXPECT_EQ(e["sse"], "AES256") << e.dump();
    }
    EXPECT_EQ(e["contentSha256"].get<std::string>().size(), 64u);
  }
  EXPECT_EQ(puts, 3);  // put, copy (rename), kms put
}

TEST_F(S3StorageTest, NonEuRegionIsRefusedBeforeAnyRequest) {
  // The proxy stands in for both S3 and the metadata service: it must see nothing.
  FaultProxy proxy(server_->port(), {});
  RegisterS3Storage();
  ::unsetenv("AWS_EC2_METADATA_DISABLED");
  ::setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", proxy.endpoint().c_str(), 1);
  StorageOptions options;
  options.endpoint = proxy.endpoint();
  options.region = "us-east-1";
  try {
    OpenStorage("s3://fruitpipe-test/" + prefix_, options);
    FAIL() << "us-east-1 was accepted";
  } catch (const InvalidArgumentError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("s3://fruitpipe-test/" + prefix_ + ": region us-east-1 (from --region) is outside the EU/EEA"),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find("GDPR"), std::string::npos);
    EXPECT_NE(msg.find("--allow-non-eu-region"), std::string::npos);
    EXPECT_EQ(msg.find('\n'), std::string::npos);
  }
  options.region.clear();
  ::setenv("AWS_REGION", "ap-southeast-2", 1);
  EXPECT_THROW(OpenStorage("s3://fruitpipe-test/" + prefix_, options), InvalidArgumentError);
  EXPECT_TRUE(proxy.LogLines().empty());
  S3Config us = Config(proxy.endpoint(), prefix_);
  us.region = "us-west-2";
  EXPECT_THROW(S3Storage(us, Creds()), InvalidArgumentError);

  // The explicit override lets it through.
  ::setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
  ::setenv("AWS_ACCESS_KEY_ID", "S3RVER", 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", "S3RVER", 1);
  options.allow_non_eu_region = true;
  auto store = OpenStorage("s3://fruitpipe-test/" + prefix_, options);
  store->Put("k", "v");
  EXPECT_EQ(store->Get("k"), "v");
  s3::testing::IsolateAwsEnvironment();
}

TEST(S3AddressingTest, VirtualHostedOnAwsPathStyleElsewhere) {
  s3::testing::IsolateAwsEnvironment();
  S3Config aws;
  aws.bucket = "fruit-images";
  aws.prefix = "Test";
  aws.region = "eu-central-1";
  EXPECT_EQ(S3Storage(aws, Creds()).ObjectUrl("Apple Braeburn/r_1.jpg"),
            "https://fruit-images.s3.eu-central-1.amazonaws.com/Test/Apple%20Braeburn/r_1.jpg");
  S3Config dotted = aws;
  dotted.bucket = "fruit.images";
  EXPECT_EQ(S3Storage(dotted, Creds()).ObjectUrl("x"), "https://s3.eu-central-1.amazonaws.com/fruit.images/Test/x");
  S3Config custom = aws;
  custom.endpoint = "http://127.0.0.1:9000/";
  EXPECT_EQ(S3Storage(custom, Creds()).ObjectUrl("x"), "http://127.0.0.1:9000/fruit-images/Test/x");
  custom.addressing = S3Addressing::kVirtualHosted;
  custom.endpoint = "https://minio.example.eu:443";
  EXPECT_EQ(S3Storage(custom, Creds()).ObjectUrl("x"), "https://fruit-images.minio.example.eu/Test/x");
  S3Config forced_path = aws;
  forced_path.addressing = S3Addressing::kPath;
  EXPECT_EQ(S3Storage(forced_path, Creds()).ObjectUrl("x"),
            "https://s3.eu-central-1.amazonaws.com/fruit-images/Test/x");
}

TEST(S3AddressingTest, ParsesUrisAndRejectsBadConfiguration) {
  s3::testing::IsolateAwsEnvironment();
  EXPECT_EQ(ParseS3Uri("s3://bucket/Results/").prefix, "Results");
  EXPECT_EQ(ParseS3Uri("s3://bucket").prefix, "");
  EXPECT_EQ(ParseS3Uri("s3://bucket/a/b").bucket, "bucket");
  EXPECT_THROW(ParseS3Uri("s3:///x"), InvalidArgumentError);
  EXPECT_THROW(ParseS3Uri("/local/path"), InvalidArgumentError);
  S3Config bad;
  bad.bucket = "b";
  bad.sse = "none";
  EXPECT_THROW(S3Storage(bad, Creds()), InvalidArgumentError);
  bad.sse = "AES256";
  bad.sse_kms_key_id = "k";
  EXPECT_THROW(S3Storage(bad, Creds()), InvalidArgumentError);
  bad.sse_kms_key_id.clear();
  bad.endpoint = "ftp://host";
  EXPECT_THROW(S3Storage(bad, Creds()), InvalidArgumentError);
  ::setenv("FRUITPIPE_S3_MAX_ATTEMPTS", "zero", 1);
  ::setenv("AWS_ACCESS_KEY_ID", "a", 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", "b", 1);
  EXPECT_THROW(S3Storage::Open("s3://b/p", {}), InvalidArgumentError);
  s3::testing::IsolateAwsEnvironment();
}

}  // namespace
}  // namespace fruitpipe::storage
