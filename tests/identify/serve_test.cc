// `fruitpipe serve` over real HTTP on 127.0.0.1: the real binary, the real model trained on
// the dev Training split (fixture dev-model), good and hostile requests, bearer tokens,
// metrics, and a graceful SIGTERM.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <zlib.h>

#include <atomic>
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <regex>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "fruitpipe/common/env_vars.h"
#include "fruitpipe/common/testing.h"
#include "serve_harness.h"

namespace fruitpipe {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::RunCommand;
using testing::ShellQuote;
using namespace servetest;

// A known-class photo the model identifies correctly, with what `fruitpipe predict` says about
// it: the service must answer the same.
struct Reference {
  fs::path path;
  std::string label;
  double confidence = 0;
};

const Reference& KnownImage() {
  static const Reference ref = [] {
    const std::vector<fs::path> candidates = {TestImage("Banana"), TestImage("Kiwi"), TestImage("Strawberry"),
                                              TestImage("Lemon")};
    std::string cmd = ShellQuote(testing::FruitpipeBinary().string()) + " predict " + ShellQuote(ModelDir().string()) +
                      " --json --threads 1";
    for (const auto& c : candidates) cmd += " " + ShellQuote(c.string());
    const auto r = RunCommand(cmd + " 2>/dev/null");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    const json out = json::parse(r.output);
    for (const auto& p : out["images"]) {
      const fs::path path = p["path"].get<std::string>();
      if (!p.value("unknown", true) && p["label"] == path.parent_path().filename().string()) {
        return Reference{path, p["label"], p["confidence"]};
      }
    }
    ADD_FAILURE() << "predict identified none of the reference images: " << r.output;
    return Reference{};
  }();
  return ref;
}

// PNG with a valid signature and IHDR declaring 60000x60000 RGB and no pixel data: a decoder
// that trusted the header would try to allocate ~10 GB.
std::string BombPng() {
  const unsigned char ihdr[] = {'I', 'H', 'D', 'R', 0, 0, 0xEA, 0x60, 0, 0, 0xEA, 0x60, 8, 2, 0, 0, 0};
  const uLong crc = crc32(0, ihdr, sizeof ihdr);
  std::string png = "\x89PNG\r\n\x1a\n";
  png += std::string("\0\0\0\x0d", 4);
  png.append(reinterpret_cast<const char*>(ihdr), sizeof ihdr);
  for (int shift : {24, 16, 8, 0}) png += static_cast<char>((crc >> shift) & 0xff);
  return png;
}

TEST(ServeTest, IdentifiesJpegAndPngLikePredictAndCountsThem) {
  REQUIRE_MODEL();
  const Reference& ref = KnownImage();
  ServerProcess server;
  ASSERT_GT(server.port(), 0);
  auto c = server.Client();

  auto health = c->Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(json::parse(health->body)["status"], "ok");
  const std::string before = Metrics(*c);

  const std::string jpeg = ReadImage(ref.path);
  auto r = c->Post("/v1/identify", jpeg, "image/jpeg");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
  const json j = json::parse(r->body);
  EXPECT_EQ(j["label"], ref.label);
  EXPECT_FALSE(j["unknown"].get<bool>());
  EXPECT_NEAR(j["confidence"].get<double>(), ref.confidence, 1e-6);
  ASSERT_EQ(j["top5"].size(), 5u);
  EXPECT_EQ(j["top5"][0]["label"], ref.label);
  for (std::size_t i = 1; i < 5; ++i) {
    EXPECT_LE(j["top5"][i]["probability"].get<double>(), j["top5"][i - 1]["probability"].get<double>());
  }
  EXPECT_EQ(j["model"], json::parse(ReadLocalFile((ModelDir() / "model.json").string()))["id"]);
  EXPECT_GT(j["latency_ms"].get<double>(), 0.0);

  // The same pixels as a PNG (lossless): the same answer.
  const cv::Mat bgr = cv::imread(ref.path.string(), cv::IMREAD_COLOR);
  std::vector<unsigned char> png;
  ASSERT_TRUE(cv::imencode(".png", bgr, png));
  auto rp = c->Post("/v1/identify", std::string(png.begin(), png.end()), "image/png");
  ASSERT_TRUE(rp);
  ASSERT_EQ(rp->status, 200) << rp->body;
  EXPECT_EQ(json::parse(rp->body)["label"], ref.label);
  // application/octet-stream is accepted too (the format is sniffed from the bytes).
  auto ro = c->Post("/v1/identify", jpeg, "application/octet-stream");
  ASSERT_TRUE(ro);
  EXPECT_EQ(ro->status, 200);

  const std::string after = Metrics(*c);
  const std::string ok = "fruitpipe_http_requests_total{route=\"/v1/identify\",code=\"200\"}";
  EXPECT_EQ(MetricValue(after, ok) - MetricValue(before, ok), 3);
  EXPECT_EQ(MetricValue(after, "fruitpipe_images_identified_total{result=\"known\"}"), 3);
  EXPECT_EQ(MetricValue(after, "fruitpipe_http_request_duration_seconds_count{route=\"/v1/identify\"}"), 3);
  EXPECT_EQ(MetricValue(after, "fruitpipe_http_request_duration_seconds_bucket{route=\"/v1/identify\",le=\"+Inf\"}"), 3);
  EXPECT_GE(MetricValue(after, "fruitpipe_http_requests_total{route=\"/healthz\",code=\"200\"}"), 1);
  EXPECT_NE(after.find("# TYPE fruitpipe_http_request_duration_seconds histogram"), std::string::npos);

  // One log line per request, with no image bytes and no client address.
  const std::string log = server.Log();
  EXPECT_NE(log.find("POST /v1/identify 200"), std::string::npos) << log;
  EXPECT_EQ(log.find("127.0.0.1 POST"), std::string::npos) << log;
  c.reset();  // an idle keep-alive connection would hold the exit for the keep-alive timeout
  EXPECT_EQ(server.Terminate(), 0) << server.Log();
}

TEST(ServeTest, HostileRequestsGet4xxJsonAndTheServerKeepsServing) {
  REQUIRE_MODEL();
  const Reference& ref = KnownImage();
  ServerProcess server;
  ASSERT_GT(server.port(), 0);
  auto c = server.Client();
  const std::string jpeg = ReadImage(ref.path);

  struct Case {
    const char* name;
    std::string body;
    std::string type;
    int status;
    const char* error;
  };
  const std::vector<Case> cases = {
      {"wrong content type", jpeg, "text/plain", 415, "unsupported_media_type"},
      {"no content type", jpeg, "", 415, "unsupported_media_type"},
      {"empty", "", "image/jpeg", 400, "empty_body"},
      {"garbage", std::string(5000, 'Z'), "image/jpeg", 422, "not_an_image"},
      {"truncated jpeg", jpeg.substr(0, jpeg.size() / 2), "image/jpeg", 422, "corrupt_image"},
      {"gif", std::string("GIF89a\x10\x00\x10\x00\x00\x00\x00;", 14), "application/octet-stream", 422,
       "unsupported_format"},
      {"oversized", std::string(2'000'001, '\xff'), "image/jpeg", 413, "body_too_large"},
  };
  for (const auto& k : cases) {
    auto r = c->Post("/v1/identify", k.body, k.type.c_str());
    ASSERT_TRUE(r) << k.name;
    EXPECT_EQ(r->status, k.status) << k.name << ": " << r->body;
    const json j = json::parse(r->body);
    EXPECT_EQ(j["error"], k.error) << k.name;
    EXPECT_FALSE(j["reason"].get<std::string>().empty()) << k.name;
  }

  // The decompression bomb is refused from its header: quickly, and without the memory.
  const auto t0 = std::chrono::steady_clock::now();
  auto bomb = c->Post("/v1/identify", BombPng(), "image/png");
  const double bomb_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(bomb);
  EXPECT_EQ(bomb->status, 422) << bomb->body;
  EXPECT_EQ(json::parse(bomb->body)["error"], "too_many_pixels");
  EXPECT_NE(json::parse(bomb->body)["reason"].get<std::string>().find("60000x60000"), std::string::npos) << bomb->body;
  EXPECT_LT(bomb_ms, 1000);

  // Framing attacks, on raw sockets: a body larger than the limit sent chunked (no length
  // for httplib to check), a gzip body (which httplib would inflate), a body shorter than its
  // declared length, one that stalls past the timeout, and a request line that is not HTTP.
  const int port = server.port();
  std::string text;
  std::string chunked = "POST /v1/identify HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 40; ++i) chunked += "10000\r\n" + std::string(0x10000, 'a') + "\r\n";
  chunked += "0\r\n\r\n";
  EXPECT_EQ(RawExchange(port, chunked, false, &text), 413) << text.substr(0, 300);
  const std::string gz = "POST /v1/identify HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Encoding: gzip\r\n"
                         "Content-Length: 4\r\n\r\nabcd";
  EXPECT_EQ(RawExchange(port, gz, false, &text), 415) << text.substr(0, 300);
  const std::string short_body = "POST /v1/identify HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                                 "Content-Length: 1000\r\n\r\n" + jpeg.substr(0, 10);
  // httplib writes nothing to a peer that has half-closed; the refusal shows in the metrics.
  const int short_status = RawExchange(port, short_body, true, &text);
  EXPECT_TRUE(short_status == 400 || short_status == 0) << text.substr(0, 300);
  const auto s0 = std::chrono::steady_clock::now();
  EXPECT_EQ(RawExchange(port, short_body, false, &text), 408) << text.substr(0, 300);
  const double stall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - s0).count();
  EXPECT_GT(stall_s, 1.5);  // --timeout-ms 2000
  EXPECT_LT(stall_s, 8.0);
  EXPECT_EQ(RawExchange(port, "NONSENSE\r\n\r\n", false, &text), 400) << text.substr(0, 300);
  auto missing = c->Get("/v2/identify");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);

  // Still healthy, still identifying, and the memory peak shows nothing was decoded big.
  auto health = c->Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  auto good = c->Post("/v1/identify", jpeg, "image/jpeg");
  ASSERT_TRUE(good);
  EXPECT_EQ(good->status, 200);
  EXPECT_EQ(json::parse(good->body)["label"], ref.label);
  EXPECT_LT(server.PeakRssKb(), 2L << 20) << "peak RSS in kB";

  const std::string m = Metrics(*c);
  for (const char* reason : {"too_many_pixels", "not_an_image", "corrupt_image", "empty_body", "unsupported_format",
                             "timeout", "incomplete_body"}) {
    EXPECT_EQ(MetricValue(m, std::string("fruitpipe_rejections_total{reason=\"") + reason + "\"}"), 1) << reason;
  }
  EXPECT_EQ(MetricValue(m, "fruitpipe_rejections_total{reason=\"unsupported_media_type\"}"), 3);
  EXPECT_EQ(MetricValue(m, "fruitpipe_rejections_total{reason=\"body_too_large\"}"), 2);
  EXPECT_EQ(MetricValue(m, "fruitpipe_http_requests_total{route=\"/v1/identify\",code=\"422\"}"), 4);
  EXPECT_EQ(MetricValue(m, "fruitpipe_http_requests_total{route=\"other\",code=\"404\"}"), 1);
  EXPECT_EQ(MetricValue(m, "fruitpipe_images_identified_total{result=\"known\"}"), 1);
  c.reset();  // an idle keep-alive connection would hold the exit for the keep-alive timeout
  EXPECT_EQ(server.Terminate(), 0) << server.Log();
}

TEST(ServeTest, BearerTokenGuardsIdentifyAndMetrics) {
  REQUIRE_MODEL();
  const Reference& ref = KnownImage();
  testing::TempDir dir;
  const fs::path token_file = dir.path() / "token";
  std::ofstream(token_file) << "k3y-Only.The_Service~Knows\n";
  ServerProcess server({"--token-file", token_file.string()});
  ASSERT_GT(server.port(), 0);
  auto c = server.Client();
  const std::string jpeg = ReadImage(ref.path);

  auto none = c->Post("/v1/identify", jpeg, "image/jpeg");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 401);
  EXPECT_EQ(json::parse(none->body)["error"], "unauthorized");
  EXPECT_EQ(none->get_header_value("WWW-Authenticate"), "Bearer realm=\"fruitpipe\"");
  auto wrong = c->Post("/v1/identify", {{"Authorization", "Bearer k3y-Only.The_Service~Know"}}, jpeg, "image/jpeg");
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 401);
  auto basic = c->Post("/v1/identify", {{"Authorization", "Basic azNOLQ=="}}, jpeg, "image/jpeg");
  ASSERT_TRUE(basic);
  EXPECT_EQ(basic->status, 401);
  const httplib::Headers auth = {{"Authorization", "Bearer k3y-Only.The_Service~Knows"}};
  auto right = c->Post("/v1/identify", auth, jpeg, "image/jpeg");
  ASSERT_TRUE(right);
  EXPECT_EQ(right->status, 200);
  EXPECT_EQ(json::parse(right->body)["label"], ref.label);

  auto health = c->Get("/healthz");  // load balancers probe without credentials
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  auto metrics_none = c->Get("/metrics");
  ASSERT_TRUE(metrics_none);
  EXPECT_EQ(metrics_none->status, 401);
  const std::string m = Metrics(*c, auth);
  EXPECT_EQ(MetricValue(m, "fruitpipe_rejections_total{reason=\"unauthorized\"}"), 4);
  EXPECT_EQ(server.Log().find("k3y-Only"), std::string::npos) << "the token must never be logged";
  c.reset();  // an idle keep-alive connection would hold the exit for the keep-alive timeout
  EXPECT_EQ(server.Terminate(), 0) << server.Log();
}

TEST(ServeTest, ConcurrentClientsAreAllAnswered) {
  REQUIRE_MODEL();
  const Reference& ref = KnownImage();
  ServerProcess server;
  ASSERT_GT(server.port(), 0);
  const std::string jpeg = ReadImage(ref.path);
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&] {
      auto c = server.Client();
      for (int i = 0; i < 3; ++i) {
        auto r = c->Post("/v1/identify", jpeg, "image/jpeg");
        if (r && r->status == 200 && json::parse(r->body)["label"] == ref.label) ++ok;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), 24);
  EXPECT_EQ(server.Terminate(), 0) << server.Log();
}

// One worker, a 1 s timeout and a burst of phone-sized photos (12 Mpixel: tens of ms each to
// decode on any machine): those that cannot get the worker in time are told to come back
// (503 + Retry-After) instead of queueing without bound.
TEST(ServeTest, OverloadGets503WithRetryAfterNotAnUnboundedQueue) {
  REQUIRE_MODEL();
  const Reference& ref = KnownImage();
  ServerProcess server({"--threads", "1", "--timeout-ms", "1000", "--max-body-bytes", "20000000",
                        "--max-connections-per-client", "64"});
  ASSERT_GT(server.port(), 0);
  cv::Mat big;
  cv::resize(cv::imread(ref.path.string(), cv::IMREAD_COLOR), big, cv::Size(4000, 3000), 0, 0, cv::INTER_CUBIC);
  std::vector<unsigned char> encoded;
  ASSERT_TRUE(cv::imencode(".jpg", big, encoded, {cv::IMWRITE_JPEG_QUALITY, 92}));
  const std::string jpeg(encoded.begin(), encoded.end());
  std::atomic<int> ok{0}, busy{0}, other{0};
  std::mutex mu;
  std::string others;
  std::vector<std::thread> clients;
  for (int t = 0; t < 32; ++t) {
    clients.emplace_back([&] {
      auto c = server.Client();
      auto r = c->Post("/v1/identify", jpeg, "image/jpeg");
      if (r && r->status == 200) {
        ++ok;
      } else if (r && r->status == 503 && r->get_header_value("Retry-After") == "1" &&
                 json::parse(r->body)["error"] == "busy") {
        ++busy;
      } else {
        ++other;
        std::lock_guard<std::mutex> lock(mu);
        others += r ? std::to_string(r->status) + " " + r->body + "\n" : "transport error " + httplib::to_string(r.error()) + "\n";
      }
    });
  }
  for (auto& t : clients) t.join();
  std::cout << ok.load() << " answered, " << busy.load() << " told to retry\n";
  EXPECT_GT(ok.load(), 0);
  EXPECT_GT(busy.load(), 0);
  EXPECT_EQ(other.load(), 0) << others;
  auto c = server.Client();
  const std::string m = Metrics(*c);
  EXPECT_EQ(MetricValue(m, "fruitpipe_rejections_total{reason=\"busy\"}"), busy.load());
  c.reset();  // an idle keep-alive connection would hold the exit for the keep-alive timeout
  EXPECT_EQ(server.Terminate(), 0) << server.Log();
}

// Slowloris: 64 connections that send one header line a second and never finish their head.
// They wait in the poller, not on connection threads (4 here), so a good request is answered
// at once; each is answered 408 and closed at the head deadline (3 s here).
TEST(ServeTest, SlowHeadersHoldNoThreadAndAreCutOffAtTheHeadDeadline) {
  REQUIRE_MODEL();
  const Reference& ref = KnownImage();
  ServerProcess server({"--connections", "4", "--head-timeout-ms", "3000", "--max-connections-per-client", "100"});
  ASSERT_GT(server.port(), 0);
  const std::string jpeg = ReadImage(ref.path);
  using Clock = std::chrono::steady_clock;
  constexpr int kSlow = 64;
  std::vector<int> fds(kSlow, -1);
  std::vector<Clock::time_point> connected(kSlow);
  std::vector<std::string> answers(kSlow);
  std::vector<double> cut_s(kSlow, -1);
  for (int i = 0; i < kSlow; ++i) {
    fds[i] = Connect(server.port());
    ASSERT_GE(fds[i], 0);
    connected[i] = Clock::now();
    const std::string line = "POST /v1/identify HTTP/1.1\r\n";
    ASSERT_EQ(send(fds[i], line.data(), line.size(), MSG_NOSIGNAL), static_cast<ssize_t>(line.size()));
  }
  std::thread slow([&] {
    const auto give_up = Clock::now() + std::chrono::seconds(12);
    auto next_line = Clock::now() + std::chrono::seconds(1);
    int open = kSlow;
    for (int sent = 0; open > 0 && Clock::now() < give_up;) {
      if (Clock::now() >= next_line) {
        const std::string line = "X-Slow-" + std::to_string(sent++) + ": 1\r\n";
        for (int i = 0; i < kSlow; ++i) {
          if (fds[i] >= 0) send(fds[i], line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        }
        next_line += std::chrono::seconds(1);
      }
      std::vector<pollfd> p;
      for (int i = 0; i < kSlow; ++i) p.push_back(pollfd{fds[i], POLLIN, 0});  // fd -1: ignored
      poll(p.data(), p.size(), 50);
      for (int i = 0; i < kSlow; ++i) {
        if (fds[i] < 0 || p[i].revents == 0) continue;
        char buf[4096];
        const ssize_t n = recv(fds[i], buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) {
          answers[i].append(buf, static_cast<std::size_t>(n));
          continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) continue;
        cut_s[i] = std::chrono::duration<double>(Clock::now() - connected[i]).count();
        close(fds[i]);
        fds[i] = -1;
        --open;
      }
    }
  });

  // A good request while all 64 are held open.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  auto c = server.Client();
  const auto t0 = Clock::now();
  auto good = c->Post("/v1/identify", jpeg, "image/jpeg");
  const double good_s = std::chrono::duration<double>(Clock::now() - t0).count();
  ASSERT_TRUE(good);
  EXPECT_EQ(good->status, 200) << good->body;
  EXPECT_EQ(json::parse(good->body)["label"], ref.label);
  EXPECT_LT(good_s, 2.0);
  auto health = c->Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  slow.join();

  double first = 1e9, last = 0;
  for (int i = 0; i < kSlow; ++i) {
    if (fds[i] >= 0) close(fds[i]);
    EXPECT_GT(cut_s[i], 0) << "slow client " << i << " still open after 12 s";
    EXPECT_EQ(answers[i].rfind("HTTP/1.1 408", 0), 0u) << answers[i];
    first = std::min(first, cut_s[i]);
    last = std::max(last, cut_s[i]);
  }
  EXPECT_GE(first, 2.9);
  EXPECT_LT(last, 4.5);
  std::cout << "good request answered in " << good_s * 1000 << " ms with " << kSlow
            << " slow clients open; slow clients cut off after " << first << " to " << last << " s\n";
  const std::string m = Metrics(*c);
  EXPECT_EQ(MetricValue(m, "fruitpipe_rejections_total{reason=\"head_timeout\"}"), kSlow);
  EXPECT_EQ(MetricValue(m, "fruitpipe_http_requests_total{route=\"/v1/identify\",code=\"408\"}"), kSlow);
  c.reset();
  EXPECT_EQ(server.Terminate(), 0) << server.Log();
}

// The route, the method and the declared length are checked on the head: the client sends
// only the head of a 100 MB body and gets the answer at once (a server waiting for the body
// would answer 408 after --timeout-ms 2000, or never).
TEST(ServeTest, LimitsAreCheckedBeforeAnyBodyIsRead) {
  REQUIRE_MODEL();
  ServerProcess server;
  ASSERT_GT(server.port(), 0);
  struct Case {
    const char* name;
    std::string head;
    int status;
    const char* error;
  };
  const std::string big = "Content-Type: image/jpeg\r\nContent-Length: 100000000\r\n";
  const std::vector<Case> cases = {
      {"unknown route", "POST /upload HTTP/1.1\r\nHost: x\r\n" + big + "\r\n", 404, "not_found"},
      {"unknown route, chunked", "PUT /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", 404, "not_found"},
      {"wrong method", "PUT /v1/identify HTTP/1.1\r\nHost: x\r\n" + big + "\r\n", 405, "method_not_allowed"},
      {"POST to a GET route", "POST /healthz HTTP/1.1\r\nHost: x\r\n" + big + "\r\n", 405, "method_not_allowed"},
      {"GET identify", "GET /v1/identify HTTP/1.1\r\nHost: x\r\n\r\n", 405, "method_not_allowed"},
      {"too large", "POST /v1/identify HTTP/1.1\r\nHost: x\r\n" + big + "\r\n", 413, "body_too_large"},
      {"too large, 100-continue", "POST /v1/identify HTTP/1.1\r\nHost: x\r\n" + big + "Expect: 100-continue\r\n\r\n",
       413, "body_too_large"},
      {"too large, 25 digits", "POST /v1/identify HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
       "Content-Length: 1000000000000000000000000\r\n\r\n", 413, "body_too_large"},
  };
  for (const auto& k : cases) {
    std::string text;
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(RawExchange(server.port(), k.head, false, &text, 5000), k.status) << k.name << ": " << text;
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_LT(ms, 1000) << k.name;
    const auto body = text.find("\r\n\r\n");
    ASSERT_NE(body, std::string::npos) << k.name << ": " << text;
    EXPECT_EQ(text.find("100 Continue"), std::string::npos) << k.name;
    EXPECT_EQ(json::parse(text.substr(body + 4))["error"], k.error) << k.name;
    const bool announced_body = k.head.find("Content-Length") != std::string::npos ||
                                k.head.find("Transfer-Encoding") != std::string::npos;
    if (announced_body) {
      EXPECT_NE(text.find("Connection: close"), std::string::npos) << k.name << ": " << text;
    }
    if (k.status == 405) {
      EXPECT_NE(text.find("Allow: "), std::string::npos) << k.name << ": " << text;
    }
  }
  auto c = server.Client();
  const std::string m = Metrics(*c);
  EXPECT_EQ(MetricValue(m, "fruitpipe_rejections_total{reason=\"method_not_allowed\"}"), 3);
  EXPECT_EQ(MetricValue(m, "fruitpipe_rejections_total{reason=\"body_too_large\"}"), 3);
  EXPECT_EQ(MetricValue(m, "fruitpipe_http_requests_total{route=\"other\",code=\"404\"}"), 2);
  c.reset();
  EXPECT_EQ(server.Terminate(), 0) << server.Log();
}

// Connections per client address are capped (3 here): one more is answered 503 with
// Retry-After and closed. A request whose head is complete while every connection thread is
// busy (1 here, held by a stalled body) is answered 503 at once instead of waiting in a queue.
TEST(ServeTest, ConnectionCapAndFullServerGet503WithRetryAfter) {
  REQUIRE_MODEL();
  ServerProcess server({"--max-connections-per-client", "3", "--connections", "1"});
  ASSERT_GT(server.port(), 0);
  const std::string get = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  std::vector<int> idle;
  for (int i = 0; i < 3; ++i) {
    idle.push_back(Connect(server.port()));
    ASSERT_GE(idle.back(), 0);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  std::string text;
  EXPECT_EQ(RawExchange(server.port(), get, false, &text, 5000), 503) << text;
  EXPECT_NE(text.find("Retry-After: 1"), std::string::npos) << text;
  EXPECT_NE(text.find("\"error\":\"too_many_connections\""), std::string::npos) << text;
  for (int fd : idle) close(fd);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(RawExchange(server.port(), get, false, &text, 5000), 200) << text;

  // The one connection thread reads a body that stalls (--timeout-ms 2000).
  const int stalled = Connect(server.port());
  ASSERT_GE(stalled, 0);
  const std::string head = "POST /v1/identify HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                           "Content-Length: 1000\r\n\r\n0123456789";
  ASSERT_EQ(send(stalled, head.data(), head.size(), MSG_NOSIGNAL), static_cast<ssize_t>(head.size()));
  // Until the poller has handed the stalled request to the thread (at once on an idle
  // machine, later on a loaded one), /healthz is still answered.
  int status = 0;
  double answer_s = 0;
  for (int attempt = 0; attempt < 50 && status != 503; ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const auto t0 = std::chrono::steady_clock::now();
    status = RawExchange(server.port(), get, false, &text, 5000);
    answer_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  EXPECT_EQ(status, 503) << text;
  EXPECT_LT(answer_s, 1.0);
  EXPECT_NE(text.find("Retry-After: 1"), std::string::npos) << text;
  EXPECT_NE(text.find("\"error\":\"busy\""), std::string::npos) << text;
  close(stalled);
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // the stalled read times out
  auto c = server.Client();
  const std::string m = Metrics(*c);
  EXPECT_EQ(MetricValue(m, "fruitpipe_rejections_total{reason=\"too_many_connections\"}"), 1);
  EXPECT_EQ(MetricValue(m, "fruitpipe_rejections_total{reason=\"busy\"}"), 1);
  EXPECT_EQ(MetricValue(m, "fruitpipe_http_requests_total{route=\"/healthz\",code=\"503\"}"), 1);
  EXPECT_EQ(MetricValue(m, "fruitpipe_http_requests_total{route=\"other\",code=\"503\"}"), 1);
  c.reset();
  EXPECT_EQ(server.Terminate(), 0) << server.Log();
}

TEST(ServeTest, SigtermFinishesTheRequestInFlightThenExitsZero) {
  REQUIRE_MODEL();
  const Reference& ref = KnownImage();
  ServerProcess server;
  ASSERT_GT(server.port(), 0);
  const std::string jpeg = ReadImage(ref.path);

  // A request in flight: headers and half the body sent, the rest after SIGTERM.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(server.port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const std::string head = "POST /v1/identify HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: " +
                           std::to_string(jpeg.size()) + "\r\n\r\n";
  const std::string first = head + jpeg.substr(0, jpeg.size() / 2);
  ASSERT_EQ(send(fd, first.data(), first.size(), MSG_NOSIGNAL), static_cast<ssize_t>(first.size()));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  kill(server.pid(), SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));

  // No new connections once stopping.
  auto late = server.Client();
  late->set_connection_timeout(2, 0);
  auto refused = late->Get("/healthz");
  EXPECT_FALSE(refused && refused->status == 200) << "a new connection was served after SIGTERM";

  const std::string rest = jpeg.substr(jpeg.size() / 2);
  ASSERT_EQ(send(fd, rest.data(), rest.size(), MSG_NOSIGNAL), static_cast<ssize_t>(rest.size()));
  std::string response;
  char buf[4096];
  timeval tv{20, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    response.append(buf, static_cast<std::size_t>(n));
  }
  close(fd);
  EXPECT_EQ(response.rfind("HTTP/1.1 200", 0), 0u) << response;
  EXPECT_NE(response.find("\"label\":\"" + ref.label + "\""), std::string::npos) << response;
  EXPECT_EQ(server.Wait(20), 0) << server.Log();
  EXPECT_NE(server.Log().find("SIGTERM received"), std::string::npos);
}

}  // namespace
}  // namespace fruitpipe
