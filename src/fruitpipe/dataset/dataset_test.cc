#include "fruitpipe/dataset/dataset.h"

#include <gtest/gtest.h>

#include "fruitpipe/common/error.h"
#include "fruitpipe/common/hash.h"
#include "fruitpipe/storage/memory_storage.h"

namespace fruitpipe::dataset {
namespace {

constexpr auto kSnappy = parquet::Compression::kSnappy;

// A small dataset written through this module alone: two shards of synthetic features.
struct Fixture {
  std::unique_ptr<storage::MemoryStorage> out;
  DatasetPlan plan;
  std::vector<ShardRecord> records;
  std::vector<FeatureBatch> batches;
};

Fixture Build(const std::string& name) {
  Fixture f;
  f.out = storage::MemoryStorage::Open(name);
  f.plan.source = "/data/src";
  f.plan.shard_size = 3;
  f.plan.model = {{"name", "m"}, {"sha256", "00"}, {"input_size", 224}, {"precision", "fp32"}};
  std::vector<SourceImage> images;
  for (int i = 0; i < 6; ++i) {
    const std::string label = i % 2 ? "Banana" : "Apple";
    images.push_back({label + "/" + std::to_string(i) + ".jpg", label, 100u + static_cast<unsigned>(i), std::nullopt});
  }
  std::sort(images.begin(), images.end(), [](const auto& a, const auto& b) { return a.key < b.key; });
  const std::string run_id = RunId(f.plan.source, images, 3);
  f.plan.shards = CutShards(images, 3, 0, run_id);
  StorePlan(*f.out, f.plan);
  for (const auto& shard : f.plan.shards) {
    ShardRecord rec;
    rec.index = shard.index;
    rec.run_id = run_id;
    rec.part_key = ResultsPartKey(shard.index, run_id, kSnappy);
    rec.stats_key = StatsKey(shard.index);
    FeatureBatch batch;
    batch.dim = 4;
    pca::PcaStats stats(4);
    for (std::size_t i = 0; i < shard.images.size(); ++i) {
      const auto& img = shard.images[i];
      if (shard.index == 1 && i == 2) {  // one undecodable image
        rec.rejected.push_back({storage::JoinKey(f.plan.source, img.key), "not an image"});
        continue;
      }
      batch.rows.push_back({storage::JoinKey(f.plan.source, img.key), img.label, Sha256Hex(img.key), 100, 100, std::nullopt});
      for (int d = 0; d < 4; ++d) batch.vectors.push_back(static_cast<float>(shard.index * 10 + static_cast<int>(i) * (d + 1)));
    }
    stats.AddBatch(batch.vectors.data(), static_cast<int>(batch.rows.size()));
    rec.rows = static_cast<std::int64_t>(batch.rows.size());
    CommitShard(*f.out, rec, parquet::WriteParquet(ResultsTable(batch)), stats.Serialize());
    f.records.push_back(rec);
    f.batches.push_back(std::move(batch));
  }
  return f;
}

// The on-disk contract, byte for byte (docs/formats/dataset.md). Recorded when this module took
// the layout over from pipeline/ and privacy/, whose dev-data outputs it reproduced byte for
// byte; a change here changes what every existing dataset looks like to a reader.
TEST(DatasetGoldenTest, PlanRecordAndPartBytesAreStable) {
  Fixture f = Build("golden");
  EXPECT_EQ(f.out->Get(kPlanKey),
            R"({"format":"fruitpipe-plan/1","model":{"input_size":224,"name":"m","precision":"fp32","sha256":"00"},)"
            R"("shard_size":3,"shards":[{"images":[["Apple/0.jpg","Apple",100],["Apple/2.jpg","Apple",102],)"
            R"(["Apple/4.jpg","Apple",104]],"index":0,"run_id":")" + f.records[0].run_id +
                R"("},{"images":[["Banana/1.jpg","Banana",101],["Banana/3.jpg","Banana",103],)"
                R"(["Banana/5.jpg","Banana",105]],"index":1,"run_id":")" + f.records[0].run_id + R"("}],"source":"/data/src"})");
  EXPECT_EQ(f.records[0].run_id, ContentId("/data/src\n3\nApple/0.jpg\nApple/2.jpg\nApple/4.jpg\nBanana/1.jpg\nBanana/3.jpg\nBanana/5.jpg\n"));
  EXPECT_EQ(f.out->Get(ShardRecordKey(1)),
            R"({"index":1,"part":"Results/part-00001-)" + f.records[1].run_id +
                R"(.snappy.parquet","rejected":[{"path":"/data/src/Banana/5.jpg","reason":"not an image"}],"rows":2,)"
                R"("run_id":")" + f.records[1].run_id + R"(","stats":"_stats/shard-00001.bin","timing":null})");
  EXPECT_EQ(Sha256Hex(f.out->Get(f.records[0].part_key)),
            "0f96e671eaad1fdd9b2259db963d9d088f33c72219c337c64c9f8ae672c261ac");
}

TEST(DatasetTest, PcaPartsAreProjectedStoredOnceAndSwept) {
  Fixture f = Build("pca-parts");
  pca::PcaFitOptions fit;
  fit.k = 2;
  const pca::PcaModel model = pca::FitPca(SumShardStats(*f.out, f.records), fit);
  const std::string id = StorePcaModel(*f.out, model.Serialize());
  EXPECT_EQ(id, ContentId(model.Serialize()));
  int puts = 0;
  f.out->SetFaultHook([&](std::string_view op, std::string_view) { puts += op == "put"; });
  EXPECT_EQ(StorePcaModel(*f.out, model.Serialize()), id);  // unchanged: nothing written
  EXPECT_EQ(puts, 0);
  f.out->SetFaultHook(nullptr);
  for (const auto& r : f.records) WritePcaPart(*f.out, r, model, id, parquet::Compression::kZstd);
  const PcaBatch part1 = ParseResultsPca(f.out->Get(ResultsPcaPartKey(1, id, parquet::Compression::kZstd)));
  ASSERT_EQ(part1.rows.size(), 2u);
  std::vector<double> expected(2);
  model.Transform(f.batches[1].vectors.data(), expected.data());
  EXPECT_EQ(part1.vectors[0], expected[0]);
  EXPECT_EQ(part1.rows[1].path, f.batches[1].rows[1].path);

  f.out->Put("Results_PCA/part-00000-oldmodel0000.snappy.parquet", "x");
  f.out->Put("Results/part-00007-crashedrun00.snappy.parquet", "x");
  f.out->Put("_stats/shard-00000-abandoned.bin", "x");
  EXPECT_EQ(DeletePcaPartsExcept(*f.out, {ResultsPcaPartKey(0, id, parquet::Compression::kZstd),
                                          ResultsPcaPartKey(1, id, parquet::Compression::kZstd)}),
            1);
  EXPECT_EQ(SweepOrphans(*f.out, f.records), 2);
  EXPECT_EQ(SweepOrphans(*f.out, f.records), 0);
  EXPECT_EQ(f.out->List("Results/").size(), 2u);
  EXPECT_EQ(f.out->List("_stats/").size(), 2u);
}

TEST(DatasetTest, StatsAreSummedInShardOrderWhateverTheSubset) {
  Fixture f = Build("stats");
  const std::set<int> second = {1};
  EXPECT_EQ(SumShardStats(*f.out, f.records, &second).count(), 2);
  pca::PcaStats both;
  for (const auto& r : f.records) both.Merge(pca::PcaStats::Deserialize(f.out->Get(r.stats_key)));
  EXPECT_EQ(SumShardStats(*f.out, f.records).Serialize(), both.Serialize());
  f.out->Delete(f.records[0].stats_key);
  EXPECT_THROW(SumShardStats(*f.out, f.records), Error);
}

TEST(DatasetTest, CountsAreWhatRunJsonReports) {
  Fixture f = Build("counts");
  std::vector<Rejection> rejected = {{"/data/src/notes.txt", "no class folder"}};
  for (const auto& r : f.records) rejected.insert(rejected.end(), r.rejected.begin(), r.rejected.end());
  const DatasetCounts c = CountDataset(f.plan, f.records, rejected);
  EXPECT_EQ(c.images, 5);
  EXPECT_EQ(c.rejected, 2);
  EXPECT_EQ(c.listed, 7);  // six planned, one the listing rejected
  EXPECT_EQ(c.shards, 2);
  EXPECT_EQ(c.labels, (std::map<std::string, std::int64_t>{{"Apple", 3}, {"Banana", 2}}));
  nlohmann::json run = {{"command", "run"}};
  c.WriteTo(run);
  EXPECT_EQ(run["listed"], 7);
  EXPECT_EQ(run["labels"]["Banana"], 2);
}

TEST(DatasetTest, RejectedJsonlRoundTripsAndCorruptLinesAreNamed) {
  const std::vector<Rejection> rows = {{"/a/b.jpg", "truncated JPEG"}, {"/a/\"q\".png", "too large"}};
  const std::string text = RejectedJsonl(rows);
  EXPECT_EQ(text, "{\"path\":\"/a/b.jpg\",\"reason\":\"truncated JPEG\"}\n"
                  "{\"path\":\"/a/\\\"q\\\".png\",\"reason\":\"too large\"}\n");
  const auto back = ParseRejectedJsonl(text + "\n  \n", "rejected.jsonl");
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[1].path, "/a/\"q\".png");
  try {
    ParseRejectedJsonl(text + "{\"path\":1}\n", "out/rejected.jsonl");
    FAIL();
  } catch (const CorruptionError& e) {
    EXPECT_STREQ(e.what(), "out/rejected.jsonl: line 3 is not a {\"path\",\"reason\"} object");
  }
  // A path that is not UTF-8 is written with U+FFFD, never as invalid JSON.
  EXPECT_EQ(RejectedJsonl({{"/a/\xff.jpg", "bad name"}}), "{\"path\":\"/a/\xEF\xBF\xBD.jpg\",\"reason\":\"bad name\"}\n");
}

TEST(DatasetTest, PlanIsStoredOnlyWhenItChanges) {
  Fixture f = Build("plan-store");
  int puts = 0;
  f.out->SetFaultHook([&](std::string_view op, std::string_view) { puts += op == "put"; });
  StorePlan(*f.out, f.plan);
  EXPECT_EQ(puts, 0);
  const auto loaded = LoadPlan(*f.out);
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(loaded->ToJson(), f.plan.ToJson());
  EXPECT_EQ(loaded->model["name"], "m");
  f.out->SetFaultHook(nullptr);
  f.out->Put(kPlanKey, "{oops");
  EXPECT_THROW(LoadPlan(*f.out), CorruptionError);
  EXPECT_FALSE(LoadPlan(*storage::MemoryStorage::Open("plan-none")).has_value());
}

}  // namespace
}  // namespace fruitpipe::dataset
