#pragma once

#include <map>
#include <memory>
#include <mutex>

#include "fruitpipe/storage/storage.h"

namespace fruitpipe::storage {

// The in-memory twin for unit tests: same contract, no I/O. Instances opened with the same
// "mem://name" share their objects, so a test can write through one and read through another.
// A fault hook lets tests fail chosen operations (fault-injection tests).
class MemoryStorage : public Storage {
 public:
  struct Objects {
    std::mutex mu;
    std::map<std::string, std::string, std::less<>> data;
  };
  // Called before each operation with its name ("get", "put", ...) and key; may throw.
  using FaultHook = std::function<void(std::string_view op, std::string_view key)>;

  MemoryStorage(std::string name, std::shared_ptr<Objects> objects);
  static std::unique_ptr<MemoryStorage> Open(std::string_view name);

  void SetFaultHook(FaultHook hook) { fault_hook_ = std::move(hook); }

  std::string Uri(std::string_view key) const override;
  std::vector<ObjectInfo> List(std::string_view prefix) override;
  std::string Get(std::string_view key) override;
  void Put(std::string_view key, std::string_view data) override;
  void Delete(std::string_view key) override;
  bool Exists(std::string_view key) override;

 private:
  void MaybeFault(std::string_view op, std::string_view key);
  std::string name_;
  std::shared_ptr<Objects> objects_;
  FaultHook fault_hook_;
};

}  // namespace fruitpipe::storage
