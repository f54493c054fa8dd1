#include "fruitpipe/dataset/plan.h"

#include <gtest/gtest.h>

#include "fruitpipe/common/error.h"
#include "fruitpipe/storage/memory_storage.h"

namespace fruitpipe::dataset {
namespace {

SourceImage Img(std::string key, std::string label, std::uint64_t size) {
  return {std::move(key), std::move(label), size, std::nullopt};
}

TEST(ManifestTest, LabelsComeFromParentFolderAndMetaFilesAreSkipped) {
  auto src = storage::MemoryStorage::Open("manifest-labels");
  src->Put("Banana/b1.jpg", "x");
  src->Put("Apple Red 1/a2.jpg", "xx");
  src->Put("Apple Red 1/a1.jpg", "x");
  src->Put("deep/Kiwi/k.jpg", "x");
  src->Put("_SUCCESS", "");
  src->Put(".DS_Store", "");
  src->Put("Banana/.hidden.jpg", "");
  src->Put("loose.jpg", "x");
  std::vector<Rejection> rejected;
  const auto images = ListSource(*src, &rejected);
  ASSERT_EQ(images.size(), 4u);
  EXPECT_EQ(images[0].key, "Apple Red 1/a1.jpg");
  EXPECT_EQ(images[0].label, "Apple Red 1");
  EXPECT_EQ(images[1].size, 2u);
  EXPECT_EQ(images[2].label, "Banana");
  EXPECT_EQ(images[3].label, "Kiwi");
  ASSERT_EQ(rejected.size(), 1u);
  EXPECT_NE(rejected[0].path.find("loose.jpg"), std::string::npos);
  EXPECT_NE(rejected[0].reason.find("class folder"), std::string::npos);
}

TEST(ManifestTest, ShardsAreFixedSizeAndIndependentOfWorkers) {
  std::vector<SourceImage> images;
  for (int i = 0; i < 10; ++i) images.push_back(Img("L/" + std::to_string(i), "L", 1));
  const auto shards = CutShards(images, 4, 7, "r1");
  ASSERT_EQ(shards.size(), 3u);
  EXPECT_EQ(shards[0].index, 7);
  EXPECT_EQ(shards[2].index, 9);
  EXPECT_EQ(shards[2].images.size(), 2u);
  EXPECT_EQ(shards[1].images.front().key, "L/4");
  EXPECT_THROW(CutShards(images, 0, 0, "r"), InvalidArgumentError);
}

TEST(ManifestTest, PlanJsonRoundTripAndCorruption) {
  DatasetPlan plan;
  plan.source = "s3://b/Test";
  plan.shard_size = 2;
  plan.shards = CutShards({Img("A/1", "A", 3), Img("B/2", "B", 4), Img("B/3", "B", 5)}, 2, 0, "abc");
  const DatasetPlan back = DatasetPlan::FromJson(plan.ToJson());
  EXPECT_EQ(back.source, plan.source);
  ASSERT_EQ(back.shards.size(), 2u);
  EXPECT_EQ(back.shards[1].images[0].key, "B/3");
  EXPECT_EQ(back.shards[1].images[0].size, 5u);
  EXPECT_EQ(back.num_images(), 3u);
  EXPECT_THROW(DatasetPlan::FromJson("{"), CorruptionError);
  EXPECT_THROW(DatasetPlan::FromJson(R"({"format":"other"})"), CorruptionError);
}

}  // namespace
}  // namespace fruitpipe::dataset
