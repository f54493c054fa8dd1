#pragma once

#include <filesystem>
#include <functional>
#include <string>

#include "fruitpipe/storage/storage.h"

namespace fruitpipe::storage {

// A directory on a POSIX file system. Put writes `<key>.tmp-<random>`, fsyncs it, renames it
// over the key and fsyncs the directory, so a crash leaves the old object or the new one.
class LocalStorage : public Storage {
 public:
  explicit LocalStorage(std::filesystem::path root);

  std::string Uri(std::string_view key) const override;
  std::vector<ObjectInfo> List(std::string_view prefix) override;
  std::string Get(std::string_view key) override;
  void Put(std::string_view key, std::string_view data) override;
  void Delete(std::string_view key) override;
  bool Exists(std::string_view key) override;
  void Rename(std::string_view from, std::string_view to) override;
  void RemoveAbandonedWrites(std::string_view prefix) override;

  const std::filesystem::path& root() const { return root_; }

 private:
  std::filesystem::path Path(std::string_view key) const;
  // Calls `visit` for every non-directory entry whose key starts with `prefix` (List's walk).
  void ForEachFile(std::string_view prefix,
                   const std::function<void(const std::filesystem::directory_entry&, std::string key)>& visit) const;
  std::filesystem::path root_;
};

}  // namespace fruitpipe::storage
