#include "fruitpipe/dataset/shard_record.h"

#include <gtest/gtest.h>

#include "fruitpipe/common/error.h"
#include "fruitpipe/dataset/layout.h"
#include "fruitpipe/dataset/results.h"
#include "fruitpipe/storage/memory_storage.h"

namespace fruitpipe::dataset {
namespace {

ShardRecord Record(int index) {
  ShardRecord r;
  r.index = index;
  r.run_id = "run";
  r.part_key = ResultsPartKey(index, "run", parquet::Compression::kSnappy);
  r.stats_key = StatsKey(index);
  r.rows = 2;
  r.rejected = {{"/x/bad.jpg", "truncated JPEG"}};
  return r;
}

TEST(LayoutTest, KeysFollowTheSparkNamingConventionWithTheCodecInTheSuffix) {
  EXPECT_EQ(ResultsPartKey(3, "ab12", parquet::Compression::kSnappy), "Results/part-00003-ab12.snappy.parquet");
  EXPECT_EQ(ResultsPartKey(3, "ab12", parquet::Compression::kZstd), "Results/part-00003-ab12.zstd.parquet");
  EXPECT_EQ(ResultsPcaPartKey(12345, "x", parquet::Compression::kUncompressed), "Results_PCA/part-12345-x.parquet");
  EXPECT_EQ(StatsKey(7), "_stats/shard-00007.bin");
  EXPECT_EQ(StatsKey(7, "abc"), "_stats/shard-00007-abc.bin");
  EXPECT_EQ(ShardRecordKey(42), "_shards/shard-00042.json");
}

TEST(LayoutTest, ShardIndexAndModelOfAKey) {
  EXPECT_EQ(ShardIndexOf("Results_PCA/part-00012-abcdef.zstd.parquet"), 12);
  EXPECT_EQ(ShardIndexOf("_stats/shard-00003-abc.bin"), 3);
  EXPECT_EQ(ShardIndexOf("Results/part-12.parquet"), -1);
  EXPECT_EQ(ShardIndexOf("Results/notes.txt"), -1);
  EXPECT_TRUE(IsPartOfModel("Results_PCA/part-00001-abcdef123456.parquet", "abcdef123456"));
  EXPECT_FALSE(IsPartOfModel("Results_PCA/part-00001-abcdef123456.parquet", "abcdef"));
  EXPECT_EQ(ContentId("abc"), "ba7816bf8f01");  // SHA-256("abc") starts ba7816bf8f01cfea
}

TEST(DatasetTest, CommitWritesPartThenStatsThenRecord) {
  auto out = storage::MemoryStorage::Open("dataset-commit");
  std::vector<std::string> order;
  out->SetFaultHook([&](std::string_view op, std::string_view key) {
    if (op == "put") order.emplace_back(key);
  });
  CommitShard(*out, Record(1), "part", "stats");
  ASSERT_EQ(order.size(), 3u);
  EXPECT_EQ(order[0], ResultsPartKey(1, "run", parquet::Compression::kSnappy));
  EXPECT_EQ(order[1], StatsKey(1));
  EXPECT_EQ(order[2], ShardRecordKey(1));
}

TEST(DatasetTest, CrashBeforeRecordLeavesShardUncommitted) {
  auto out = storage::MemoryStorage::Open("dataset-crash");
  out->SetFaultHook([](std::string_view op, std::string_view key) {
    if (op == "put" && key.rfind("_shards/", 0) == 0) throw IOError("injected crash");
  });
  EXPECT_THROW(CommitShard(*out, Record(0), "part", "stats"), IOError);
  out->SetFaultHook(nullptr);
  EXPECT_TRUE(LoadShardRecords(*out).empty());
  CommitShard(*out, Record(2), "p", "s");
  CommitShard(*out, Record(1), "p", "s");
  const auto records = LoadShardRecords(*out);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].index, 1);
  EXPECT_EQ(records[1].rejected.at(0).reason, "truncated JPEG");
}

TEST(DatasetTest, CorruptRecordIsReportedWithItsKey) {
  auto out = storage::MemoryStorage::Open("dataset-corrupt");
  out->Put(ShardRecordKey(0), "{not json");
  try {
    LoadShardRecords(*out);
    FAIL();
  } catch (const CorruptionError& e) {
    EXPECT_NE(std::string(e.what()).find("shard-00000.json"), std::string::npos);
  }
}

TEST(ResultsTest, RowsRoundTripThroughParquet) {
  FeatureBatch batch;
  batch.dim = 3;
  batch.rows = {{"/d/A/1.jpg", "A", "aa", 100, 100, std::nullopt}, {"/d/B/2.jpg", "B", "bb", 10, 20, "subj"}};
  batch.vectors = {1, 2, 3, 4, 5, 6};
  const FeatureBatch back = ParseResults(parquet::WriteParquet(ResultsTable(batch)));
  ASSERT_EQ(back.rows.size(), 2u);
  EXPECT_EQ(back.dim, 3);
  EXPECT_EQ(back.vectors, batch.vectors);
  EXPECT_EQ(back.rows[1].subject_id, "subj");
  EXPECT_FALSE(back.rows[0].subject_id.has_value());
  EXPECT_EQ(back.rows[1].height, 20);
  PcaBatch pca;
  pca.dim = 2;
  pca.rows = batch.rows;
  pca.vectors = {0.5, -1, 2, 3};
  const PcaBatch pback = ParseResultsPca(parquet::WriteParquet(ResultsPcaTable(pca)));
  EXPECT_EQ(pback.vectors, pca.vectors);
  EXPECT_EQ(pback.rows[0].path, "/d/A/1.jpg");
}

}  // namespace
}  // namespace fruitpipe::dataset
