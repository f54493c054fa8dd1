#include "fruitpipe/serve/rate_limit.h"

#include <gtest/gtest.h>

namespace fruitpipe::serve {
namespace {

using std::chrono::seconds;

TEST(RateLimiterTest, BurstThenOnePerIntervalPerClient) {
  RateLimiter limiter(/*per_minute=*/6, /*burst=*/3);
  const auto t0 = RateLimiter::Clock::time_point{} + seconds(1000);
  int retry = 0;
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.Admit("a", t0, &retry)) << i;
  EXPECT_FALSE(limiter.Admit("a", t0, &retry));
  EXPECT_EQ(retry, 10);  // 6 a minute: one every 10 s
  EXPECT_TRUE(limiter.Admit("b", t0, &retry));  // another client has its own bucket
  EXPECT_FALSE(limiter.Admit("a", t0 + seconds(9), &retry));
  EXPECT_EQ(retry, 1);
  EXPECT_TRUE(limiter.Admit("a", t0 + seconds(10), &retry));
  EXPECT_FALSE(limiter.Admit("a", t0 + seconds(10), &retry));
  // A long pause refills to the burst, not beyond.
  const auto later = t0 + seconds(3600);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.Admit("a", later, &retry)) << i;
  EXPECT_FALSE(limiter.Admit("a", later, &retry));
}

TEST(RateLimiterTest, ZeroMeansNoLimit) {
  RateLimiter limiter(0, 1);
  const auto t0 = RateLimiter::Clock::now();
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(limiter.Admit("a", t0, nullptr));
}

TEST(RateLimiterTest, ManyClientsStayBoundedAndLimited) {
  RateLimiter limiter(60, 1, /*max_clients=*/4);
  const auto t0 = RateLimiter::Clock::time_point{} + seconds(1000);
  int retry = 0;
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(limiter.Admit("c" + std::to_string(i), t0, &retry));
  // The table is full of clients mid-burst; a new one is still admitted and limited after.
  EXPECT_TRUE(limiter.Admit("new", t0, &retry));
  EXPECT_FALSE(limiter.Admit("new", t0, &retry));
  // Refilled buckets are dropped first: c0..c3 are full again after a second.
  EXPECT_TRUE(limiter.Admit("other", t0 + seconds(2), &retry));
  EXPECT_FALSE(limiter.Admit("other", t0 + seconds(2), &retry));
}

}  // namespace
}  // namespace fruitpipe::serve
