#include "fruitpipe/storage/local_storage.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <random>

#include "fruitpipe/common/env_vars.h"
#include "fruitpipe/common/error.h"

namespace fs = std::filesystem;

namespace fruitpipe::storage {
namespace {

[[noreturn]] void ThrowErrno(const std::string& what, const fs::path& path, int err) {
  const std::string msg = path.string() + ": " + what + ": " + std::strerror(err);
  if (err == ENOENT) throw NotFoundError(msg);
  throw IOError(msg);
}

void FsyncPath(const fs::path& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return;  // best effort for directories on file systems that refuse it
  ::fsync(fd);
  ::close(fd);
}

// Marks a Put's temporary file: `.<name>.tmp-<pid>-<n>-<random>`.
constexpr std::string_view kTempMarker = ".tmp-";

std::string TempSuffix() {
  static std::atomic<std::uint64_t> counter{0};
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::string(kTempMarker) + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" +
         std::to_string(rng() % 1000000);
}

}  // namespace

LocalStorage::LocalStorage(fs::path root) : root_(std::move(root)) {}

fs::path LocalStorage::Path(std::string_view key) const {
  if (key.empty()) return root_;
  return root_ / fs::path(std::string(key));
}

std::string LocalStorage::Uri(std::string_view key) const { return Path(key).string(); }

void LocalStorage::ForEachFile(std::string_view prefix,
                               const std::function<void(const fs::directory_entry&, std::string key)>& visit) const {
  std::error_code ec;
  if (!fs::exists(root_, ec)) return;
  // Walk the deepest directory the prefix names, then filter by the full prefix.
  std::string dir_part(prefix.substr(0, prefix.rfind('/') == std::string_view::npos ? 0 : prefix.rfind('/')));
  const fs::path start = Path(dir_part);
  if (!fs::is_directory(start, ec)) return;
  auto it = fs::recursive_directory_iterator(start, fs::directory_options::skip_permission_denied, ec);
  if (ec) ThrowErrno("list", start, ec.value());
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const auto& entry = *it;
    std::error_code stat_ec;
    if (entry.is_directory(stat_ec)) continue;
    // Lexically: fs::relative would resolve a symlinked file to its target's path, giving it a
    // key outside the root (and the target's folder as label), and drop a symlink loop.
    std::string key = entry.path().lexically_relative(root_).generic_string();
    if (key.rfind(prefix, 0) != 0) continue;
    visit(entry, std::move(key));
  }
}

std::vector<ObjectInfo> LocalStorage::List(std::string_view prefix) {
  std::vector<ObjectInfo> out;
  ForEachFile(prefix, [&](const fs::directory_entry& entry, std::string key) {
    if (key.find(kTempMarker) != std::string::npos) return;  // in-flight or crashed Puts
    std::error_code stat_ec;
    std::uint64_t size = 0;
    if (entry.is_regular_file(stat_ec)) size = entry.file_size(stat_ec);
    out.push_back({std::move(key), size});
  });
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.key < b.key; });
  return out;
}

void LocalStorage::RemoveAbandonedWrites(std::string_view prefix) {
  ForEachFile(prefix, [](const fs::directory_entry& entry, const std::string&) {
    const std::string name = entry.path().filename().string();
    std::error_code ec;
    if (name.size() > 1 && name[0] == '.' && name.find(kTempMarker) != std::string::npos && entry.is_regular_file(ec)) {
      fs::remove(entry.path(), ec);
    }
  });
}

std::string LocalStorage::Get(std::string_view key) {
  const fs::path p = Path(key);
  std::error_code ec;
  const fs::file_status st = fs::status(p, ec);
  // Only regular files are objects: reading a FIFO blocks forever, a device (a link to
  // /dev/zero) never ends. Errors (missing, loop, permission) are left to the read's message.
  if (!ec && fs::is_directory(st)) throw IOError(p.string() + ": is a directory");
  if (!ec && fs::exists(st) && !fs::is_regular_file(st)) throw IOError(p.string() + ": not a regular file");
  return ReadLocalFile(p.string());
}

void LocalStorage::Put(std::string_view key, std::string_view data) {
  const fs::path p = Path(key);
  std::error_code ec;
  fs::create_directories(p.parent_path(), ec);
  if (ec) ThrowErrno("create directory", p.parent_path(), ec.value());
  // Hidden (leading '.'): a file a crash leaves behind is skipped by Spark, Hadoop and glob
  // readers like every other hidden file, and removed by RemoveAbandonedWrites.
  const fs::path tmp = p.parent_path() / ("." + p.filename().string() + TempSuffix());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) ThrowErrno("create", tmp, errno);
  std::size_t written = 0;
  while (written < data.size()) {
    const ssize_t n = ::write(fd, data.data() + written, data.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      ThrowErrno("write", tmp, err);
    }
    written += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    ThrowErrno("fsync", tmp, err);
  }
  if (::rename(tmp.c_str(), p.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    ThrowErrno("rename", p, err);
  }
  FsyncPath(p.parent_path(), O_RDONLY | O_DIRECTORY);
}

void LocalStorage::Delete(std::string_view key) {
  const fs::path p = Path(key);
  if (::unlink(p.c_str()) != 0 && errno != ENOENT) ThrowErrno("delete", p, errno);
}

bool LocalStorage::Exists(std::string_view key) {
  std::error_code ec;
  return fs::is_regular_file(Path(key), ec);
}

void LocalStorage::Rename(std::string_view from, std::string_view to) {
  const fs::path src = Path(from), dst = Path(to);
  std::error_code ec;
  fs::create_directories(dst.parent_path(), ec);
  if (::rename(src.c_str(), dst.c_str()) != 0) ThrowErrno("rename", src, errno);
  FsyncPath(dst.parent_path(), O_RDONLY | O_DIRECTORY);
}

}  // namespace fruitpipe::storage
