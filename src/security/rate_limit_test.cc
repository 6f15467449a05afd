#include "rhip/security/rate_limit.h"

#include <gtest/gtest.h>

namespace rhip::security {
namespace {

TEST(RateLimiter, AllowsTheBurstThenTheRatePerKey) {
  RateLimiter l({.rate = 10, .burst = 5});
  const Micros t0 = 1'000'000'000;
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(l.Allow("a", t0));
  EXPECT_FALSE(l.Allow("a", t0));
  EXPECT_TRUE(l.Allow("b", t0));  // another client has its own bucket
  EXPECT_FALSE(l.Allow("a", t0 + 50'000));   // 0.5 token refilled
  EXPECT_TRUE(l.Allow("a", t0 + 100'000));   // 1 token
  EXPECT_FALSE(l.Allow("a", t0 + 100'000));
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(l.Allow("a", t0 + 10'000'000));  // refilled to the burst, not beyond
  EXPECT_FALSE(l.Allow("a", t0 + 10'000'000));
}

TEST(RateLimiter, ZeroRateMeansNoLimit) {
  RateLimiter l({});
  EXPECT_FALSE(l.enabled());
  for (int i = 0; i < 10000; ++i) EXPECT_TRUE(l.Allow("a", 0));
}

}  // namespace
}  // namespace rhip::security
