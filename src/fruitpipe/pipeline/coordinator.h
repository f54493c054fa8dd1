// How the processes of one run cooperate. A single process is a cluster of one; an MPI job
// (cluster/) and an array-job worker implement the same interface, so the run logic is the
// same everywhere and local and distributed runs produce the same rows and PCA model.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace fruitpipe::pipeline {

class Coordinator {
 public:
  virtual ~Coordinator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Processes of this job on this machine; threads per process = cores / local_size.
  virtual int local_size() const = 0;
  bool is_root() const { return rank() == 0; }
  // A name for the worker lane in reports ("rank 0", "worker 3/8").
  virtual std::string worker_name() const = 0;

  // Starts a phase of `num_items` work items (shard indices into a list every process holds);
  // NextItem hands them out until none is left. Distributed implementations assign them
  // dynamically so a process that finishes early takes more.
  virtual void BeginPhase(int num_items) = 0;
  virtual std::optional<int> NextItem() = 0;

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
  void BeginPhase(int num_items) override { next_ = 0; count_ = num_items; }
  std::optional<int> NextItem() override {
    if (next_ >= count_) return std::nullopt;
    return next_++;
  }
  void Barrier() override {}
  void Broadcast(std::string&) override {}
  std::vector<std::string> Gather(const std::string& bytes) override { return {bytes}; }

 private:
  int next_ = 0;
  int count_ = 0;
};

}  // namespace fruitpipe::pipeline
