#include "fruitpipe/privacy/ingest.h"

#include <gtest/gtest.h>

#include <fstream>

#include "fruitpipe/common/hash.h"
#include "fruitpipe/common/testing.h"
#include "fruitpipe/image/test_images.h"
#include "fruitpipe/dataset/plan.h"
#include "fruitpipe/privacy/test_photos.h"
#include "fruitpipe/storage/memory_storage.h"

namespace fruitpipe::privacy {
namespace {

const std::string kAlice = Sha256Hex("alice");
constexpr std::int64_t kNow = 1'700'000'000;

class IngestTest : public ::testing::Test {
 protected:
  IngestTest()
      : ledger_(ConsentLedger::Open((dir_.path() / "ledger.sqlite").string(), ConsentLedger::Mode::kCreate)),
        audit_((dir_.path() / "audit.jsonl").string()),
        store_(std::make_unique<storage::MemoryStorage>("ingest-test", std::make_shared<storage::MemoryStorage::Objects>())) {
    request_.subject_id = kAlice;
    request_.purpose = "training";
    request_.label = "Apple";
    const std::string plain = image::testimg::Encode(testphotos::TestPicture(40, 30), ".jpg");
    request_.photos = {{"phone.jpg", testphotos::PhoneJpeg(plain, 6)}, {"phone.png", testphotos::PhonePng(12, 8, 1)}};
  }
  testing::TempDir dir_;
  std::unique_ptr<ConsentLedger> ledger_;
  AuditLog audit_;
  std::unique_ptr<storage::MemoryStorage> store_;
  IngestRequest request_;
};

TEST_F(IngestTest, RefusedWithoutConsentAndAfterWithdrawal) {
  EXPECT_THROW(IngestPhotos(request_, *ledger_, *store_, &audit_, kNow), NoConsentError);
  ledger_->Grant(kAlice, "research", kNow);
  EXPECT_THROW(IngestPhotos(request_, *ledger_, *store_, &audit_, kNow), NoConsentError);  // other purpose
  ledger_->Grant(kAlice, "training", kNow);
  ledger_->Withdraw(kAlice, "training", kNow + 1);
  EXPECT_THROW(IngestPhotos(request_, *ledger_, *store_, &audit_, kNow + 2), NoConsentError);
  EXPECT_TRUE(store_->List("").empty());
  EXPECT_FALSE(std::ifstream(audit_.path()).good());  // nothing happened, nothing logged
}

TEST_F(IngestTest, StoresStrippedPhotosUnderTheSubjectsNameAndRecordsThem) {
  ledger_->Grant(kAlice, "training", kNow);
  const auto stored = IngestPhotos(request_, *ledger_, *store_, &audit_, kNow + 5);
  ASSERT_EQ(stored.size(), 2u);
  for (const auto& p : stored) {
    EXPECT_EQ(dataset::SubjectFromKey(p.key), kAlice) << p.key;
    EXPECT_EQ(p.key.substr(0, 6), "Apple/");
    const std::string bytes = store_->Get(p.key);
    EXPECT_EQ(p.key.substr(p.key.size() - 20, 16), Sha256Hex(bytes).substr(0, 16));
    EXPECT_EQ(bytes.find("FruitPhone"), std::string::npos);
    EXPECT_EQ(bytes.find("alice"), std::string::npos);
    EXPECT_LT(p.bytes_stored, p.bytes_in);
    EXPECT_FALSE(p.removed.empty());
  }
  EXPECT_TRUE(stored[0].key.ends_with(".jpg"));
  EXPECT_TRUE(stored[1].key.ends_with(".png"));
  const auto contributions = ledger_->Contributions(kAlice);
  ASSERT_EQ(contributions.size(), 2u);
  EXPECT_EQ(contributions[0].ingested_at, kNow + 5);
  EXPECT_EQ(contributions[0].store, store_->Uri(""));
  const auto v = audit_.Verify();
  EXPECT_TRUE(v.ok);
  EXPECT_EQ(v.lines, 1);
}

TEST_F(IngestTest, OneBadPhotoStoresNothing) {
  ledger_->Grant(kAlice, "training", kNow);
  request_.photos.push_back({"notes.txt", "not a photo at all"});
  try {
    IngestPhotos(request_, *ledger_, *store_, &audit_, kNow);
    ADD_FAILURE();
  } catch (const InvalidArgumentError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("notes.txt: ", 0), 0u) << e.what();
  }
  request_.photos.back() = {"pic.webp", image::testimg::Encode(testphotos::TestPicture(8, 8), ".webp")};
  try {
    IngestPhotos(request_, *ledger_, *store_, &audit_, kNow);
    ADD_FAILURE();
  } catch (const InvalidArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("pic.webp: unsupported format webp"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(store_->List("").empty());
  EXPECT_TRUE(ledger_->Contributions(kAlice).empty());
}

TEST_F(IngestTest, LabelsThatWouldEscapeOrHideAreRefused) {
  ledger_->Grant(kAlice, "training", kNow);
  for (const char* label : {"", "../x", "a/b", ".hidden", "_meta", "tab\there"}) {
    request_.label = label;
    EXPECT_THROW(IngestPhotos(request_, *ledger_, *store_, &audit_, kNow), InvalidArgumentError) << label;
  }
  EXPECT_TRUE(store_->List("").empty());
}

}  // namespace
}  // namespace fruitpipe::privacy
