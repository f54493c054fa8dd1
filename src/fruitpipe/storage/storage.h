// Storage: the Env of fruitpipe. Everything the pipeline reads or writes (images, part files,
// statistics, run.json, markers) goes through this interface, so local folders, S3 and the
// in-memory twin used by unit tests behave the same for the pipeline.
//
// Keys are '/'-separated paths relative to the storage's root (no leading '/').
// Contract every implementation keeps:
//  - Put is atomic: a reader sees the old object or the whole new one, never a part
//    (local: temp file + fsync + rename; S3: a single PUT or a completed multipart upload).
//  - List is recursive, returns keys under the prefix sorted bytewise.
//  - Get of a missing key throws NotFoundError; Delete of a missing key is not an error.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fruitpipe::storage {

struct ObjectInfo {
  std::string key;     // relative to the root
  std::uint64_t size = 0;
};

// The result of fetching one key in a batch: bytes or the reason it could not be read.
struct FetchResult {
  std::string key;
  bool ok = false;
  std::string data;
  std::string error;  // one line, set when !ok
};

class Storage {
 public:
  virtual ~Storage() = default;

  // A URI that names `key` for users and outputs (file path or s3://bucket/prefix/key).
  virtual std::string Uri(std::string_view key) const = 0;

  virtual std::vector<ObjectInfo> List(std::string_view prefix) = 0;
  virtual std::string Get(std::string_view key) = 0;
  virtual std::optional<std::string> GetIfExists(std::string_view key);
  virtual void Put(std::string_view key, std::string_view data) = 0;
  virtual void Delete(std::string_view key) = 0;
  virtual bool Exists(std::string_view key) = 0;
  // Moves an object. Local: rename(2); S3: copy then delete.
  virtual void Rename(std::string_view from, std::string_view to);

  // Removes what writes killed mid-way left under `prefix` (LocalStorage: its hidden temporary
  // files; they may hold rows, so erasure and the end of a run must not leave them). Only when
  // no writer is running. Object stores have nothing visible to remove: a default of nothing.
  virtual void RemoveAbandonedWrites(std::string_view prefix) {}

  // Reads many keys; `on_result` is called once per key, from any thread, in any order.
  // The default reads sequentially; remote stores override it to keep many requests in flight.
  virtual void GetMany(const std::vector<std::string>& keys,
                       const std::function<void(FetchResult&&)>& on_result);
};

// Options that apply to remote stores; local and memory stores ignore them.
struct StorageOptions {
  std::string endpoint;        // --s3-endpoint, else AWS_ENDPOINT_URL
  std::string region;          // --region, else AWS_REGION / AWS_DEFAULT_REGION / profile
  bool allow_non_eu_region = false;
  std::string sse = "AES256";  // server-side encryption: AES256 or aws:kms
  std::string sse_kms_key_id;
  int max_in_flight = 32;      // concurrent GETs for GetMany
};

// A factory for a URI scheme other than local paths (s3://). Registered by the S3 library so
// that this layer does not depend on it.
using StorageFactory =
    std::function<std::unique_ptr<Storage>(std::string_view uri, const StorageOptions&)>;
void RegisterStorageScheme(const std::string& scheme, StorageFactory factory);

// Opens a root: "s3://bucket/prefix", "mem://name" (process-wide in-memory store, for tests),
// or a local directory path (created for writing when missing).
std::unique_ptr<Storage> OpenStorage(std::string_view uri, const StorageOptions& options = {});

bool IsRemoteUri(std::string_view uri);

// Joins key parts with '/', ignoring empty parts.
std::string JoinKey(std::string_view a, std::string_view b);

}  // namespace fruitpipe::storage
