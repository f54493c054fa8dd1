#include "fruitpipe/storage/storage.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "fruitpipe/common/error.h"
#include "fruitpipe/common/testing.h"
#include "fruitpipe/storage/memory_storage.h"

namespace fruitpipe::storage {
namespace {

// The same contract tests run against every implementation reachable without a server.
class StorageContractTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "local") {
      store_ = OpenStorage(tmp_.str());
    } else {
      store_ = OpenStorage("mem://contract-" + std::to_string(reinterpret_cast<std::uintptr_t>(this)));
    }
  }
  fruitpipe::testing::TempDir tmp_;
  std::unique_ptr<Storage> store_;
};

TEST_P(StorageContractTest, PutGetRoundTrip) {
  store_->Put("a/b/c.bin", std::string("x\0y", 3));
  EXPECT_EQ(store_->Get("a/b/c.bin"), std::string("x\0y", 3));
  EXPECT_TRUE(store_->Exists("a/b/c.bin"));
  store_->Put("a/b/c.bin", "new");
  EXPECT_EQ(store_->Get("a/b/c.bin"), "new");
}

TEST_P(StorageContractTest, MissingKeyThrowsNotFound) {
  EXPECT_THROW(store_->Get("nope"), NotFoundError);
  EXPECT_FALSE(store_->GetIfExists("nope").has_value());
  EXPECT_FALSE(store_->Exists("nope"));
  EXPECT_NO_THROW(store_->Delete("nope"));
}

TEST_P(StorageContractTest, ListIsRecursiveSortedAndPrefixed) {
  store_->Put("Test/B/2.jpg", "2");
  store_->Put("Test/A/1.jpg", "11");
  store_->Put("Test/A/0.jpg", "0");
  store_->Put("Other/x", "x");
  const auto all = store_->List("Test/");
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].key, "Test/A/0.jpg");
  EXPECT_EQ(all[1].key, "Test/A/1.jpg");
  EXPECT_EQ(all[1].size, 2u);
  EXPECT_EQ(all[2].key, "Test/B/2.jpg");
  EXPECT_EQ(store_->List("Test/A/1").size(), 1u);
  EXPECT_EQ(store_->List("").size(), 4u);
}

TEST_P(StorageContractTest, RenameAndDelete) {
  store_->Put("tmp/x", "payload");
  store_->Rename("tmp/x", "final/x");
  EXPECT_FALSE(store_->Exists("tmp/x"));
  EXPECT_EQ(store_->Get("final/x"), "payload");
  store_->Delete("final/x");
  EXPECT_FALSE(store_->Exists("final/x"));
}

TEST_P(StorageContractTest, GetManyReportsEachKey) {
  store_->Put("k1", "v1");
  std::vector<FetchResult> results;
  store_->GetMany({"k1", "missing"}, [&](FetchResult&& r) { results.push_back(std::move(r)); });
  ASSERT_EQ(results.size(), 2u);
  EXPECT_TRUE(results[0].ok);
  EXPECT_EQ(results[0].data, "v1");
  EXPECT_FALSE(results[1].ok);
  EXPECT_NE(results[1].error.find("missing"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Impl, StorageContractTest, ::testing::Values("local", "memory"));

TEST(LocalStorageTest, CrashedPutLeavesNoVisibleObject) {
  fruitpipe::testing::TempDir tmp;
  auto store = OpenStorage(tmp.str());
  std::filesystem::create_directories(tmp.path() / "d");
  // A temp file left by a crashed Put is not listed.
  { std::FILE* f = std::fopen((tmp.path() / "d" / ".x.tmp-1-2-3").c_str(), "w"); std::fclose(f); }
  EXPECT_TRUE(store->List("").empty());
}

TEST(LocalStorageTest, RemoveAbandonedWritesDeletesOnlyTemporariesUnderThePrefix) {
  fruitpipe::testing::TempDir tmp;
  auto store = OpenStorage(tmp.str());
  store->Put("Results/part-0.parquet", "rows");
  store->Put("other/keep", "x");
  std::filesystem::create_directories(tmp.path() / "Results" / "deeper");
  const auto touch = [&](const std::filesystem::path& p) { std::FILE* f = std::fopen(p.c_str(), "w"); std::fclose(f); };
  touch(tmp.path() / "Results" / ".part-1.parquet.tmp-7-0-1");
  touch(tmp.path() / "Results" / "deeper" / ".part-2.parquet.tmp-7-1-1");
  touch(tmp.path() / "other" / ".keep.tmp-7-2-1");
  touch(tmp.path() / "Results" / ".hidden-but-not-a-temporary");
  store->RemoveAbandonedWrites("Results/");
  EXPECT_FALSE(std::filesystem::exists(tmp.path() / "Results" / ".part-1.parquet.tmp-7-0-1"));
  EXPECT_FALSE(std::filesystem::exists(tmp.path() / "Results" / "deeper" / ".part-2.parquet.tmp-7-1-1"));
  EXPECT_TRUE(std::filesystem::exists(tmp.path() / "other" / ".keep.tmp-7-2-1"));  // outside the prefix
  EXPECT_TRUE(std::filesystem::exists(tmp.path() / "Results" / ".hidden-but-not-a-temporary"));
  EXPECT_EQ(store->Get("Results/part-0.parquet"), "rows");
  store->RemoveAbandonedWrites("");
  EXPECT_FALSE(std::filesystem::exists(tmp.path() / "other" / ".keep.tmp-7-2-1"));
  EXPECT_EQ(store->Get("other/keep"), "x");
}

TEST(MemoryStorageTest, FaultHookFailsChosenOperations) {
  auto store = MemoryStorage::Open("faults");
  store->SetFaultHook([](std::string_view op, std::string_view key) {
    if (op == "put" && key == "bad") throw IOError("injected");
  });
  EXPECT_THROW(store->Put("bad", "x"), IOError);
  EXPECT_NO_THROW(store->Put("good", "x"));
  EXPECT_FALSE(store->Exists("bad"));
}

TEST(StorageTest, UnknownSchemeIsOneLineError) {
  try {
    OpenStorage("ftp://host/x");
    FAIL();
  } catch (const InvalidArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("ftp://"), std::string::npos);
  }
}

}  // namespace
}  // namespace fruitpipe::storage
