#include "fruitpipe/privacy/consent_ledger.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include "fruitpipe/common/error.h"
#include "fruitpipe/common/testing.h"
#include "fruitpipe/common/time.h"

namespace fruitpipe::privacy {
namespace {

const std::string kAlice(64, 'a');
const std::string kBob(64, 'b');
constexpr std::int64_t kT0 = 1'700'000'000;

class ConsentLedgerTest : public ::testing::Test {
 protected:
  std::string Path() const { return (dir_.path() / "ledger" / "consent.sqlite").string(); }
  std::unique_ptr<ConsentLedger> OpenLedger() { return ConsentLedger::Open(Path(), ConsentLedger::Mode::kCreate); }
  testing::TempDir dir_;
};

TEST_F(ConsentLedgerTest, GrantWithdrawRegrantKeepsHistory) {
  auto ledger = OpenLedger();
  EXPECT_FALSE(ledger->HasConsent(kAlice, "training"));
  EXPECT_TRUE(ledger->Grant(kAlice, "training", kT0));
  EXPECT_FALSE(ledger->Grant(kAlice, "training", kT0 + 1));  // already active: no second row
  EXPECT_TRUE(ledger->HasConsent(kAlice, "training"));
  EXPECT_FALSE(ledger->HasConsent(kAlice, "research"));
  EXPECT_FALSE(ledger->HasConsent(kBob, "training"));

  EXPECT_TRUE(ledger->Withdraw(kAlice, "training", kT0 + 60));
  EXPECT_FALSE(ledger->Withdraw(kAlice, "training", kT0 + 61));  // nothing active
  EXPECT_FALSE(ledger->HasConsent(kAlice, "training"));
  EXPECT_TRUE(ledger->Grant(kAlice, "training", kT0 + 3600));
  EXPECT_TRUE(ledger->HasConsent(kAlice, "training"));

  const auto history = ledger->History(kAlice);
  ASSERT_EQ(history.size(), 2u);
  EXPECT_EQ(history[0].status, "withdrawn");
  EXPECT_EQ(history[0].granted_at, IsoUtc(kT0));
  EXPECT_EQ(history[0].withdrawn_at, IsoUtc(kT0 + 60));
  EXPECT_EQ(history[1].status, "granted");
  EXPECT_EQ(history[1].granted_at, IsoUtc(kT0 + 3600));
  EXPECT_FALSE(history[1].withdrawn_at.has_value());
}

TEST_F(ConsentLedgerTest, PersistsAcrossOpensAndIsPrivate) {
  OpenLedger()->Grant(kAlice, "training", kT0);
  struct stat st {};
  ASSERT_EQ(::stat(Path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto again = ConsentLedger::Open(Path(), ConsentLedger::Mode::kExisting);
  EXPECT_TRUE(again->HasConsent(kAlice, "training"));
  EXPECT_THROW(ConsentLedger::Open((dir_.path() / "nope.sqlite").string(), ConsentLedger::Mode::kExisting),
               NotFoundError);
}

TEST_F(ConsentLedgerTest, ErasureRequestsArePendingUntilDone) {
  auto ledger = OpenLedger();
  EXPECT_TRUE(ledger->PendingErasures().empty());
  EXPECT_TRUE(ledger->RequestErasure(kBob, kT0));
  EXPECT_TRUE(ledger->RequestErasure(kAlice, kT0 + 1));
  EXPECT_FALSE(ledger->RequestErasure(kBob, kT0 + 2));  // one pending request per person
  EXPECT_EQ(ledger->PendingErasures(), (std::vector<std::string>{kBob, kAlice}));
  ledger->MarkErasureDone(kBob, kT0 + 10);
  EXPECT_EQ(ledger->PendingErasures(), (std::vector<std::string>{kAlice}));
  EXPECT_TRUE(ledger->RequestErasure(kBob, kT0 + 20));  // a new request after the last was done
  EXPECT_THROW(ledger->RequestErasure("alice@example.org", kT0), InvalidArgumentError);
}

TEST_F(ConsentLedgerTest, AVersionOneLedgerGainsErasureRequests) {
  OpenLedger()->Grant(kAlice, "training", kT0);
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(Path().c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "DROP TABLE erasure_requests; PRAGMA user_version = 1;", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  auto ledger = ConsentLedger::Open(Path(), ConsentLedger::Mode::kExisting);
  EXPECT_TRUE(ledger->HasConsent(kAlice, "training"));
  EXPECT_TRUE(ledger->RequestErasure(kAlice, kT0));
}

TEST_F(ConsentLedgerTest, RefusesRawIdsAndBadPurposes) {
  auto ledger = OpenLedger();
  EXPECT_THROW(ledger->Grant("alice@example.org", "training", kT0), InvalidArgumentError);
  EXPECT_THROW(ledger->Grant(kAlice, "Training!", kT0), InvalidArgumentError);
  EXPECT_THROW(ledger->Grant(kAlice, "", kT0), InvalidArgumentError);
}

TEST_F(ConsentLedgerTest, NotALedgerIsReportedAsCorruption) {
  const std::string path = (dir_.path() / "garbage.sqlite").string();
  {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    std::fputs("this is not a database, just some text that is long enough to look like a header", f);
    std::fclose(f);
  }
  EXPECT_THROW(ConsentLedger::Open(path, ConsentLedger::Mode::kExisting), CorruptionError);
}

TEST_F(ConsentLedgerTest, WithdrawAllAndSubjectsWithConsent) {
  auto ledger = OpenLedger();
  ledger->Grant(kAlice, "training", kT0);
  ledger->Grant(kAlice, "research", kT0);
  ledger->Grant(kBob, "training", kT0);
  EXPECT_EQ(ledger->SubjectsWithConsent("training"), (std::set<std::string>{kAlice, kBob}));
  EXPECT_EQ(ledger->WithdrawAll(kAlice, kT0 + 5), 2);
  EXPECT_EQ(ledger->SubjectsWithConsent("training"), (std::set<std::string>{kBob}));
  EXPECT_EQ(ledger->SubjectsWithRecord("training"), (std::set<std::string>{kAlice, kBob}));
}

TEST_F(ConsentLedgerTest, ContributionsForRetention) {
  auto ledger = OpenLedger();
  const std::string store = "/data/contrib/";
  ledger->RecordContribution({kAlice, store, "Apple/contrib-a-1.jpg", "training", kT0, std::nullopt});
  ledger->RecordContribution({kAlice, store, "Apple/contrib-a-2.jpg", "training", kT0 + 100, std::nullopt});
  ledger->RecordContribution({kBob, store, "Kiwi/contrib-b-1.png", "training", kT0 + 200, std::nullopt});
  ledger->RecordContribution({kBob, "s3://other/", "Kiwi/contrib-b-1.png", "training", kT0, std::nullopt});

  auto old = ledger->ContributionsBefore(store, kT0 + 150);
  ASSERT_EQ(old.size(), 2u);
  EXPECT_EQ(old[0].key, "Apple/contrib-a-1.jpg");
  EXPECT_EQ(old[1].ingested_at, kT0 + 100);
  ledger->MarkErased(store, "Apple/contrib-a-1.jpg", kT0 + 1000);
  EXPECT_EQ(ledger->ContributionsBefore(store, kT0 + 150).size(), 1u);

  // Re-ingesting refreshes the time and un-erases.
  ledger->RecordContribution({kAlice, store, "Apple/contrib-a-1.jpg", "training", kT0 + 2000, std::nullopt});
  auto mine = ledger->Contributions(kAlice);
  ASSERT_EQ(mine.size(), 2u);
  EXPECT_EQ(mine[0].ingested_at, kT0 + 2000);
  EXPECT_FALSE(mine[0].erased_at.has_value());

  EXPECT_EQ(ledger->MarkSubjectErased(kBob, kT0 + 3000), 2);
  for (const auto& c : ledger->Contributions(kBob)) EXPECT_EQ(c.erased_at, kT0 + 3000);
}

TEST_F(ConsentLedgerTest, ConsentFilterAdmitsCatalogueAndConsentingSubjectsOnly) {
  {
    auto ledger = OpenLedger();
    ledger->Grant(kAlice, "training", kT0);
    ledger->Grant(kBob, "training", kT0);
    ledger->Withdraw(kBob, "training", kT0 + 1);
  }
  const std::string carol(64, 'c');
  auto filter = MakeConsentFilter(Path(), "training");
  dataset::SourceImage catalogue{"Apple/1.jpg", "Apple", 10, std::nullopt};
  dataset::SourceImage alice{"Apple/contrib-" + kAlice + "-x.jpg", "Apple", 10, kAlice};
  dataset::SourceImage bob{"Apple/contrib-" + kBob + "-x.jpg", "Apple", 10, kBob};
  dataset::SourceImage unknown{"Apple/contrib-" + carol + "-x.jpg", "Apple", 10, carol};
  EXPECT_EQ(filter(catalogue), std::nullopt);
  EXPECT_EQ(filter(alice), std::nullopt);
  EXPECT_EQ(filter(bob), "consent for training withdrawn");
  EXPECT_EQ(filter(unknown), "no consent for training recorded");
  EXPECT_THROW(MakeConsentFilter((dir_.path() / "missing.sqlite").string(), "training"), NotFoundError);
}

}  // namespace
}  // namespace fruitpipe::privacy
