// How the processes of one run cooperate. A single process is a cluster of one; an MPI job
// (mpi_coordinator.h) and the workers of an array job implement the same interface, so the
// run's stages are the same code everywhere and every arrangement of processes produces the
// same rows and PCA model.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace fruitpipe::cluster {

class Coordinator {
 public:
  virtual ~Coordinator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Processes of this job on this machine; threads per process = cores / local_size.
  virtual int local_size() const = 0;
  // The process that writes the dataset-level files (run.json, the PCA model, _SUCCESS).
  virtual bool is_root() const { return rank() == 0; }
  // A name for the worker lane in reports ("local", "rank 0", "worker 3/8").
  virtual std::string worker_name() const = 0;
  // For run.json: "local", "mpi" or "array".
  virtual std::string mode() const = 0;
  // Whether this process prints progress lines: root speaks for an MPI job; an array worker
  // has nobody to speak for it.
  virtual bool prints_progress() const { return is_root(); }

  // Runs `decide` where this job makes its decisions and returns its result on every process.
  // By default root decides and broadcasts; array workers cannot talk, so each decides alone
  // (the decision must then be deterministic, as the plan is).
  virtual std::string Decide(const std::function<std::string()>& decide) {
    std::string bytes;
    if (is_root()) bytes = decide();
    Broadcast(bytes);
    return bytes;
  }

  // Starts a phase whose work items are these shards (every process holds the same list);
  // NextItem hands out positions in it until none is left. Distributed implementations assign
  // them dynamically so a process that finishes early takes more.
  virtual void BeginPhase(const std::vector<int>& shard_indices) = 0;
  virtual std::optional<int> NextItem() = 0;
  // Whether NextItem may hand this process the shard (array workers own a fixed share):
  // what its progress line counts towards.
  virtual bool MayTake(int /*shard_index*/) const { return true; }

  virtual void Barrier() = 0;
  // Root's `bytes` replace every other process's.
  virtual void Broadcast(std::string& bytes) = 0;
  // Root receives every process's string (in rank order); others get an empty vector.
  virtual std::vector<std::string> Gather(const std::string& bytes) = 0;
  // Ends every process of the job after an error on one of them (others would wait forever
  // in a collective). A single process just returns and lets the error propagate.
  virtual void Abort(int /*exit_code*/) {}
};

// One process, items handed out in order.
class LocalCoordinator : public Coordinator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_size() const override { return 1; }
  std::string worker_name() const override { return "local"; }
  std::string mode() const override { return "local"; }
  void BeginPhase(const std::vector<int>& shard_indices) override;
  std::optional<int> NextItem() override;
  void Barrier() override {}
  void Broadcast(std::string&) override {}
  std::vector<std::string> Gather(const std::string& bytes) override { return {bytes}; }

 private:
  int next_ = 0;
  int count_ = 0;
};

// Worker I of an array job of N (AWS Batch array jobs, Slurm arrays, Kubernetes indexed
// jobs): processes that share the output dataset and nothing else. Each makes the plan itself
// (deterministic, so every worker reaches the same one) and featurizes the shards whose index
// is I modulo N; none is root: `fruitpipe reduce` finishes the dataset once all are done.
class ArrayWorkerCoordinator : public Coordinator {
 public:
  ArrayWorkerCoordinator(int index, int count);  // 0 <= index < count, else InvalidArgumentError

  int rank() const override { return index_; }
  int size() const override { return count_; }
  int local_size() const override { return 1; }
  bool is_root() const override { return false; }
  std::string worker_name() const override;
  std::string mode() const override { return "array"; }
  bool prints_progress() const override { return true; }
  std::string Decide(const std::function<std::string()>& decide) override { return decide(); }
  void BeginPhase(const std::vector<int>& shard_indices) override;
  std::optional<int> NextItem() override;
  bool MayTake(int shard_index) const override { return shard_index % count_ == index_; }
  void Barrier() override {}
  void Broadcast(std::string&) override {}
  std::vector<std::string> Gather(const std::string& bytes) override { return {bytes}; }

 private:
  int index_;
  int count_;
  std::vector<int> mine_;  // positions of this worker's shards in the phase
  std::size_t next_ = 0;
};

}  // namespace fruitpipe::cluster
