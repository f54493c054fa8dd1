#include "fruitpipe/model/fetch.h"

#include <atomic>
#include <filesystem>
#include <chrono>
#include <fstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "fruitpipe/common/env_vars.h"
#include "fruitpipe/common/error.h"
#include "fruitpipe/common/hash.h"
#include "fruitpipe/common/testing.h"
#include "fruitpipe/model/model_card.h"

namespace fruitpipe::model {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// A real HTTP server on 127.0.0.1 serving a fake model, a redirect to it, and a 404.
class ModelServer {
 public:
  explicit ModelServer(std::string body) : body_(std::move(body)) {
    server_.Get("/models/tiny.onnx", [this](const httplib::Request&, httplib::Response& res) {
      ++hits_;
      res.set_content(body_, "application/octet-stream");
    });
    server_.Get("/latest", [](const httplib::Request&, httplib::Response& res) {
      res.set_redirect("/models/tiny.onnx");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~ModelServer() {
    server_.stop();
    thread_.join();
  }
  std::string Url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }
  int hits() const { return hits_; }

 private:
  std::string body_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::atomic<int> hits_{0};
};

std::vector<std::string> Listing(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

const std::string kBody = std::string(300000, 'x') + "model bytes";

TEST(FetchTest, DownloadsVerifiesAndSkipsWhenPresent) {
  ModelServer server(kBody);
  testing::TempDir dir;
  FetchRequest req;
  req.url = server.Url("/models/tiny.onnx");
  req.sha256 = Sha256Hex(kBody);
  req.out_dir = (dir.path() / "models").string();  // created on demand
  const FetchResult r = FetchModelFile(req);
  EXPECT_TRUE(r.downloaded);
  EXPECT_EQ(r.bytes, kBody.size());
  EXPECT_EQ(r.path, (dir.path() / "models" / "tiny.onnx").string());
  EXPECT_EQ(ReadLocalFile(r.path), kBody);
  EXPECT_EQ(Listing(dir.path() / "models"), std::vector<std::string>{"tiny.onnx"});

  const FetchResult again = FetchModelFile(req);
  EXPECT_FALSE(again.downloaded);
  EXPECT_EQ(server.hits(), 1);
}

TEST(FetchTest, FollowsRedirects) {
  ModelServer server(kBody);
  testing::TempDir dir;
  FetchRequest req;
  req.url = server.Url("/latest");
  req.sha256 = Sha256Hex(kBody);
  req.out_dir = dir.str();
  req.file_name = "m.onnx";
  EXPECT_EQ(ReadLocalFile(FetchModelFile(req).path), kBody);
}

TEST(FetchTest, ShaMismatchLeavesNothing) {
  ModelServer server(kBody);
  testing::TempDir dir;
  FetchRequest req;
  req.url = server.Url("/models/tiny.onnx");
  req.sha256 = Sha256Hex("something else");
  req.out_dir = dir.str();
  try {
    FetchModelFile(req);
    FAIL();
  } catch (const CorruptionError& e) {
    EXPECT_THAT(e.what(), HasSubstr("model download " + req.url + ": sha256 mismatch (expected " +
                                    req.sha256.substr(0, 12) + "..., got " + Sha256Hex(kBody).substr(0, 12)));
    EXPECT_THAT(e.what(), HasSubstr("file removed"));
  }
  EXPECT_TRUE(Listing(dir.path()).empty());
}

TEST(FetchTest, HttpErrorAndUnreachableServer) {
  testing::TempDir dir;
  FetchRequest req;
  req.sha256 = Sha256Hex(kBody);
  req.out_dir = dir.str();
  int port = 0;
  {
    ModelServer server(kBody);
    req.url = server.Url("/models/missing.onnx");
    try {
      FetchModelFile(req);
      FAIL();
    } catch (const IOError& e) {
      EXPECT_EQ(std::string(e.what()), "model download " + req.url + ": HTTP 404");
    }
    port = std::stoi(server.Url("").substr(std::string("http://127.0.0.1:").size()));
  }
  req.url = "http://127.0.0.1:" + std::to_string(port) + "/models/tiny.onnx";  // server gone
  EXPECT_THROW(FetchModelFile(req), IOError);
  EXPECT_TRUE(Listing(dir.path()).empty());
}

TEST(FetchTest, RejectsBadArguments) {
  FetchRequest req;
  req.out_dir = "/tmp";
  req.sha256 = Sha256Hex("");
  req.url = "file:///etc/passwd";
  EXPECT_THROW(FetchModelFile(req), InvalidArgumentError);
  req.url = "http://127.0.0.1:1/";
  EXPECT_THROW(FetchModelFile(req), InvalidArgumentError);  // no file name in the URL
  req.url = "http://127.0.0.1:1/m.onnx";
  req.sha256 = "123";
  EXPECT_THROW(FetchModelFile(req), InvalidArgumentError);
}

TEST(FetchTest, CardDrivenFetchWritesAUsableCard) {
  ModelServer server(kBody);
  testing::TempDir src, out;
  nlohmann::json card = {
      {"name", "tiny"},
      {"file", "weights/tiny-v1.onnx"},
      {"sha256", Sha256Hex(kBody)},
      {"url", server.Url("/models/tiny.onnx")},
      {"input", {{"name", "input"}, {"layout", "NCHW"}, {"width", 8}, {"height", 8}, {"color", "RGB"}, {"scale", 1}}},
      {"output", {{"name", "features"}, {"dim", 4}}}};
  const fs::path card_path = src.path() / "tiny.json";
  std::ofstream(card_path) << card.dump();

  FetchResult r;
  const std::string written = FetchModelForCard(card_path.string(), out.str(), "", &r);
  EXPECT_EQ(written, (out.path() / "tiny.json").string());
  EXPECT_EQ(r.path, (out.path() / "tiny-v1.onnx").string());
  const ModelCard loaded = LoadModelCard(written);
  EXPECT_EQ(loaded.file, r.path);
  EXPECT_NO_THROW(VerifyModelFile(loaded));

  card.erase("url");
  std::ofstream(card_path) << card.dump();
  EXPECT_THROW(FetchModelForCard(card_path.string(), out.str(), "", &r), InvalidArgumentError);
}

}  // namespace
}  // namespace fruitpipe::model
