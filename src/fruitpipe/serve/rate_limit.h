// A per-client rate limit (token buckets keyed by client address) for the routes that store
// something: each client may make `burst` requests at once and `per_minute` a minute after that.
#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>

namespace fruitpipe::serve {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  // per_minute 0: no limit. At most `max_clients` buckets are kept: when full, buckets that
  // have refilled completely (indistinguishable from new ones) are dropped first, then all.
  RateLimiter(int per_minute, int burst, std::size_t max_clients = 65536);

  // True (and one request counted) when `client` may go on; false with *retry_after_s, the
  // whole seconds until it may, when it may not.
  bool Admit(const std::string& client, Clock::time_point now, int* retry_after_s);

 private:
  struct Bucket {
    double tokens = 0;
    Clock::time_point updated;
  };
  void Refill(Bucket& b, Clock::time_point now) const;

  const double per_second_;
  const double burst_;
  const std::size_t max_clients_;
  std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace fruitpipe::serve
