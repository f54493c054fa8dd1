#include "fruitpipe/cluster/coordinator.h"

#include <gtest/gtest.h>

#include "fruitpipe/common/error.h"

namespace fruitpipe::cluster {
namespace {

std::vector<int> Drain(Coordinator& c, const std::vector<int>& shards) {
  c.BeginPhase(shards);
  std::vector<int> got;
  while (auto item = c.NextItem()) got.push_back(shards[static_cast<std::size_t>(*item)]);
  return got;
}

TEST(CoordinatorTest, LocalTakesEveryItemInOrderAndDecidesItself) {
  LocalCoordinator local;
  EXPECT_EQ(Drain(local, {4, 7, 9}), (std::vector<int>{4, 7, 9}));
  EXPECT_TRUE(Drain(local, {}).empty());
  EXPECT_TRUE(local.is_root());
  EXPECT_EQ(local.Decide([] { return std::string("plan"); }), "plan");
}

TEST(CoordinatorTest, ArrayWorkersSplitShardsByIndexAndNoneIsRoot) {
  const std::vector<int> pending = {0, 1, 2, 3, 5, 8, 9};
  ArrayWorkerCoordinator w0(0, 3), w1(1, 3), w2(2, 3);
  EXPECT_EQ(Drain(w0, pending), (std::vector<int>{0, 3, 9}));
  EXPECT_EQ(Drain(w1, pending), (std::vector<int>{1}));
  EXPECT_EQ(Drain(w2, pending), (std::vector<int>{2, 5, 8}));
  EXPECT_FALSE(w0.is_root());
  EXPECT_EQ(w2.worker_name(), "worker 2/3");
  EXPECT_EQ(w1.mode(), "array");
  // Each worker decides alone: nobody would broadcast to it.
  int calls = 0;
  EXPECT_EQ(w1.Decide([&] { ++calls; return std::string("p"); }), "p");
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(w0.Gather("x"), (std::vector<std::string>{"x"}));
}

TEST(CoordinatorTest, ArrayWorkerRejectsAnIndexOutsideTheJob) {
  EXPECT_THROW(ArrayWorkerCoordinator(3, 3), InvalidArgumentError);
  EXPECT_THROW(ArrayWorkerCoordinator(-1, 2), InvalidArgumentError);
  EXPECT_THROW(ArrayWorkerCoordinator(0, 0), InvalidArgumentError);
}

}  // namespace
}  // namespace fruitpipe::cluster
