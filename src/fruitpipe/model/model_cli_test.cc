// `fruitpipe model ...` through CLI11 exactly as the binary registers it (apps/cmd_model.cc),
// with this file standing in for apps/fruitpipe.cc's ExitCode().
#include <chrono>
#include <fstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include "commands.h"
#include "fruitpipe/common/env_vars.h"
#include "fruitpipe/common/error.h"
#include "fruitpipe/common/hash.h"
#include "fruitpipe/common/testing.h"

namespace fruitpipe::cli {

int& ExitCode() {
  static int code = kExitOk;
  return code;
}

namespace {

using ::testing::HasSubstr;

// Parses and runs `args` (without the program name); returns stdout. Exceptions propagate.
std::string RunCli(std::vector<std::string> args) {
  CLI::App app("test");
  app.require_subcommand(1);
  AddModelCommands(app);
  ExitCode() = -1;
  std::vector<const char*> argv = {"fruitpipe"};
  for (const auto& a : args) argv.push_back(a.c_str());
  ::testing::internal::CaptureStdout();
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (...) {
    ::testing::internal::GetCapturedStdout();
    throw;
  }
  return ::testing::internal::GetCapturedStdout();
}

struct CardFixture {
  testing::TempDir dir;
  std::string card;
  std::string model;
  std::string body = "model file contents";
  CardFixture() {
    model = (dir.path() / "m.onnx").string();
    card = (dir.path() / "m.json").string();
    std::ofstream(model) << body;
    std::ofstream(card) << R"({"name": "m", "file": "m.onnx", "sha256": ")" << Sha256Hex(body) << R"(",
      "input": {"name": "input", "layout": "NCHW", "width": 4, "height": 4, "color": "RGB", "scale": 1},
      "output": {"name": "features", "dim": 2}})";
  }
};

TEST(ModelCliTest, InfoPrintsCardAndStatus) {
  CardFixture f;
  std::string out = RunCli({"model", "info", f.card});
  EXPECT_EQ(ExitCode(), kExitOk);
  EXPECT_THAT(out, HasSubstr("name         m\n"));
  EXPECT_THAT(out, HasSubstr("status       ok (19 bytes, sha256 matches)"));
  EXPECT_THAT(out, HasSubstr("input        'input' NCHW 4x4 RGB, value = (pixel - [0, 0, 0]) * 1 / [1, 1, 1]"));
  EXPECT_THAT(out, HasSubstr("output       'features', 2 values per image"));

  std::ofstream(f.model) << "changed";
  out = RunCli({"model", "info", "--json", f.card});
  EXPECT_THAT(out, HasSubstr("\"status\": \"mismatch\""));
  std::filesystem::remove(f.model);
  EXPECT_THAT(RunCli({"model", "info", f.card}), HasSubstr("status       MISSING"));
}

TEST(ModelCliTest, VerifyFailsOnMismatchAndUsesEnvironment) {
  CardFixture f;
  ::setenv("FRUITPIPE_MODEL", f.card.c_str(), 1);
  EXPECT_THAT(RunCli({"model", "verify"}), HasSubstr(f.model + ": sha256 ok"));
  ::unsetenv("FRUITPIPE_MODEL");
  EXPECT_EQ(ExitCode(), kExitOk);
  std::ofstream(f.model) << "changed";
  EXPECT_THROW(RunCli({"model", "verify", f.card}), CorruptionError);
  EXPECT_THROW(RunCli({"model", "verify"}), InvalidArgumentError);  // no card anywhere
}

TEST(ModelCliTest, VerifyLoadRunsTheRealModel) {
  FRUITPIPE_REQUIRE_SHARED();
  const std::string out = RunCli({"model", "verify", "--load", "--backend", "opencv", testing::FeatureModelCard().string()});
  EXPECT_THAT(out, HasSubstr("loads with backend opencv, 224x224 input, 1280-d output"));
}

TEST(ModelCliTest, FetchWithCardAndWithUrl) {
  CardFixture f;
  httplib::Server server;
  server.Get("/m.onnx", [&](const httplib::Request&, httplib::Response& res) { res.set_content(f.body, "x"); });
  const int port = server.bind_to_any_port("127.0.0.1");
  std::thread t([&] { server.listen_after_bind(); });
  while (!server.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/m.onnx";
  testing::TempDir out;

  std::string printed = RunCli({"model", "fetch", url, "--card", f.card, "--out", out.str()});
  EXPECT_THAT(printed, HasSubstr("downloaded 19 bytes, sha256 ok"));
  EXPECT_THAT(printed, HasSubstr("card: " + (out.path() / "m.json").string()));
  EXPECT_THAT(RunCli({"model", "verify", (out.path() / "m.json").string()}), HasSubstr("sha256 ok"));

  printed = RunCli({"model", "fetch", url, "--sha256", Sha256Hex(f.body), "--out", (out.path() / "b").string()});
  EXPECT_THAT(printed, HasSubstr("b/m.onnx: downloaded 19 bytes"));
  EXPECT_THAT(RunCli({"model", "fetch", url, "--sha256", Sha256Hex(f.body), "--out", (out.path() / "b").string()}),
              HasSubstr("already present"));

  EXPECT_THROW(RunCli({"model", "fetch", url, "--sha256", Sha256Hex("x"), "--out", (out.path() / "c").string()}),
               CorruptionError);
  EXPECT_THROW(RunCli({"model", "fetch", url, "--out", out.str()}), InvalidArgumentError);  // no sha256
  EXPECT_THROW(RunCli({"model", "fetch", url, "--card", f.card, "--sha256", Sha256Hex("x"), "--out", out.str()}),
               InvalidArgumentError);
  EXPECT_THROW(RunCli({"model", "fetch", url}), CLI::RequiredError);  // --out
  server.stop();
  t.join();
}

TEST(ModelCliTest, HelpDescribesEachCommand) {
  for (const char* cmd : {"info", "verify", "fetch"}) {
    try {
      RunCli({"model", cmd, "--help"});
      FAIL();
    } catch (const CLI::CallForHelp&) {
    }
  }
  CLI::App app("test");
  AddModelCommands(app);
  const std::string help = app.get_subcommand("model")->get_subcommand("fetch")->help();
  EXPECT_THAT(help, HasSubstr("--sha256"));
  EXPECT_THAT(help, HasSubstr("renamed into place only if its sha256 matches"));
}

}  // namespace
}  // namespace fruitpipe::cli
