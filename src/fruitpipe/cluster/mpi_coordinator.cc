#include "fruitpipe/cluster/mpi_coordinator.h"

#include <mpi.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "fruitpipe/common/env_vars.h"
#include "fruitpipe/common/error.h"

namespace fruitpipe::cluster {
namespace {

void Check(int rc, const char* what) {
  if (rc != MPI_SUCCESS) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    throw IOError(std::string("MPI ") + what + " failed: " + std::string(msg, static_cast<std::size_t>(len)));
  }
}

class MpiCoordinator : public Coordinator {
 public:
  MpiCoordinator() {
    int provided = 0;
    Check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "init");
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    MPI_Comm node;
    Check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node), "split by node");
    MPI_Comm_size(node, &local_size_);
    MPI_Comm_free(&node);
    // The shared work counter lives on rank 0.
    Check(MPI_Win_allocate(rank_ == 0 ? sizeof(int) : 0, sizeof(int), MPI_INFO_NULL, MPI_COMM_WORLD, &counter_,
                           &window_),
          "window allocate");
  }

  ~MpiCoordinator() override {
    MPI_Win_free(&window_);
    MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_size() const override { return local_size_; }
  std::string worker_name() const override { return "rank " + std::to_string(rank_); }
  std::string mode() const override { return size_ > 1 ? "mpi" : "local"; }

  void BeginPhase(const std::vector<int>& shard_indices) override {
    count_ = static_cast<int>(shard_indices.size());
    Barrier();  // nobody may still be drawing from the previous phase
    if (rank_ == 0) {
      MPI_Win_lock(MPI_LOCK_EXCLUSIVE, 0, 0, window_);
      *counter_ = 0;
      MPI_Win_unlock(0, window_);
    }
    Barrier();
  }

  std::optional<int> NextItem() override {
    const int one = 1;
    int item = 0;
    MPI_Win_lock(MPI_LOCK_SHARED, 0, 0, window_);
    Check(MPI_Fetch_and_op(&one, &item, MPI_INT, 0, 0, MPI_SUM, window_), "fetch_and_op");
    MPI_Win_unlock(0, window_);
    if (item >= count_) return std::nullopt;
    return item;
  }

  void Barrier() override { Check(MPI_Barrier(MPI_COMM_WORLD), "barrier"); }

  void Broadcast(std::string& bytes) override {
    unsigned long long n = bytes.size();
    Check(MPI_Bcast(&n, 1, MPI_UNSIGNED_LONG_LONG, 0, MPI_COMM_WORLD), "broadcast");
    bytes.resize(n);
    // MPI counts are int: send large payloads in chunks.
    constexpr std::size_t kChunk = 1u << 30;
    for (std::size_t off = 0; off < n; off += kChunk) {
      const int len = static_cast<int>(std::min<std::size_t>(kChunk, n - off));
      Check(MPI_Bcast(bytes.data() + off, len, MPI_BYTE, 0, MPI_COMM_WORLD), "broadcast");
    }
  }

  std::vector<std::string> Gather(const std::string& bytes) override {
    const int n = static_cast<int>(bytes.size());
    std::vector<int> sizes(rank_ == 0 ? static_cast<std::size_t>(size_) : 0);
    Check(MPI_Gather(&n, 1, MPI_INT, sizes.data(), 1, MPI_INT, 0, MPI_COMM_WORLD), "gather");
    std::vector<int> offsets(sizes.size());
    std::string all;
    if (rank_ == 0) {
      long long total = 0;
      for (std::size_t i = 0; i < sizes.size(); ++i) {
        offsets[i] = static_cast<int>(total);
        total += sizes[i];
      }
      all.resize(static_cast<std::size_t>(total));
    }
    Check(MPI_Gatherv(bytes.data(), n, MPI_BYTE, all.data(), sizes.data(), offsets.data(), MPI_BYTE, 0,
                      MPI_COMM_WORLD),
          "gatherv");
    std::vector<std::string> out;
    for (std::size_t i = 0; i < sizes.size(); ++i) out.push_back(all.substr(static_cast<std::size_t>(offsets[i]), static_cast<std::size_t>(sizes[i])));
    return out;
  }

  void Abort(int code) override { MPI_Abort(MPI_COMM_WORLD, code); }

 private:
  int rank_ = 0, size_ = 1, local_size_ = 1, count_ = 0;
  int* counter_ = nullptr;
  MPI_Win window_ = MPI_WIN_NULL;
};

}  // namespace

bool LaunchedByMpi() {
  return GetEnv("OMPI_COMM_WORLD_SIZE").has_value() || GetEnv("PMIX_RANK").has_value() ||
         GetEnv("PMI_SIZE").has_value();
}

std::unique_ptr<Coordinator> CreateCoordinator() {
  if (LaunchedByMpi()) return std::make_unique<MpiCoordinator>();
  return std::make_unique<LocalCoordinator>();
}

}  // namespace fruitpipe::cluster
