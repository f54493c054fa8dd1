#include "fruitpipe/model/fetch.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>

#include <curl/curl.h>
#include <nlohmann/json.hpp>

#include "fruitpipe/common/env_vars.h"
#include "fruitpipe/common/error.h"
#include "fruitpipe/common/hash.h"
#include "fruitpipe/model/model_card.h"

namespace fruitpipe::model {
namespace {

namespace fs = std::filesystem;

struct Download {
  std::FILE* file = nullptr;
  Sha256Hasher hasher;
  std::uint64_t bytes = 0;
  bool write_failed = false;
};

std::size_t OnBody(char* data, std::size_t size, std::size_t n, void* user) {
  auto* d = static_cast<Download*>(user);
  const std::size_t len = size * n;
  if (std::fwrite(data, 1, len, d->file) != len) {
    d->write_failed = true;
    return 0;  // makes curl stop with CURLE_WRITE_ERROR
  }
  d->hasher.Update(std::string_view(data, len));
  d->bytes += len;
  return len;
}

// The last path segment of the URL, without query or fragment; refuses names that would escape
// out_dir or hide the file.
std::string FileNameFromUrl(const std::string& url) {
  std::string path = url.substr(0, url.find_first_of("?#"));
  const auto scheme = path.find("://");
  if (scheme != std::string::npos) path = path.substr(scheme + 3);
  const auto slash = path.find('/');
  const std::string name = slash == std::string::npos ? "" : path.substr(path.rfind('/') + 1);
  if (name.empty() || name == "." || name == ".." || name[0] == '.') {
    throw InvalidArgumentError("model download " + url + ": cannot take a file name from the URL; pass a card");
  }
  return name;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Runs curl_global_init exactly once per process (it is not thread-safe itself).
void EnsureCurl() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

void RemoveQuietly(const fs::path& p) {
  std::error_code ec;
  fs::remove(p, ec);
}

}  // namespace

FetchResult FetchModelFile(const FetchRequest& req) {
  const std::string where = "model download " + req.url;
  if (req.url.rfind("https://", 0) != 0 && req.url.rfind("http://", 0) != 0) {
    throw InvalidArgumentError(where + ": only http:// and https:// URLs are supported");
  }
  const std::string expected = Lower(req.sha256);
  if (expected.size() != 64 || expected.find_first_not_of("0123456789abcdef") != std::string::npos) {
    throw InvalidArgumentError(where + ": --sha256 must be 64 hexadecimal digits");
  }
  const std::string name = req.file_name.empty() ? FileNameFromUrl(req.url) : req.file_name;
  std::error_code ec;
  fs::create_directories(req.out_dir, ec);
  if (ec) throw IOError(where + ": cannot create " + req.out_dir + ": " + ec.message());
  const fs::path target = fs::path(req.out_dir) / name;

  FetchResult result;
  result.path = target.string();
  if (fs::exists(target) && Sha256OfFile(target.string()) == expected) {
    result.bytes = fs::file_size(target);
    return result;
  }

  const fs::path temp = fs::path(req.out_dir) /
                        ("." + name + ".part-" + std::to_string(::getpid()) + "-" + std::to_string(std::random_device()()));
  Download d;
  d.file = std::fopen(temp.c_str(), "wb");
  if (d.file == nullptr) throw IOError(where + ": cannot write " + temp.string() + ": " + std::strerror(errno));

  EnsureCurl();
  CURL* curl = curl_easy_init();
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_FAILONERROR, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, req.connect_timeout_s);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, req.stall_timeout_s);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "fruitpipe-model-fetch");
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &d);
  const CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(curl);
  const bool closed = std::fclose(d.file) == 0;

  if (rc != CURLE_OK || !closed) {
    RemoveQuietly(temp);
    if (rc == CURLE_HTTP_RETURNED_ERROR) throw IOError(where + ": HTTP " + std::to_string(status));
    if (d.write_failed || !closed) throw IOError(where + ": writing " + temp.string() + " failed");
    throw IOError(where + ": " + (errbuf[0] ? std::string(errbuf) : curl_easy_strerror(rc)));
  }
  const std::string actual = d.hasher.FinishHex();
  if (actual != expected) {
    RemoveQuietly(temp);
    throw CorruptionError(where + ": sha256 mismatch (expected " + expected.substr(0, 12) + "..., got " +
                          actual.substr(0, 12) + "... over " + std::to_string(d.bytes) + " bytes); file removed");
  }
  fs::rename(temp, target, ec);
  if (ec) {
    RemoveQuietly(temp);
    throw IOError(where + ": cannot rename into " + target.string() + ": " + ec.message());
  }
  result.downloaded = true;
  result.bytes = d.bytes;
  return result;
}

std::string FetchModelForCard(const std::string& card_path, const std::string& out_dir, const std::string& url,
                              FetchResult* result) {
  const ModelCard card = LoadModelCard(card_path);
  FetchRequest req;
  req.url = url.empty() ? card.url : url;
  if (req.url.empty()) {
    throw InvalidArgumentError("model card " + card_path + ": has no url; pass the URL to download from");
  }
  req.sha256 = card.sha256;
  req.out_dir = out_dir;
  req.file_name = fs::path(card.file).filename().string();
  *result = FetchModelFile(req);

  // The card copy in out_dir names the file beside it, whatever path the original used.
  const fs::path card_out = fs::path(out_dir) / fs::path(card_path).filename();
  std::error_code ec;
  if (fs::exists(card_out) && fs::equivalent(card_out, card_path, ec) &&
      fs::path(card.file).lexically_normal() == fs::path(result->path).lexically_normal()) {
    return card_out.string();
  }
  nlohmann::json doc = nlohmann::json::parse(ReadLocalFile(card_path));
  doc["file"] = req.file_name;
  const fs::path temp = card_out.string() + ".part-" + std::to_string(::getpid());
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out << doc.dump(2) << "\n";
    if (!out.flush()) throw IOError("model card " + card_out.string() + ": write failed");
  }
  fs::rename(temp, card_out, ec);
  if (ec) {
    RemoveQuietly(temp);
    throw IOError("model card " + card_out.string() + ": " + ec.message());
  }
  return card_out.string();
}

}  // namespace fruitpipe::model
