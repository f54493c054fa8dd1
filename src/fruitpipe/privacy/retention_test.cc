#include "fruitpipe/privacy/retention.h"

#include <gtest/gtest.h>

#include "fruitpipe/common/hash.h"
#include "fruitpipe/common/testing.h"
#include "fruitpipe/dataset/dataset.h"
#include "fruitpipe/privacy/test_dataset.h"
#include "fruitpipe/storage/memory_storage.h"

namespace fruitpipe::privacy {
namespace {

const std::string kAlice = Sha256Hex("alice");
const std::string kBob = Sha256Hex("bob");
constexpr std::int64_t kDay = 86400;
constexpr std::int64_t kNow = 1'700'000'000;

TEST(RetentionTest, PurgesExpiredPhotosFromStoreDatasetAndLedger) {
  testing::TempDir dir;
  auto ledger = ConsentLedger::Open((dir.path() / "ledger.sqlite").string(), ConsentLedger::Mode::kCreate);
  auto store = storage::OpenStorage((dir.path() / "store").string());
  auto out = storage::OpenStorage((dir.path() / "out").string());

  testdata::DatasetSpec spec;
  spec.source = store->Uri("");
  spec.photos = testdata::MixedPhotos({kAlice, kBob}, 2, 6);
  testdata::BuildDataset(*out, spec);
  // Ingest times: Alice's photos 40 days ago, Bob's 10 days ago.
  std::vector<std::string> old_keys;
  for (const auto& p : spec.photos) {
    store->Put(p.key, "jpeg bytes");
    if (!p.subject) continue;
    const bool old = p.subject == kAlice;
    ledger->RecordContribution({*p.subject, store->Uri(""), p.key, "training", kNow - (old ? 40 : 10) * kDay, std::nullopt});
    if (old) old_keys.push_back(p.key);
  }
  const auto before = testdata::CommittedRows(*out);

  PurgeOutcome outcome = PurgeExpired(*ledger, *store, {out.get()}, kNow - 30 * kDay, kNow);
  EXPECT_EQ(outcome.expired.size(), old_keys.size());
  EXPECT_EQ(outcome.report.photos_deleted, static_cast<std::int64_t>(old_keys.size()));
  EXPECT_EQ(outcome.report.rows_removed, static_cast<std::int64_t>(old_keys.size()));
  for (const auto& k : old_keys) EXPECT_FALSE(store->Exists(k)) << k;
  auto expected = before;
  std::erase_if(expected, [](const auto& kv) { return kv.second.row.subject_id == kAlice; });
  EXPECT_EQ(testdata::CommittedRows(*out), expected);
  for (const auto& c : ledger->Contributions(kAlice)) EXPECT_EQ(c.erased_at, kNow);
  for (const auto& c : ledger->Contributions(kBob)) EXPECT_FALSE(c.erased_at.has_value());

  // Nothing else has expired: a second purge changes nothing.
  const auto snapshot = testdata::Snapshot(*out);
  PurgeOutcome again = PurgeExpired(*ledger, *store, {out.get()}, kNow - 30 * kDay, kNow);
  EXPECT_TRUE(again.expired.empty());
  EXPECT_EQ(testdata::Snapshot(*out), snapshot);
}

}  // namespace
}  // namespace fruitpipe::privacy
