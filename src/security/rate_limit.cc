#include "rhip/security/rate_limit.h"

#include <algorithm>
#include <functional>

namespace rhip::security {

RateLimiter::RateLimiter(RateLimitOptions options) : options_(options) {
  if (options_.burst <= 0) options_.burst = 2 * options_.rate;
}

bool RateLimiter::Allow(std::string_view key, Micros now) {
  if (options_.rate <= 0) return true;
  Shard& s = shards_[std::hash<std::string_view>()(key) % shards_.size()];
  std::lock_guard lock(s.mu);
  if (now - s.last_sweep > 60 * kMicrosPerSecond) {
    for (auto it = s.buckets.begin(); it != s.buckets.end();)
      it = now - it->second.last > 60 * kMicrosPerSecond ? s.buckets.erase(it) : std::next(it);
    s.last_sweep = now;
  }
  auto [it, fresh] = s.buckets.try_emplace(std::string(key));
  Bucket& b = it->second;
  if (fresh) {
    b.tokens = options_.burst;
  } else {
    const double elapsed = static_cast<double>(std::max<Micros>(0, now - b.last)) / kMicrosPerSecond;
    b.tokens = std::min(options_.burst, b.tokens + elapsed * options_.rate);
  }
  b.last = now;
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

}  // namespace rhip::security
