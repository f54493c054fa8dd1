#include "fruitpipe/serve/app_backend.h"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include <opencv2/imgcodecs.hpp>

#include "fruitpipe/common/env_vars.h"
#include "fruitpipe/common/error.h"
#include "fruitpipe/common/testing.h"
#include "fruitpipe/privacy/test_photos.h"

namespace fruitpipe::serve {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kUser[] = "app-user-7f3e@example.com";

class AppBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    key_file_ = dir_.path() / "subject.key";
    std::ofstream(key_file_) << std::string(64, 'k') << "\n";
    ::chmod(key_file_.c_str(), 0600);
    AppOptions o;
    o.ledger = (dir_.path() / "ledger.db").string();
    o.store = (dir_.path() / "store").string();
    o.subject_key_file = key_file_.string();
    o.contributions_per_minute = 60;
    o.contributions_burst = 2;
    backend_ = std::make_unique<AppBackend>(o, std::vector<std::string>{"Banana", "Kiwi"}, image::DecodeLimits{});
  }

  std::vector<fs::path> Stored() const {
    std::vector<fs::path> files;
    if (!fs::exists(dir_.path() / "store")) return files;
    for (const auto& e : fs::recursive_directory_iterator(dir_.path() / "store")) {
      if (e.is_regular_file()) files.push_back(e.path());
    }
    return files;
  }
  std::string AuditText() const { return ReadLocalFile((dir_.path() / "audit.jsonl").string()); }
  int AuditLines() const {
    const std::string t = AuditText();
    return static_cast<int>(std::count(t.begin(), t.end(), '\n'));
  }
  static std::string PhonePhoto() {
    std::vector<unsigned char> jpg;
    cv::imencode(".jpg", privacy::testphotos::TestPicture(64, 48), jpg);
    return privacy::testphotos::PhoneJpeg(std::string(jpg.begin(), jpg.end()), 1);
  }

  testing::TempDir dir_;
  fs::path key_file_;
  std::unique_ptr<AppBackend> backend_;
  const std::optional<std::string> user_ = std::string(kUser);
};

TEST_F(AppBackendTest, RefusalsHaveStatusAndReasonStoreNothingAndAreAudited) {
  auto a = backend_->CheckContribution(std::nullopt, "Banana", "training");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->status, 400);
  EXPECT_EQ(a->body["error"], kAppMissingSubject);
  a = backend_->CheckContribution(std::string("bad\nid"), "Banana", "training");
  EXPECT_EQ(a->status, 400);
  EXPECT_EQ(a->body["error"], kAppBadSubject);
  a = backend_->CheckContribution(user_, "Banana", "Not A Purpose");
  EXPECT_EQ(a->body["error"], kAppBadPurpose);
  a = backend_->CheckContribution(user_, "Durian", "training");
  EXPECT_EQ(a->status, 422);
  EXPECT_EQ(a->body["error"], kAppBadLabel);
  a = backend_->CheckContribution(user_, "Banana", "training");
  EXPECT_EQ(a->status, 403);
  EXPECT_EQ(a->body["error"], kAppNoConsent);
  EXPECT_EQ(backend_->Contribute(user_, "Banana", "training", PhonePhoto()).status, 403);
  EXPECT_TRUE(Stored().empty());
  EXPECT_EQ(AuditLines(), 6);  // one per refused contribution
  EXPECT_EQ(AuditText().find(kUser), std::string::npos);
  EXPECT_NE(AuditText().find("\"error\":\"no_consent\""), std::string::npos);
}

TEST_F(AppBackendTest, ConsentThenContributionStoresTheStrippedPhotoUnderThePseudonym) {
  auto c = backend_->ChangeConsent(user_, R"({"purpose":"training","action":"grant"})");
  EXPECT_EQ(c.status, 200);
  EXPECT_TRUE(c.body["changed"].get<bool>());
  EXPECT_FALSE(backend_->ChangeConsent(user_, R"({"purpose":"training","action":"grant"})").body["changed"].get<bool>());
  EXPECT_TRUE(backend_->Consent(user_, "training").body["consent"].get<bool>());
  EXPECT_FALSE(backend_->Consent(user_, "research").body["consent"].get<bool>());

  EXPECT_FALSE(backend_->CheckContribution(user_, "Banana", "training"));
  const AppAnswer stored = backend_->Contribute(user_, "Banana", "training", PhonePhoto());
  ASSERT_EQ(stored.status, 201) << stored.body.dump();
  const std::string key = stored.body["key"];
  EXPECT_EQ(key.rfind("Banana/contrib-", 0), 0u) << key;
  // The answer shortens the pseudonym the key holds.
  EXPECT_EQ(stored.body["subject"], privacy::ShortSubject(key.substr(std::string("Banana/contrib-").size(), 64)));
  const auto files = Stored();
  ASSERT_EQ(files.size(), 1u);
  const std::string bytes = ReadLocalFile(files[0].string());
  for (const char* gone : {"FruitPhone", "Paris", "alice", "TRAILER", "Exif"}) {
    EXPECT_EQ(bytes.find(gone), std::string::npos) << gone << " reached the store";
  }

  // A photo that is not one: refused, nothing more stored.
  const AppAnswer bad = backend_->Contribute(user_, "Banana", "training", "not a jpeg at all");
  EXPECT_EQ(bad.status, 422);
  EXPECT_EQ(bad.body["error"], kAppUnusableImage);
  EXPECT_EQ(Stored().size(), 1u);

  // Withdrawn: the next contribution is refused.
  EXPECT_EQ(backend_->ChangeConsent(user_, R"({"purpose":"training","action":"withdraw"})").status, 200);
  EXPECT_EQ(backend_->Contribute(user_, "Kiwi", "training", PhonePhoto()).status, 403);
  EXPECT_EQ(Stored().size(), 1u);

  // Neither the ledger nor the audit log holds the raw user id.
  EXPECT_EQ(ReadLocalFile((dir_.path() / "ledger.db").string()).find(kUser), std::string::npos);
  EXPECT_EQ(AuditText().find(kUser), std::string::npos);
  EXPECT_TRUE(privacy::AuditLog((dir_.path() / "audit.jsonl").string()).Verify().ok);
}

TEST_F(AppBackendTest, MalformedConsentBodiesAreBadRequests) {
  for (const char* body : {"", "{", "[]", R"({"purpose":"training"})", R"({"purpose":"training","action":"maybe"})",
                           R"({"purpose":7,"action":"grant"})"}) {
    const AppAnswer a = backend_->ChangeConsent(user_, body);
    EXPECT_EQ(a.status, 400) << body;
  }
  EXPECT_EQ(backend_->ChangeConsent(std::nullopt, R"({"purpose":"training","action":"grant"})").status, 400);
  EXPECT_EQ(backend_->Consent(user_, "").status, 400);
}

TEST_F(AppBackendTest, ErasureRequestIsRecordedOncePending) {
  const AppAnswer first = backend_->RequestErasure(user_);
  EXPECT_EQ(first.status, 202);
  EXPECT_TRUE(first.body["new"].get<bool>());
  EXPECT_FALSE(backend_->RequestErasure(user_).body["new"].get<bool>());
  auto ledger = privacy::ConsentLedger::Open((dir_.path() / "ledger.db").string(), privacy::ConsentLedger::Mode::kExisting);
  EXPECT_EQ(ledger->PendingErasures().size(), 1u);
  EXPECT_NE(AuditText().find("erasure.request"), std::string::npos);
}

TEST_F(AppBackendTest, RateLimitIsPerClientAddress) {
  int retry = 0;
  EXPECT_TRUE(backend_->AdmitContribution("10.0.0.1", &retry));
  EXPECT_TRUE(backend_->AdmitContribution("10.0.0.1", &retry));
  EXPECT_FALSE(backend_->AdmitContribution("10.0.0.1", &retry));
  EXPECT_GE(retry, 1);
  EXPECT_TRUE(backend_->AdmitContribution("10.0.0.2", &retry));
}

TEST_F(AppBackendTest, AKeyReadableByOthersIsRefusedAtStart) {
  ::chmod(key_file_.c_str(), 0644);
  AppOptions o;
  o.ledger = (dir_.path() / "other.db").string();
  o.store = (dir_.path() / "store2").string();
  o.subject_key_file = key_file_.string();
  EXPECT_THROW(AppBackend(o, {"Banana"}, image::DecodeLimits{}), InvalidArgumentError);
}

}  // namespace
}  // namespace fruitpipe::serve
