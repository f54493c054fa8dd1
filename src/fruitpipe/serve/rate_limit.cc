#include "fruitpipe/serve/rate_limit.h"

#include <algorithm>
#include <cmath>
#include <iterator>

namespace fruitpipe::serve {

RateLimiter::RateLimiter(int per_minute, int burst, std::size_t max_clients)
    : per_second_(per_minute / 60.0), burst_(std::max(1, burst)), max_clients_(std::max<std::size_t>(1, max_clients)) {}

void RateLimiter::Refill(Bucket& b, Clock::time_point now) const {
  const double elapsed = std::chrono::duration<double>(now - b.updated).count();
  if (elapsed > 0) b.tokens = std::min(burst_, b.tokens + elapsed * per_second_);
  b.updated = std::max(b.updated, now);
}

bool RateLimiter::Admit(const std::string& client, Clock::time_point now, int* retry_after_s) {
  if (per_second_ <= 0) return true;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = buckets_.find(client);
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_clients_) {
      for (auto b = buckets_.begin(); b != buckets_.end();) {
        Refill(b->second, now);
        b = b->second.tokens >= burst_ ? buckets_.erase(b) : std::next(b);
      }
      // Every client is mid-burst (a flood of addresses): start over rather than grow.
      if (buckets_.size() >= max_clients_) buckets_.clear();
    }
    it = buckets_.emplace(client, Bucket{burst_, now}).first;
  }
  Bucket& b = it->second;
  Refill(b, now);
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return true;
  }
  if (retry_after_s) *retry_after_s = static_cast<int>(std::ceil((1.0 - b.tokens) / per_second_));
  return false;
}

}  // namespace fruitpipe::serve
