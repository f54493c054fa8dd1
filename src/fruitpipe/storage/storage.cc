#include "fruitpipe/storage/storage.h"

#include <map>
#include <mutex>

#include "fruitpipe/common/error.h"
#include "fruitpipe/storage/crash_injection.h"
#include "fruitpipe/storage/local_storage.h"
#include "fruitpipe/storage/memory_storage.h"

namespace fruitpipe::storage {
namespace {

std::mutex& RegistryMutex() {
  static std::mutex mu;
  return mu;
}

std::map<std::string, StorageFactory>& Registry() {
  static std::map<std::string, StorageFactory> registry;
  return registry;
}

std::string_view SchemeOf(std::string_view uri) {
  const auto pos = uri.find("://");
  if (pos == std::string_view::npos) return {};
  return uri.substr(0, pos);
}

}  // namespace

std::optional<std::string> Storage::GetIfExists(std::string_view key) {
  try {
    return Get(key);
  } catch (const NotFoundError&) {
    return std::nullopt;
  }
}

void Storage::Rename(std::string_view from, std::string_view to) {
  Put(to, Get(from));
  Delete(from);
}

void Storage::GetMany(const std::vector<std::string>& keys,
                      const std::function<void(FetchResult&&)>& on_result) {
  for (const auto& key : keys) {
    FetchResult r;
    r.key = key;
    try {
      r.data = Get(key);
      r.ok = true;
    } catch (const Error& e) {
      r.error = e.what();
    }
    on_result(std::move(r));
  }
}

void RegisterStorageScheme(const std::string& scheme, StorageFactory factory) {
  std::lock_guard lock(RegistryMutex());
  Registry()[scheme] = std::move(factory);
}

bool IsRemoteUri(std::string_view uri) {
  const auto scheme = SchemeOf(uri);
  return !scheme.empty() && scheme != "file";
}

namespace {

std::unique_ptr<Storage> OpenUnwrapped(std::string_view uri, const StorageOptions& options) {
  const std::string_view scheme = SchemeOf(uri);
  if (scheme.empty()) return std::make_unique<LocalStorage>(std::filesystem::path(uri));
  if (scheme == "file") return std::make_unique<LocalStorage>(std::filesystem::path(uri.substr(7)));
  if (scheme == "mem") return MemoryStorage::Open(uri.substr(6));
  StorageFactory factory;
  {
    std::lock_guard lock(RegistryMutex());
    auto it = Registry().find(std::string(scheme));
    if (it != Registry().end()) factory = it->second;
  }
  if (!factory) {
    throw InvalidArgumentError(std::string(uri) + ": unsupported storage scheme '" +
                               std::string(scheme) + "://' (use a local path or s3://)");
  }
  return factory(uri, options);
}

}  // namespace

std::unique_ptr<Storage> OpenStorage(std::string_view uri, const StorageOptions& options) {
  return MaybeInjectCrashes(OpenUnwrapped(uri, options));
}

std::string JoinKey(std::string_view a, std::string_view b) {
  while (!a.empty() && a.back() == '/') a.remove_suffix(1);
  while (!b.empty() && b.front() == '/') b.remove_prefix(1);
  if (a.empty()) return std::string(b);
  if (b.empty()) return std::string(a);
  std::string out;
  out.reserve(a.size() + 1 + b.size());
  out.append(a).append("/").append(b);
  return out;
}

}  // namespace fruitpipe::storage
