#include "fruitpipe/storage/crash_injection.h"

#include <csignal>

#include <atomic>
#include <string>

#include "fruitpipe/common/env_vars.h"

namespace fruitpipe::storage {
namespace {

std::atomic<long> g_puts{0};

class CrashingStorage : public Storage {
 public:
  CrashingStorage(std::unique_ptr<Storage> inner, long crash_at) : inner_(std::move(inner)), crash_at_(crash_at) {}

  std::string Uri(std::string_view key) const override { return inner_->Uri(key); }
  std::vector<ObjectInfo> List(std::string_view prefix) override { return inner_->List(prefix); }
  std::string Get(std::string_view key) override { return inner_->Get(key); }
  void Put(std::string_view key, std::string_view data) override {
    if (++g_puts == crash_at_) std::raise(SIGKILL);
    inner_->Put(key, data);
  }
  void Delete(std::string_view key) override { inner_->Delete(key); }
  bool Exists(std::string_view key) override { return inner_->Exists(key); }
  void Rename(std::string_view from, std::string_view to) override { inner_->Rename(from, to); }
  void GetMany(const std::vector<std::string>& keys,
               const std::function<void(FetchResult&&)>& on_result) override {
    inner_->GetMany(keys, on_result);
  }

 private:
  std::unique_ptr<Storage> inner_;
  long crash_at_;
};

}  // namespace

std::unique_ptr<Storage> MaybeInjectCrashes(std::unique_ptr<Storage> inner) {
  const auto setting = GetEnv("FRUITPIPE_CRASH_BEFORE_PUT");
  if (!setting) return inner;
  return std::make_unique<CrashingStorage>(std::move(inner), std::stol(*setting));
}

}  // namespace fruitpipe::storage
