#include "fruitpipe/cluster/coordinator.h"

#include "fruitpipe/common/error.h"

namespace fruitpipe::cluster {

void LocalCoordinator::BeginPhase(const std::vector<int>& shard_indices) {
  next_ = 0;
  count_ = static_cast<int>(shard_indices.size());
}

std::optional<int> LocalCoordinator::NextItem() {
  if (next_ >= count_) return std::nullopt;
  return next_++;
}

ArrayWorkerCoordinator::ArrayWorkerCoordinator(int index, int count) : index_(index), count_(count) {
  if (count < 1 || index < 0 || index >= count) {
    throw InvalidArgumentError("array worker " + std::to_string(index) + "/" + std::to_string(count) +
                               ": expected I/N with 0 <= I < N");
  }
}

std::string ArrayWorkerCoordinator::worker_name() const {
  return "worker " + std::to_string(index_) + "/" + std::to_string(count_);
}

void ArrayWorkerCoordinator::BeginPhase(const std::vector<int>& shard_indices) {
  mine_.clear();
  next_ = 0;
  for (std::size_t i = 0; i < shard_indices.size(); ++i) {
    if (MayTake(shard_indices[i])) mine_.push_back(static_cast<int>(i));
  }
}

std::optional<int> ArrayWorkerCoordinator::NextItem() {
  if (next_ >= mine_.size()) return std::nullopt;
  return mine_[next_++];
}

}  // namespace fruitpipe::cluster
