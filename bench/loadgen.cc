// loadgen: a small closed-loop HTTP load generator for `fruitpipe serve` (a benchmark, not a
// test). N clients, each on its own keep-alive connection, POST images back to back to
// /v1/identify for a bounded time and request count; prints requests/s and latency
// percentiles per level. With --hostile F, that share of requests is garbage, truncated,
// decompression-bomb headers, wrong content types, empty or oversized bodies, and the figures
// of the good requests show what hostile traffic costs the real users.
//
// Loopback only: it refuses any other host, so it cannot be pointed at someone's server.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <httplib.h>
#include <nlohmann/json.hpp>

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct Request {
  std::string body;
  std::string content_type;
  bool hostile = false;
  const char* kind = "good";
};

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// PNG with a valid IHDR declaring 60000x60000 RGB pixels and no image data: a decoder that
// trusted it would allocate ~10 GB.
std::string BombPng() {
  const unsigned char png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R',
                               0, 0, 0xEA, 0x60, 0, 0, 0xEA, 0x60, 8, 2, 0, 0, 0, 0, 0, 0, 0};
  return std::string(reinterpret_cast<const char*>(png), sizeof png);
}

// The hostile kinds, in rotation.
Request Hostile(std::size_t i, const std::vector<std::string>& images, std::size_t oversize) {
  const std::string& jpeg = images[i % images.size()];
  switch (i % 6) {
    case 0: return {std::string(4096, '\x5a'), "image/jpeg", true, "garbage"};
    case 1: return {jpeg.substr(0, jpeg.size() / 3), "image/jpeg", true, "truncated"};
    case 2: return {BombPng(), "image/png", true, "bomb"};
    case 3: return {jpeg, "text/plain", true, "content_type"};
    case 4: return {"", "image/jpeg", true, "empty"};
    default: return {std::string(oversize, '\0'), "application/octet-stream", true, "oversized"};
  }
}

struct Sample {
  double ms;
  int status;  // 0: transport error
  bool hostile;
};

struct LevelResult {
  int clients = 0;
  double seconds = 0;
  std::vector<Sample> samples;
};

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(pos);
  const auto hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

struct Config {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string token;
  double duration = 5;
  std::int64_t max_requests = 20000;
  double hostile = 0;
  std::size_t oversize = 0;
};

LevelResult RunLevel(const Config& cfg, int clients, const std::vector<std::string>& images) {
  std::atomic<std::int64_t> next{0};
  std::mutex mu;
  LevelResult result;
  result.clients = clients;
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(cfg.duration));
  // Every `period`-th request index is hostile, spread evenly rather than in bursts.
  const std::int64_t period = cfg.hostile > 0 ? std::max<std::int64_t>(1, std::llround(1.0 / cfg.hostile)) : 0;

  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&] {
      httplib::Client cli(cfg.host, cfg.port);
      cli.set_keep_alive(true);
      cli.set_tcp_nodelay(true);  // headers and body go out in separate writes
      cli.set_read_timeout(30, 0);
      cli.set_write_timeout(30, 0);
      httplib::Headers headers;
      if (!cfg.token.empty()) headers.emplace("Authorization", "Bearer " + cfg.token);
      std::vector<Sample> mine;
      for (;;) {
        const std::int64_t i = next.fetch_add(1);
        if (i >= cfg.max_requests || Clock::now() >= end) break;
        const auto idx = static_cast<std::size_t>(i);
        const Request req = period > 0 && i % period == period - 1
                                ? Hostile(idx / static_cast<std::size_t>(period), images, cfg.oversize)
                                : Request{images[idx % images.size()], "image/jpeg", false, "good"};
        const auto t0 = Clock::now();
        const auto res = cli.Post("/v1/identify", headers, req.body, req.content_type.c_str());
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        mine.push_back({ms, res ? res->status : 0, req.hostile});
      }
      std::lock_guard<std::mutex> lock(mu);
      result.samples.insert(result.samples.end(), mine.begin(), mine.end());
    });
  }
  for (auto& t : threads) t.join();
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return result;
}

nlohmann::json Summarise(const LevelResult& r, double hostile_share) {
  std::vector<double> good_ms;
  std::int64_t good_ok = 0, good_failed = 0, hostile_4xx = 0, hostile_other = 0, transport = 0;
  for (const auto& s : r.samples) {
    if (s.status == 0) ++transport;
    if (!s.hostile) {
      if (s.status == 200) {
        ++good_ok;
        good_ms.push_back(s.ms);
      } else {
        ++good_failed;
      }
    } else if (s.status >= 400 && s.status < 500) {
      ++hostile_4xx;
    } else {
      ++hostile_other;
    }
  }
  std::map<std::string, std::int64_t> statuses;  // "good 200", "hostile 422", "good 0" (transport error)
  for (const auto& s : r.samples) ++statuses[std::string(s.hostile ? "hostile " : "good ") + std::to_string(s.status)];
  const double total = static_cast<double>(r.samples.size());
  return {{"clients", r.clients},
          {"hostile_share", hostile_share},
          {"seconds", r.seconds},
          {"requests", r.samples.size()},
          {"requests_per_second", total / r.seconds},
          {"good_ok", good_ok},
          {"good_failed", good_failed},
          {"good_per_second", static_cast<double>(good_ok) / r.seconds},
          {"hostile_4xx", hostile_4xx},
          {"hostile_other", hostile_other},
          {"transport_errors", transport},
          {"statuses", statuses},
          {"p50_ms", Percentile(good_ms, 0.50)},
          {"p90_ms", Percentile(good_ms, 0.90)},
          {"p99_ms", Percentile(good_ms, 0.99)},
          {"max_ms", good_ms.empty() ? 0.0 : *std::max_element(good_ms.begin(), good_ms.end())}};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"loadgen: closed-loop load on fruitpipe serve over loopback", "loadgen"};
  Config cfg;
  std::vector<int> levels{1, 4, 16};
  std::string images_dir, token_file;
  std::size_t max_images = 200;
  std::size_t oversize = (20u << 20) + 1;
  app.add_option("--port", cfg.port, "server port on 127.0.0.1")->required();
  app.add_option("--host", cfg.host, "127.0.0.1, ::1 or localhost")->default_val("127.0.0.1");
  app.add_option("--images", images_dir, "folder searched recursively for .jpg files")->required();
  app.add_option("--max-images", max_images, "images loaded into memory and cycled")->default_val(200);
  app.add_option("--clients", levels, "concurrency levels to run, one after the other")->delimiter(',');
  app.add_option("--duration", cfg.duration, "seconds per level")->default_val(5)->check(CLI::Range(0.1, 600.0));
  app.add_option("--max-requests", cfg.max_requests, "requests per level at most")->default_val(20000);
  app.add_option("--hostile", cfg.hostile, "share of hostile requests (0..1)")->default_val(0)->check(CLI::Range(0.0, 1.0));
  app.add_option("--oversize-bytes", oversize, "size of the oversized hostile body (server limit + 1)");
  app.add_option("--token-file", token_file, "bearer token file");
  bool json_out = false;
  app.add_flag("--json", json_out, "one JSON object per level instead of the table");
  CLI11_PARSE(app, argc, argv);

  if (cfg.host != "127.0.0.1" && cfg.host != "::1" && cfg.host != "localhost") {
    std::fprintf(stderr, "loadgen: error: --host %s: only loopback targets are allowed\n", cfg.host.c_str());
    return 2;
  }
  cfg.oversize = oversize;
  if (!token_file.empty()) {
    cfg.token = ReadFile(token_file);
    while (!cfg.token.empty() && (cfg.token.back() == '\n' || cfg.token.back() == '\r')) cfg.token.pop_back();
  }
  std::vector<fs::path> paths;
  for (const auto& e : fs::recursive_directory_iterator(images_dir)) {
    if (e.is_regular_file() && e.path().extension() == ".jpg") paths.push_back(e.path());
  }
  std::sort(paths.begin(), paths.end());
  if (paths.empty()) {
    std::fprintf(stderr, "loadgen: error: %s: no .jpg files\n", images_dir.c_str());
    return 2;
  }
  // Evenly spaced picks so every class shows up, not just the first folders.
  std::vector<std::string> images;
  const std::size_t n = std::min(max_images, paths.size());
  for (std::size_t i = 0; i < n; ++i) images.push_back(ReadFile(paths[i * paths.size() / n]));

  if (!json_out) {
    std::printf("%8s %8s %9s %9s %9s %9s %9s %9s %8s %8s\n", "clients", "hostile", "req/s", "good/s", "p50 ms",
                "p90 ms", "p99 ms", "max ms", "bad-good", "errors");
  }
  for (int clients : levels) {
    const nlohmann::json s = Summarise(RunLevel(cfg, clients, images), cfg.hostile);
    if (json_out) {
      std::printf("%s\n", s.dump().c_str());
    } else {
      std::printf("%8d %7.0f%% %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f %8lld %8lld\n", clients, cfg.hostile * 100,
                  s["requests_per_second"].get<double>(), s["good_per_second"].get<double>(),
                  s["p50_ms"].get<double>(), s["p90_ms"].get<double>(), s["p99_ms"].get<double>(),
                  s["max_ms"].get<double>(), static_cast<long long>(s["good_failed"].get<std::int64_t>()),
                  static_cast<long long>(s["transport_errors"].get<std::int64_t>()));
    }
    std::fflush(stdout);
  }
  return 0;
}
