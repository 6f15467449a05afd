// RateLimiter: a token bucket per client (issue 6, hardening): each key (a
// principal's subject, or the remote address of callers without a valid token)
// may make `rate` requests per second on average and `burst` at once.
//
// Thread-safety: Allow may be called from many threads (16 shards, each its own
// mutex). Buckets idle for a minute are forgotten.
//
// Example:
//   RateLimiter limiter({.rate = 1000, .burst = 2000});
//   if (!limiter.Allow(principal.subject, NowMicros())) return Http429();
#pragma once

#include <array>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "rhip/core/time.h"

namespace rhip::security {

struct RateLimitOptions {
  double rate = 0;    // requests per second per key; 0 = no limit
  double burst = 0;   // bucket size; 0 = 2 × rate
};

class RateLimiter {
 public:
  explicit RateLimiter(RateLimitOptions options);
  RateLimiter(const RateLimiter&) = delete;
  RateLimiter& operator=(const RateLimiter&) = delete;

  // Takes one request from `key`'s bucket; false when it is empty.
  bool Allow(std::string_view key, Micros now);
  bool enabled() const { return options_.rate > 0; }

 private:
  struct Bucket {
    double tokens = 0;
    Micros last = 0;
  };
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, Bucket> buckets;  // GUARDED_BY(mu)
    Micros last_sweep = 0;                            // GUARDED_BY(mu)
  };
  RateLimitOptions options_;
  std::array<Shard, 16> shards_;
};

}  // namespace rhip::security
