// Small-object read throughput: the dev Test images (Fruits-360, ~5 KB jpgs) read through
// LocalStorage::GetMany from disk vs through S3Storage::GetMany from s3rver on loopback,
// with many GETs in flight and with one (the latency-bound baseline).
//
//   s3_read_bench [--images DIR] [--in-flight N] [--repeat R] [--latency-ms MS] [--synthetic N]
//
// --latency-ms (default 10) adds that much to every request through a loopback proxy, the
// order of a first-byte latency from EC2 to S3 in the same region, for the in-flight runs.
//
// --synthetic N adds a run over N generated 5 KB objects (e.g. 20000) to show the behaviour
// at the corpus size the issue names. s3rver is single-threaded node: absolute S3 numbers are
// a floor, the ratio between in-flight settings is the point.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "fruitpipe/common/env_vars.h"
#include "fruitpipe/common/error.h"
#include "fruitpipe/storage/local_storage.h"
#include "fruitpipe/storage/s3/harness.h"
#include "fruitpipe/storage/s3/s3_storage.h"

namespace fs = std::filesystem;
using fruitpipe::storage::FetchResult;
using fruitpipe::storage::Storage;

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

struct Pass {
  double seconds = 0;
  std::size_t bytes = 0;
  std::size_t failed = 0;
};

Pass ReadAll(Storage& store, const std::vector<std::string>& keys) {
  Pass p;
  const auto start = Clock::now();
  store.GetMany(keys, [&](FetchResult&& r) {
    if (r.ok) {
      p.bytes += r.data.size();
    } else {
      ++p.failed;
    }
  });
  p.seconds = Seconds(start);
  return p;
}

// The best of `repeat` passes (the first also warms the page cache and connections).
Pass Best(Storage& store, const std::vector<std::string>& keys, int repeat) {
  Pass best;
  for (int i = 0; i < repeat; ++i) {
    Pass p = ReadAll(store, keys);
    if (i == 0 || p.seconds < best.seconds) best = p;
  }
  return best;
}

void Report(const char* what, std::size_t n, const Pass& p) {
  std::printf("%-44s %7zu objects %8.3f s %10.0f objects/s %8.1f MB/s%s\n", what, n, p.seconds,
              static_cast<double>(n) / p.seconds, static_cast<double>(p.bytes) / p.seconds / 1e6,
              p.failed ? "  (FAILURES)" : "");
}

void PutAll(Storage& store, const std::vector<std::string>& keys,
            const std::function<std::string(std::size_t)>& data, int threads) {
  std::atomic<std::size_t> next{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (std::size_t i = next++; i < keys.size(); i = next++) store.Put(keys[i], data(i));
    });
  }
  for (auto& t : pool) t.join();
}

}  // namespace

int main(int argc, char** argv) {
  fs::path images = fruitpipe::GetEnv("FRUITPIPE_SHARED_DIR")
                        ? fs::path(*fruitpipe::GetEnv("FRUITPIPE_SHARED_DIR"))
                        : fruitpipe::storage::s3::harness::HarnessDir() / ".." / ".." / ".." / "shared";
  images = images / "data" / "fruits360-dev" / "Test";
  int in_flight = 32, repeat = 3, latency_ms = 10;
  std::size_t synthetic = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--images") images = argv[i + 1];
    else if (a == "--in-flight") in_flight = std::atoi(argv[i + 1]);
    else if (a == "--repeat") repeat = std::max(1, std::atoi(argv[i + 1]));
    else if (a == "--synthetic") synthetic = std::strtoull(argv[i + 1], nullptr, 10);
    else if (a == "--latency-ms") latency_ms = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: %s [--images DIR] [--in-flight N] [--repeat R] [--latency-ms MS] [--synthetic N]\n", argv[0]);
      return 2;
    }
  }
  try {
    ::setenv("AWS_EC2_METADATA_DISABLED", "true", 1);  // static test keys; never ask a metadata service
    fruitpipe::storage::LocalStorage local(images);
    std::vector<std::string> keys;
    for (const auto& o : local.List("")) keys.push_back(o.key);
    if (keys.empty()) throw fruitpipe::NotFoundError(images.string() + ": no images");
    std::printf("images: %s (%zu files), %d passes, best shown\n", images.c_str(), keys.size(), repeat);

    Report("local disk, LocalStorage::GetMany", keys.size(), Best(local, keys, repeat));

    fruitpipe::storage::s3::harness::S3rver server({"bench"});
    fruitpipe::storage::S3Config config;
    config.bucket = "bench";
    config.prefix = "Test";
    config.endpoint = server.endpoint();
    config.max_in_flight = in_flight;
    auto creds = std::make_shared<fruitpipe::storage::s3::StaticCredentialsProvider>(
        fruitpipe::storage::s3::AwsCredentials{"S3RVER", "S3RVER", "", std::nullopt}, "bench");
    fruitpipe::storage::S3Storage s3(config, creds);
    auto start = Clock::now();
    PutAll(s3, keys, [&](std::size_t i) { return local.Get(keys[i]); }, 8);
    std::printf("upload to s3rver: %.2f s\n", Seconds(start));

    start = Clock::now();
    const auto listed = s3.List("");
    std::printf("s3 list: %zu keys in %.3f s\n", listed.size(), Seconds(start));
    char label[80];
    std::snprintf(label, sizeof label, "s3rver, S3Storage::GetMany, %d in flight", in_flight);
    Report(label, keys.size(), Best(s3, keys, repeat));
    config.max_in_flight = 1;
    fruitpipe::storage::S3Storage serial(config, creds);
    Report("s3rver, S3Storage::GetMany, 1 in flight", keys.size(), Best(serial, keys, repeat));

    // Loopback has no latency to hide; a proxy adding a remote region's round trip shows what
    // keeping requests in flight buys against real S3.
    fruitpipe::storage::s3::harness::FaultProxy wan(server.port(), {"--delay-ms", std::to_string(latency_ms)});
    config.endpoint = wan.endpoint();
    config.max_in_flight = in_flight;
    fruitpipe::storage::S3Storage remote(config, creds);
    std::snprintf(label, sizeof label, "s3rver +%d ms RTT, GetMany, %d in flight", latency_ms, in_flight);
    Report(label, keys.size(), Best(remote, keys, repeat));
    config.max_in_flight = 1;
    fruitpipe::storage::S3Storage remote_serial(config, creds);
    std::snprintf(label, sizeof label, "s3rver +%d ms RTT, GetMany, 1 in flight", latency_ms);
    Report(label, keys.size(), Best(remote_serial, keys, 1));
    config.endpoint = server.endpoint();
    config.max_in_flight = in_flight;

    if (synthetic > 0) {
      std::vector<std::string> many;
      for (std::size_t i = 0; i < synthetic; ++i) many.push_back("synthetic/" + std::to_string(i % 100) + "/" + std::to_string(i) + ".jpg");
      const std::string blob(5000, 'j');
      start = Clock::now();
      PutAll(s3, many, [&](std::size_t) { return blob; }, 8);
      std::printf("upload of %zu synthetic 5 KB objects: %.2f s\n", synthetic, Seconds(start));
      start = Clock::now();
      const auto all = s3.List("synthetic/");
      std::printf("s3 list: %zu keys in %.3f s\n", all.size(), Seconds(start));
      std::snprintf(label, sizeof label, "s3rver synthetic, GetMany, %d in flight", in_flight);
      Report(label, many.size(), Best(s3, many, 1));
    }
  } catch (const fruitpipe::Error& e) {
    std::fprintf(stderr, "s3_read_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
