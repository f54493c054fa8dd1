#include "fruitpipe/common/time.h"

#include <gtest/gtest.h>

#include "fruitpipe/common/error.h"

namespace fruitpipe {
namespace {

TEST(TimeTest, IsoUtcRoundTripsAndSortsAsText) {
  EXPECT_EQ(IsoUtc(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(IsoUtc(1796644145.9), "2026-12-07T11:49:05Z");
  EXPECT_EQ(IsoUtc(1796644145.1239, /*millis=*/true), "2026-12-07T11:49:05.123Z");
  EXPECT_EQ(ParseIsoUtc("2026-12-07T11:49:05Z"), 1796644145);
  EXPECT_LT(IsoUtc(999999999), IsoUtc(1000000000));
  EXPECT_THROW(ParseIsoUtc("2026-12-07 11:49:05"), CorruptionError);
  EXPECT_THROW(ParseIsoUtc("2026-12-07T11:49:05.123Z"), CorruptionError);
}

TEST(TimeTest, ClocksAdvance) {
  const double m = MonotonicSeconds();
  EXPECT_GE(MonotonicSeconds(), m);
  EXPECT_NEAR(WallSeconds(), static_cast<double>(WallEpochSeconds()), 2.0);
}

}  // namespace
}  // namespace fruitpipe
