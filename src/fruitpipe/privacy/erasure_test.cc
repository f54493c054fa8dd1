#include "fruitpipe/privacy/erasure.h"

#include <algorithm>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "fruitpipe/common/error.h"
#include "fruitpipe/common/hash.h"
#include "fruitpipe/common/testing.h"
#include "fruitpipe/dataset/dataset.h"
#include "fruitpipe/privacy/test_dataset.h"
#include "fruitpipe/report/report.h"
#include "fruitpipe/storage/s3/test_util.h"
#include "fruitpipe/storage/memory_storage.h"

namespace fruitpipe::privacy {
namespace {

using nlohmann::json;
using storage::MemoryStorage;
using testdata::Row;

const std::string kAlice = Sha256Hex("alice");
const std::string kBob = Sha256Hex("bob");

// A fresh in-memory store of its own (not shared through mem://), optionally seeded.
std::unique_ptr<MemoryStorage> NewStore(const std::map<std::string, std::string>& objects = {}) {
  auto shared = std::make_shared<MemoryStorage::Objects>();
  for (const auto& [k, v] : objects) shared->data[k] = v;
  return std::make_unique<MemoryStorage>("erasure-test", std::move(shared));
}

testdata::DatasetSpec Spec() {
  testdata::DatasetSpec spec;
  spec.photos = testdata::MixedPhotos({kAlice, kBob}, 3, 6);  // 18 photos, 12 contributed
  // One of Alice's photos could not be decoded: it is in the plan and rejected.jsonl only.
  spec.photos.push_back({testdata::ContribKey("Fruit 9", kAlice, 99), "Fruit 9", kAlice, "truncated JPEG"});
  spec.list_rejects.push_back({spec.source + "/stray.jpg", "no class folder: images must be in <Label>/ folders"});
  return spec;
}

ErasureSelector Subjects(std::initializer_list<std::string> ids) {
  ErasureSelector s;
  s.subjects = ids;
  return s;
}

std::map<std::string, Row> Without(std::map<std::string, Row> rows, const std::string& subject) {
  std::erase_if(rows, [&](const auto& kv) { return kv.second.row.subject_id == subject; });
  return rows;
}

bool Mentions(const std::map<std::string, std::string>& objects, const std::string& needle) {
  for (const auto& [k, v] : objects) {
    if (k.find(needle) != std::string::npos || v.find(needle) != std::string::npos) return true;
  }
  return false;
}

TEST(ErasureTest, ForgetRemovesEveryTraceOfTheSubjectAndKeepsOtherRowsExactly) {
  auto out = NewStore();
  const auto spec = Spec();
  testdata::BuildDataset(*out, spec);
  const auto before = testdata::CommittedRows(*out);
  ASSERT_EQ(before.size(), 18u);
  ASSERT_TRUE(Mentions(testdata::Snapshot(*out), kAlice));

  ErasureReport report;
  EraseFromDataset(*out, Subjects({kAlice}), &report);
  EXPECT_EQ(report.rows_removed, 6);
  EXPECT_EQ(report.rows_by_subject.at(kAlice), 6);
  EXPECT_EQ(report.plan_entries_removed, 7);
  EXPECT_EQ(report.rejected_entries_removed, 2);  // the commit record's entry and the jsonl line
  EXPECT_EQ(report.pca, "refit");
  EXPECT_GT(report.shards_rewritten, 0);

  // Not a byte of the dataset names Alice any more: rows, plan, rejections, records, markers.
  EXPECT_FALSE(Mentions(testdata::Snapshot(*out), kAlice));
  const auto after = testdata::CommittedRows(*out);
  EXPECT_EQ(after, Without(before, kAlice));
  EXPECT_EQ(testdata::PcaRows(*out).size(), after.size());
  EXPECT_TRUE(out->Exists(dataset::kSuccessKey));
  EXPECT_FALSE(out->Exists(dataset::kErasureMarkerKey));

  // Bob and the catalogue are all there, and the pipeline's own readers still work.
  const auto plan = dataset::DatasetPlan::FromJson(out->Get(dataset::kPlanKey));
  EXPECT_EQ(plan.num_images(), 12u);
  EXPECT_TRUE(json::parse(out->Get(dataset::kPlanKey)).contains("model"));  // resume identity kept
  const json run = json::parse(out->Get(dataset::kRunJsonKey));
  EXPECT_EQ(run["images"], 12);
  EXPECT_EQ(run["rejected"], 1);
  EXPECT_EQ(run["listed"], 13);
  std::int64_t labelled = 0;
  for (const auto& [label, n] : run["labels"].items()) labelled += n.get<std::int64_t>();
  EXPECT_EQ(labelled, 12);
  EXPECT_EQ(out->Get(dataset::kRejectedKey).find("contrib-"), std::string::npos);
  EXPECT_NE(out->Get(dataset::kRejectedKey).find("stray.jpg"), std::string::npos);
}

TEST(ErasureTest, ErasedPhotosAreRememberedByTheirBytesOnly) {
  auto out = NewStore();
  testdata::BuildDataset(*out, Spec());
  std::set<std::string> alice_photos;
  for (const auto& [path, row] : testdata::CommittedRows(*out)) {
    if (row.row.subject_id == kAlice) alice_photos.insert(row.row.image_sha256);
  }
  ErasureReport report;
  EraseFromDataset(*out, Subjects({kAlice}), &report);
  EXPECT_EQ(dataset::LoadErasedPhotos(*out), alice_photos);
  EXPECT_EQ(report.photos_suppressed, 6);
  // The list names no photo and no person: only the SHA-256 of the bytes.
  EXPECT_FALSE(Mentions({{dataset::kErasedPhotosKey, out->Get(dataset::kErasedPhotosKey)}}, kAlice));
  EXPECT_EQ(out->Get(dataset::kErasedPhotosKey).find("contrib-"), std::string::npos);
  // Erasing Bob later adds his; nothing of Alice's is forgotten.
  EraseFromDataset(*out, Subjects({kBob}), &report);
  const auto both = dataset::LoadErasedPhotos(*out);
  EXPECT_EQ(both.size(), 12u);
  EXPECT_TRUE(std::includes(both.begin(), both.end(), alice_photos.begin(), alice_photos.end()));
}

TEST(ErasureTest, ADatasetProjectedWithTheErasedOnesModelIsProjectedAgain) {
  // TRAIN fits the model; TEST (run --pca-model TRAIN) applies it.
  auto train = NewStore(), test = NewStore();
  testdata::DatasetSpec train_spec = Spec();
  testdata::BuildDataset(*train, train_spec);
  testdata::DatasetSpec test_spec;
  test_spec.source = "/data/test";
  test_spec.photos = testdata::MixedPhotos({kBob}, 2, 4);
  test_spec.fitted = false;
  test_spec.applied_model = train->Get(dataset::kPcaModelKey);
  testdata::BuildDataset(*test, test_spec);

  ErasureReport report;
  EraseFromDatasets({train.get(), test.get()}, Subjects({kAlice}), &report);
  EXPECT_EQ(report.datasets_reprojected, 1);
  EXPECT_EQ(report.pca, "refit");

  // As a fresh TEST run with the erased TRAIN's model would be.
  auto expected = NewStore();
  test_spec.applied_model = train->Get(dataset::kPcaModelKey);
  testdata::BuildDataset(*expected, test_spec);
  EXPECT_EQ(testdata::PcaRows(*test), testdata::PcaRows(*expected));
  EXPECT_EQ(test->Get(dataset::kPcaModelKey), train->Get(dataset::kPcaModelKey));
  const json run = json::parse(test->Get(dataset::kRunJsonKey));
  EXPECT_EQ(run["pca"]["model_id"], dataset::ContentId(train->Get(dataset::kPcaModelKey)));
  EXPECT_EQ(run["pca"]["fitted"], false);
  EXPECT_TRUE(test->Exists(dataset::kSuccessKey));
  // Again: nothing left to do.
  const auto snapshot = testdata::Snapshot(*test);
  ErasureReport again;
  EraseFromDatasets({train.get(), test.get()}, Subjects({kAlice}), &again);
  EXPECT_EQ(testdata::Snapshot(*test), snapshot);
  EXPECT_EQ(again.pca_parts_written, 0);
}

TEST(ErasureTest, ShardStatisticsAreRecomputedFromTheKeptRows) {
  auto out = NewStore();
  testdata::BuildDataset(*out, Spec());
  const auto old_stats = testdata::ShardStats(*out);
  std::map<int, dataset::FeatureBatch> old_parts;
  for (const auto& rec : dataset::LoadShardRecords(*out)) old_parts[rec.index] = dataset::ParseResults(out->Get(rec.part_key));
  ErasureReport report;
  EraseFromDataset(*out, Subjects({kAlice}), &report);

  for (const auto& rec : dataset::LoadShardRecords(*out)) {
    const auto batch = dataset::ParseResults(out->Get(rec.part_key));
    pca::PcaStats expected(8);
    if (!batch.rows.empty()) expected.AddBatch(batch.vectors.data(), static_cast<int>(batch.rows.size()));
    const auto stored = pca::PcaStats::Deserialize(out->Get(rec.stats_key));
    EXPECT_EQ(stored.Serialize(), expected.Serialize()) << "shard " << rec.index;
    EXPECT_EQ(rec.rows, static_cast<std::int64_t>(batch.rows.size()));

    // The same statistics as subtracting Alice's rows (the design's arithmetic), up to rounding.
    const auto& old = old_parts.at(rec.index);
    pca::PcaStats alice(8);
    for (std::size_t i = 0; i < old.rows.size(); ++i) {
      if (old.rows[i].subject_id == kAlice) alice.Add(old.vectors.data() + i * 8);
    }
    pca::PcaStats subtracted = old_stats.at(rec.index);
    subtracted.Unmerge(alice);
    ASSERT_EQ(subtracted.count(), stored.count());
    if (stored.count() > 1) {
      EXPECT_LT((subtracted.Mean() - stored.Mean()).norm(), 1e-9);
      EXPECT_LT((subtracted.Scatter() - stored.Scatter()).norm(), 1e-9 * stored.Scatter().norm());
    }
    // But the shift (the first row accumulated) is a kept row, never an erased one.
    if (stored.count() > 0) {
      EXPECT_EQ(stored.shift(), Eigen::Map<const Eigen::VectorXf>(batch.vectors.data(), 8).cast<double>());
    }
  }
}

TEST(ErasureTest, SubtractingWouldLeaveTheErasedRowAsTheShift) {
  // Why the statistics are recomputed: PcaStats accumulates about its first row.
  const auto a = testdata::FeatureOf("a", "x", 4), b = testdata::FeatureOf("b", "x", 4),
             c = testdata::FeatureOf("c", "x", 4);
  pca::PcaStats s(4);
  s.Add(a.data());
  s.Add(b.data());
  s.Add(c.data());
  s.Subtract(a.data());
  EXPECT_EQ(s.shift(), Eigen::Map<const Eigen::VectorXf>(a.data(), 4).cast<double>());
  pca::PcaStats r(4);
  r.Add(b.data());
  r.Add(c.data());
  EXPECT_LT((s.Mean() - r.Mean()).norm(), 1e-9);  // the same data, mathematically
  EXPECT_LT((s.Scatter() - r.Scatter()).norm(), 1e-9);
}

TEST(ErasureTest, FittedModelIsRefitFromTheRemainingStatistics) {
  auto out = NewStore();
  testdata::BuildDataset(*out, Spec());
  const std::string old_model = out->Get(dataset::kPcaModelKey);
  ErasureReport report;
  EraseFromDataset(*out, Subjects({kAlice}), &report);

  std::vector<pca::PcaStats> parts;
  for (auto& [i, s] : testdata::ShardStats(*out)) parts.push_back(s);
  pca::PcaFitOptions fit;
  fit.k = 3;
  const pca::PcaModel expected = pca::FitPca(pca::MergeInOrder(parts), fit);
  const std::string bytes = out->Get(dataset::kPcaModelKey);
  EXPECT_EQ(bytes, expected.Serialize());
  EXPECT_NE(bytes, old_model);
  EXPECT_EQ(out->Get(dataset::kPcaModelJsonKey), expected.ToJson());
  const std::string id = Sha256Hex(bytes).substr(0, 12);
  for (const auto& obj : out->List("Results_PCA/")) EXPECT_NE(obj.key.find("-" + id + "."), std::string::npos) << obj.key;
  EXPECT_EQ(json::parse(out->Get(dataset::kRunJsonKey))["pca"]["model_id"], id);

  // pcaFeatures are the new model's projection of each remaining row.
  const auto rows = testdata::CommittedRows(*out);
  const auto pca_rows = testdata::PcaRows(*out);
  ASSERT_EQ(pca_rows.size(), rows.size());
  for (const auto& [path, row] : rows) {
    std::vector<float> x(row.values.begin(), row.values.end());
    std::vector<double> y(3);
    expected.Transform(x.data(), y.data());
    const auto& got = pca_rows.at(path).values;
    ASSERT_EQ(got.size(), 3u);
    for (int i = 0; i < 3; ++i) EXPECT_NEAR(got[i], y[i], 1e-9);
  }
}

TEST(ErasureTest, AppliedModelIsKeptAndItsPartsFiltered) {
  auto out = NewStore();
  auto spec = Spec();
  spec.fitted = false;
  testdata::BuildDataset(*out, spec);
  const std::string model = out->Get(dataset::kPcaModelKey);
  const auto pca_before = testdata::PcaRows(*out);
  ErasureReport report;
  EraseFromDataset(*out, Subjects({kAlice}), &report);
  EXPECT_EQ(report.pca, "filtered");
  EXPECT_EQ(report.pca_rows_removed, 6);
  EXPECT_EQ(out->Get(dataset::kPcaModelKey), model);
  EXPECT_EQ(testdata::PcaRows(*out), Without(pca_before, kAlice));
  EXPECT_FALSE(Mentions(testdata::Snapshot(*out), kAlice));
}

TEST(ErasureTest, NothingOfTheSubjectMeansNoWriteAtAll) {
  auto out = NewStore();
  testdata::BuildDataset(*out, Spec());
  ErasureReport first;
  EraseFromDataset(*out, Subjects({kAlice}), &first);
  const auto snapshot = testdata::Snapshot(*out);
  out->SetFaultHook([](std::string_view op, std::string_view key) {
    if (op == "put" || op == "delete") throw IOError("unexpected write: " + std::string(key));
  });
  ErasureReport again;
  EXPECT_NO_THROW(EraseFromDataset(*out, Subjects({kAlice}), &again));
  EXPECT_EQ(again.rows_removed, 0);
  EXPECT_EQ(again.pca, "unchanged");
  EXPECT_NO_THROW(EraseFromDataset(*out, Subjects({Sha256Hex("carol")}), &again));
  out->SetFaultHook(nullptr);
  EXPECT_EQ(testdata::Snapshot(*out), snapshot);
}

TEST(ErasureTest, ReportIsDrawnAgainWithoutTheSubject) {
  auto out = NewStore();
  testdata::BuildDataset(*out, Spec());
  report::WriteReport(*out);
  ASSERT_NE(out->Get(dataset::kReportKey).find(kAlice), std::string::npos);
  ErasureReport report;
  EraseFromDataset(*out, Subjects({kAlice}), &report);
  EXPECT_EQ(report.report, "regenerated");
  const std::string html = out->Get(dataset::kReportKey);
  EXPECT_EQ(html.find(kAlice), std::string::npos);
  EXPECT_NE(html.find(kBob), std::string::npos);
}

TEST(ErasureTest, NotADatasetIsAClearError) {
  auto out = NewStore();
  ErasureReport report;
  try {
    EraseFromDataset(*out, Subjects({kAlice}), &report);
    ADD_FAILURE();
  } catch (const InvalidArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("not a fruitpipe dataset"), std::string::npos);
  }
}

// The committed dataset must hold every row of every other subject at every instant.
void ExpectOthersIntact(storage::Storage& out, const std::map<std::string, Row>& others, int step) {
  auto rows = testdata::CommittedRows(out);
  std::erase_if(rows, [](const auto& kv) { return kv.second.row.subject_id == kAlice; });
  EXPECT_EQ(rows, others) << "after a crash at write " << step;
}

class ErasureCrashTest : public ::testing::TestWithParam<bool> {};

TEST_P(ErasureCrashTest, CrashAtEveryWriteThenRerunReachesTheSameDataset) {
  auto seed = NewStore();
  auto spec = Spec();
  spec.fitted = GetParam();
  testdata::BuildDataset(*seed, spec);
  const auto initial = testdata::Snapshot(*seed);
  const auto others = Without(testdata::CommittedRows(*seed), kAlice);

  auto clean = NewStore(initial);
  int writes = 0;
  clean->SetFaultHook([&](std::string_view op, std::string_view) { writes += op == "put" || op == "delete"; });
  ErasureReport r;
  EraseFromDataset(*clean, Subjects({kAlice}), &r);
  clean->SetFaultHook(nullptr);
  const auto expected = testdata::Snapshot(*clean);
  ASSERT_GT(writes, 10);

  for (int crash_at = 0; crash_at < writes; ++crash_at) {
    auto out = NewStore(initial);
    int n = 0;
    out->SetFaultHook([&](std::string_view op, std::string_view key) {
      if ((op == "put" || op == "delete") && n++ == crash_at) throw IOError("injected crash at " + std::string(key));
    });
    ErasureReport crashed;
    EXPECT_THROW(EraseFromDataset(*out, Subjects({kAlice}), &crashed), IOError) << crash_at;
    out->SetFaultHook(nullptr);
    ExpectOthersIntact(*out, others, crash_at);
    ErasureReport rerun;
    EraseFromDataset(*out, Subjects({kAlice}), &rerun);
    EXPECT_EQ(testdata::Snapshot(*out), expected) << "crash at write " << crash_at;
    EXPECT_FALSE(out->Exists(dataset::kErasureMarkerKey));
  }
}

INSTANTIATE_TEST_SUITE_P(FittedAndAppliedModels, ErasureCrashTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Fitted" : "Applied"; });

TEST(ErasureTest, AnInterruptedErasureIsFinishedByTheNextOneForSomeoneElse) {
  auto out = NewStore();
  testdata::BuildDataset(*out, Spec());
  int n = 0;
  out->SetFaultHook([&](std::string_view op, std::string_view) {
    if ((op == "put" || op == "delete") && n++ == 4) throw IOError("injected");
  });
  ErasureReport crashed;
  EXPECT_THROW(EraseFromDataset(*out, Subjects({kAlice}), &crashed), IOError);
  out->SetFaultHook(nullptr);
  ASSERT_TRUE(out->Exists(dataset::kErasureMarkerKey));
  ErasureReport bob;
  EraseFromDataset(*out, Subjects({kBob}), &bob);
  EXPECT_TRUE(bob.completed_pending);
  const auto snapshot = testdata::Snapshot(*out);
  EXPECT_FALSE(Mentions(snapshot, kAlice));
  EXPECT_FALSE(Mentions(snapshot, kBob));
  EXPECT_EQ(testdata::CommittedRows(*out).size(), 6u);  // the catalogue
  EXPECT_TRUE(out->Exists(dataset::kSuccessKey));
}

TEST(ErasureTest, OrphansOfACrashedRunAreSwept) {
  auto out = NewStore();
  testdata::BuildDataset(*out, Spec());
  // A crashed run left a part and statistics that no commit record names, holding Alice's row.
  out->Put("Results/part-00099-ffffffffffff.snappy.parquet", out->Get(dataset::LoadShardRecords(*out)[0].part_key));
  out->Put("_stats/shard-00099.bin", "x");
  ErasureReport report;
  EraseFromDataset(*out, Subjects({kAlice}), &report);
  EXPECT_EQ(report.orphans_deleted, 2);
  EXPECT_FALSE(out->Exists("Results/part-00099-ffffffffffff.snappy.parquet"));
  EXPECT_FALSE(Mentions(testdata::Snapshot(*out), kAlice));
}

TEST(ErasureTest, SinglePhotosForRetention) {
  auto out = NewStore();
  const auto spec = Spec();
  testdata::BuildDataset(*out, spec);
  const auto before = testdata::CommittedRows(*out);
  std::string victim;
  for (const auto& p : spec.photos) {
    if (p.subject == kBob) {
      victim = p.key;
      break;
    }
  }
  ErasureSelector sel;
  sel.photos.insert(victim);
  sel.photos.insert("Fruit 0/0_100.jpg");  // catalogue names never match
  ErasureReport report;
  EraseFromDataset(*out, sel, &report);
  EXPECT_EQ(report.rows_removed, 1);
  auto expected = before;
  expected.erase(storage::JoinKey(spec.source, victim));
  EXPECT_EQ(testdata::CommittedRows(*out), expected);
}

TEST(ErasureTest, DeletePhotosRemovesOnlyTheSubjectsContributions) {
  auto store = NewStore();
  const std::vector<std::string> keys = {testdata::ContribKey("Apple", kAlice, 1), testdata::ContribKey("Kiwi", kAlice, 2),
                                         testdata::ContribKey("Apple", kBob, 3), "Apple/1_100.jpg",
                                         "Apple/" + kAlice + ".jpg"};
  for (const auto& k : keys) store->Put(k, "bytes");
  ErasureReport report;
  DeletePhotos(*store, Subjects({kAlice}), &report);
  EXPECT_EQ(report.photos_deleted, 2);
  EXPECT_EQ(report.photos_by_subject.at(kAlice), 2);
  EXPECT_FALSE(store->Exists(keys[0]));
  EXPECT_FALSE(store->Exists(keys[1]));
  for (std::size_t i = 2; i < keys.size(); ++i) EXPECT_TRUE(store->Exists(keys[i])) << keys[i];
}

// DuckDB, an independent Parquet reader, over a dataset on disk.
json DuckDb(const std::string& sql) {
  const auto script = testing::SourceDir() / "tests/privacy/duckdb_query.mjs";
  const auto r = testing::RunCommand("node " + testing::ShellQuote(script.string()) + " " + testing::ShellQuote(sql));
  EXPECT_EQ(r.exit_code, 0) << r.output.substr(0, 2000);
  return json::parse(r.output);
}

TEST(ErasureTest, DuckDbFindsNoRowOfTheSubjectAndTheSameOtherRows) {
  FRUITPIPE_REQUIRE_NODE_TOOLS();
  testing::TempDir dir;
  auto out = storage::OpenStorage(dir.str());
  testdata::BuildDataset(*out, Spec());
  const std::string results = "read_parquet('" + dir.str() + "/Results/*.parquet')";
  const std::string pca = "read_parquet('" + dir.str() + "/Results_PCA/*.parquet')";
  const std::string others = "SELECT path, label, image_sha256, width, height, subject_id, md5(features::VARCHAR) AS f FROM " +
                             results + " WHERE subject_id IS DISTINCT FROM '" + kAlice + "' ORDER BY path";
  const json before = DuckDb(others);
  ASSERT_EQ(before.size(), 12u);
  ASSERT_EQ(DuckDb("SELECT count(*)::INTEGER AS n FROM " + results + " WHERE subject_id = '" + kAlice + "'")[0]["n"], 6);

  ErasureReport report;
  EraseFromDataset(*out, Subjects({kAlice}), &report);
  for (const auto& glob : {results, pca}) {
    EXPECT_EQ(DuckDb("SELECT count(*)::INTEGER AS n FROM " + glob + " WHERE subject_id = '" + kAlice + "' OR path LIKE '%" +
                     kAlice + "%'")[0]["n"],
              0);
  }
  EXPECT_EQ(DuckDb(others), before);
  EXPECT_EQ(DuckDb("SELECT count(*)::INTEGER AS n FROM " + pca)[0]["n"], 12);
}

}  // namespace
}  // namespace fruitpipe::privacy
