#include "fruitpipe/storage/memory_storage.h"

#include "fruitpipe/common/error.h"

namespace fruitpipe::storage {

MemoryStorage::MemoryStorage(std::string name, std::shared_ptr<Objects> objects)
    : name_(std::move(name)), objects_(std::move(objects)) {}

std::unique_ptr<MemoryStorage> MemoryStorage::Open(std::string_view name) {
  static std::mutex mu;
  static std::map<std::string, std::weak_ptr<Objects>, std::less<>> stores;
  std::lock_guard lock(mu);
  auto& slot = stores[std::string(name)];
  auto objects = slot.lock();
  if (!objects) {
    objects = std::make_shared<Objects>();
    slot = objects;
  }
  return std::make_unique<MemoryStorage>(std::string(name), std::move(objects));
}

void MemoryStorage::MaybeFault(std::string_view op, std::string_view key) {
  if (fault_hook_) fault_hook_(op, key);
}

std::string MemoryStorage::Uri(std::string_view key) const {
  return "mem://" + JoinKey(name_, key);
}

std::vector<ObjectInfo> MemoryStorage::List(std::string_view prefix) {
  MaybeFault("list", prefix);
  std::lock_guard lock(objects_->mu);
  std::vector<ObjectInfo> out;
  for (auto it = objects_->data.lower_bound(prefix);
       it != objects_->data.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    out.push_back({it->first, it->second.size()});
  }
  return out;
}

std::string MemoryStorage::Get(std::string_view key) {
  MaybeFault("get", key);
  std::lock_guard lock(objects_->mu);
  auto it = objects_->data.find(key);
  if (it == objects_->data.end()) throw NotFoundError(Uri(key) + ": no such object");
  return it->second;
}

void MemoryStorage::Put(std::string_view key, std::string_view data) {
  MaybeFault("put", key);
  std::lock_guard lock(objects_->mu);
  objects_->data.insert_or_assign(std::string(key), std::string(data));
}

void MemoryStorage::Delete(std::string_view key) {
  MaybeFault("delete", key);
  std::lock_guard lock(objects_->mu);
  auto it = objects_->data.find(key);
  if (it != objects_->data.end()) objects_->data.erase(it);
}

bool MemoryStorage::Exists(std::string_view key) {
  MaybeFault("exists", key);
  std::lock_guard lock(objects_->mu);
  return objects_->data.find(key) != objects_->data.end();
}

}  // namespace fruitpipe::storage
