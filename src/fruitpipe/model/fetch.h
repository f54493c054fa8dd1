// Downloading a model file over HTTP(S), checked against its expected sha256 before it becomes
// visible under its final name (see docs/export-model.md, "model fetch").
#pragma once

#include <string>

namespace fruitpipe::model {

struct FetchRequest {
  std::string url;        // http:// or https://; redirects are followed
  std::string sha256;     // expected, 64 hex digits
  std::string out_dir;    // created if missing
  std::string file_name;  // empty: the last segment of the URL's path
  long connect_timeout_s = 30;
  long stall_timeout_s = 60;  // abort when under 1 KiB/s for this long
};

struct FetchResult {
  std::string path;            // out_dir/file_name
  bool downloaded = false;     // false: the file was already there with the right sha256
  std::uint64_t bytes = 0;
};

// Streams the body to a temporary file in out_dir while hashing it, and renames it into place
// only when the sha256 matches. Throws IOError (network, HTTP status, disk) or CorruptionError
// (sha256 mismatch), each naming the URL; no partial file is left behind.
FetchResult FetchModelFile(const FetchRequest& request);

// The card-driven form: downloads the card's model (from `url` if given, else the card's url)
// into out_dir and writes a copy of the card there whose `file` names the download, so the
// pair in out_dir is ready for --model. Returns the path of that card.
std::string FetchModelForCard(const std::string& card_path, const std::string& out_dir, const std::string& url,
                              FetchResult* result);

}  // namespace fruitpipe::model
