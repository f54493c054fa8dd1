// The app's routes of `fruitpipe serve` over real HTTP on 127.0.0.1: the page, the classes,
// contributions with consent, erasure requests carried out by `fruitpipe forget --pending`,
// every status code the routes answer, and no GPS or camera metadata reaching the store.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include <httplib.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "fruitpipe/common/testing.h"
#include "fruitpipe/privacy/test_photos.h"
#include "serve_harness.h"

namespace fruitpipe {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::RunCommand;
using testing::ShellQuote;
using namespace servetest;

constexpr char kUser[] = "shopper-4411@example.org";
constexpr char kToken[] = "app-token-0123456789";

// A phone photo of a dev Test fruit: Exif with the camera and GPS, XMP, a comment naming alice.
std::string PhonePhoto(const std::string& cls) {
  const cv::Mat fruit = cv::imread(TestImage(cls).string(), cv::IMREAD_COLOR);
  std::vector<unsigned char> jpg;
  cv::imencode(".jpg", fruit, jpg);
  return privacy::testphotos::PhoneJpeg(std::string(jpg.begin(), jpg.end()), 1);
}

// A served app: ledger, store, key and token in a temporary folder.
class AppServer {
 public:
  explicit AppServer(std::vector<std::string> extra = {}) {
    key_ = dir_.path() / "keys" / "subject.key";
    fs::create_directories(key_.parent_path());
    std::ofstream(key_) << "0123456789abcdef0123456789abcdef0123456789abcdef\n";
    ::chmod(key_.c_str(), 0600);
    std::ofstream(dir_.path() / "token") << kToken << "\n";
    std::vector<std::string> args = {"--ledger", ledger().string(), "--store", store().string(), "--subject-key-file",
                                     key_.string(), "--token-file", (dir_.path() / "token").string()};
    args.insert(args.end(), extra.begin(), extra.end());
    server_ = std::make_unique<ServerProcess>(args);
  }
  fs::path ledger() const { return dir_.path() / "ledger.db"; }
  fs::path store() const { return dir_.path() / "store"; }
  fs::path audit() const { return dir_.path() / "audit.jsonl"; }
  fs::path key() const { return key_; }
  const fs::path& dir() const { return dir_.path(); }
  ServerProcess& server() { return *server_; }

  std::vector<fs::path> Stored() const {
    std::vector<fs::path> files;
    if (!fs::exists(store())) return files;
    for (const auto& e : fs::recursive_directory_iterator(store())) {
      if (e.is_regular_file()) files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    return files;
  }
  int AuditLines() const {
    if (!fs::exists(audit())) return 0;
    const std::string t = ReadLocalFile(audit().string());
    return static_cast<int>(std::count(t.begin(), t.end(), '\n'));
  }

 private:
  testing::TempDir dir_;
  fs::path key_;
  std::unique_ptr<ServerProcess> server_;
};

httplib::Headers As(const std::string& user) {
  return {{"Authorization", std::string("Bearer ") + kToken}, {"X-Subject-Id", user}};
}

json Body(const httplib::Result& r) { return r ? json::parse(r->body, nullptr, false) : json(); }

TEST(AppRoutesTest, WithoutLedgerTheAppRoutesAre404AndThePageAndClassesWork) {
  REQUIRE_MODEL();
  ServerProcess server;
  ASSERT_GT(server.port(), 0);
  auto c = server.Client();
  for (const auto& [method, path] : std::vector<std::pair<std::string, std::string>>{
           {"POST", "/v1/contributions?label=Banana&purpose=training"},
           {"GET", "/v1/consent?purpose=training"},
           {"POST", "/v1/consent"},
           {"POST", "/v1/erasure-requests"}}) {
    auto r = method == "GET" ? c->Get(path) : c->Post(path, "{}", "application/json");
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 404) << path;
    EXPECT_NE(r->body.find("contributions are not enabled"), std::string::npos) << r->body;
  }
  auto classes = c->Get("/v1/classes");
  ASSERT_TRUE(classes);
  EXPECT_EQ(classes->status, 200);
  const json j = Body(classes);
  EXPECT_FALSE(j["contributions"].get<bool>());
  ASSERT_GT(j["classes"].size(), 10u);
  bool banana = false;
  for (const auto& cl : j["classes"]) banana = banana || (cl["label"] == "Banana" && cl["species"] == "Banana");
  EXPECT_TRUE(banana) << j.dump();

  auto page = c->Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->get_header_value("Content-Type"), "text/html; charset=utf-8");
  const std::string csp = page->get_header_value("Content-Security-Policy");
  EXPECT_EQ(csp.rfind("default-src 'none'; script-src 'sha256-", 0), 0u) << csp;
  EXPECT_EQ(csp.find("unsafe"), std::string::npos) << csp;
  EXPECT_NE(page->body.find("capture=\"environment\""), std::string::npos);
  for (const char* external : {"http://", "https://", "src=\"//"}) {
    EXPECT_EQ(page->body.find(external), std::string::npos) << external;
  }
  // Identify works as before.
  auto id = c->Post("/v1/identify", ReadImage(TestImage("Banana")), "image/jpeg");
  ASSERT_TRUE(id);
  EXPECT_EQ(id->status, 200);
  EXPECT_EQ(server.Terminate(), 0) << server.Log();
}

TEST(AppRoutesTest, ContributionsNeedConsentAndStoreStrippedPhotosEveryStatusInWords) {
  REQUIRE_MODEL();
  AppServer app({"--contributions-burst", "100"});
  ServerProcess& server = app.server();
  ASSERT_GT(server.port(), 0);
  auto c = server.Client();
  const std::string photo = PhonePhoto("Banana");
  const std::string path = "/v1/contributions?label=Banana&purpose=training";
  int refused = 0;  // contributions that reached the app: each leaves one audit line

  auto expect = [&](const httplib::Result& r, int status, const std::string& error, const char* what) {
    ASSERT_TRUE(r) << what;
    EXPECT_EQ(r->status, status) << what << ": " << r->body;
    const json j = Body(r);
    EXPECT_EQ(j.value("error", ""), error) << what << ": " << r->body;
    if (status >= 400) {
      EXPECT_FALSE(j.value("reason", "").empty()) << what;
    }
  };

  expect(c->Post(path, {{"X-Subject-Id", kUser}}, photo, "image/jpeg"), 401, "unauthorized", "no token");
  expect(c->Post(path, {{"Authorization", std::string("Bearer ") + kToken}}, photo, "image/jpeg"), 400,
         "missing_subject", "no X-Subject-Id");
  ++refused;
  expect(c->Post("/v1/contributions?label=Durian&purpose=training", As(kUser), photo, "image/jpeg"), 422, "bad_label",
         "a label the model does not know");
  ++refused;
  expect(c->Post("/v1/contributions?label=Banana&purpose=Bad%20Purpose", As(kUser), photo, "image/jpeg"), 400,
         "bad_purpose", "a malformed purpose");
  ++refused;
  expect(c->Post(path, As(kUser), photo, "image/jpeg"), 403, "no_consent", "no consent yet");
  ++refused;
  EXPECT_TRUE(app.Stored().empty());
  expect(c->Get("/v1/contributions", As(kUser)), 405, "method_not_allowed", "GET contributions");

  // Consent: absent, granted, shown.
  expect(c->Get("/v1/consent?purpose=training", As(kUser)), 200, "", "consent before");
  EXPECT_FALSE(Body(c->Get("/v1/consent?purpose=training", As(kUser)))["consent"].get<bool>());
  expect(c->Get("/v1/consent", As(kUser)), 400, "bad_purpose", "consent without purpose");
  expect(c->Post("/v1/consent", As(kUser), "{not json", "application/json"), 400, "bad_request", "bad JSON");
  expect(c->Post("/v1/consent", As(kUser), std::string(20000, ' '), "application/json"), 413, "body_too_large",
         "a huge consent body");
  auto granted = c->Post("/v1/consent", As(kUser), R"({"purpose":"training","action":"grant"})", "application/json");
  expect(granted, 200, "", "grant");
  EXPECT_TRUE(Body(granted)["changed"].get<bool>());
  EXPECT_TRUE(Body(c->Get("/v1/consent?purpose=training", As(kUser)))["consent"].get<bool>());

  // Bodies the route refuses: wrong type, over the limit, not an image.
  expect(c->Post(path, As(kUser), photo, "text/plain"), 415, "unsupported_media_type", "text/plain");
  ++refused;
  // (Refused on its declared length before routing: it never reaches the app, no audit line.)
  expect(c->Post(path, As(kUser), std::string(2'000'001, 'x'), "image/jpeg"), 413, "body_too_large", "too large");
  expect(c->Post(path, As(kUser), "\xFF\xD8\xFF garbage, not a JPEG", "image/jpeg"), 422, "unusable_image",
         "unreadable");
  ++refused;
  expect(c->Post(path, As(kUser), "", "image/jpeg"), 400, "empty_body", "empty");
  ++refused;
  EXPECT_TRUE(app.Stored().empty());

  // Stored: the JPEG without its Exif (camera, GPS), XMP, comment; a PNG without its chunks.
  auto stored = c->Post(path, As(kUser), photo, "image/jpeg");
  expect(stored, 201, "", "a consented JPEG");
  const std::string key = Body(stored).value("key", "");
  EXPECT_EQ(key.rfind("Banana/contrib-", 0), 0u) << key;
  auto png = c->Post("/v1/contributions?label=Kiwi&purpose=training", As(kUser),
                     privacy::testphotos::PhonePng(48, 32, 1), "image/png");
  expect(png, 201, "", "a consented PNG");
  const auto files = app.Stored();
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(fs::relative(files[0], app.store()).string(), key);
  for (const auto& f : files) {
    const std::string bytes = ReadLocalFile(f.string());
    for (const char* gone : {"FruitPhone", "Exif", "GPS", "Paris", "alice", "eXIf", "tEXt"}) {
      EXPECT_EQ(bytes.find(gone), std::string::npos) << gone << " reached the store in " << f;
    }
  }

  // Withdrawn: the next contribution is refused, nothing more stored.
  expect(c->Post("/v1/consent", As(kUser), R"({"purpose":"training","action":"withdraw"})", "application/json"), 200,
         "", "withdraw");
  expect(c->Post(path, As(kUser), photo, "image/jpeg"), 403, "no_consent", "after withdrawal");
  ++refused;
  EXPECT_EQ(app.Stored().size(), 2u);

  // The audit log: a line per contribution outcome, per consent change; a valid chain.
  const int consent_changes = 2;
  EXPECT_EQ(app.AuditLines(), refused + 2 + consent_changes);
  const auto verify = RunCommand(ShellQuote(testing::FruitpipeBinary().string()) + " audit verify " +
                                 ShellQuote(app.audit().string()) + " 2>&1");
  EXPECT_EQ(verify.exit_code, 0) << verify.output;

  // The raw user id is nowhere: not in the log, the ledger, the audit log or the store.
  c.reset();
  EXPECT_EQ(server.Terminate(), 0) << server.Log();
  const std::string log = server.Log();
  EXPECT_NE(log.find("POST /v1/contributions 201"), std::string::npos) << log;
  for (const fs::path& f : std::vector<fs::path>{app.ledger(), app.audit(), files[0], files[1]}) {
    EXPECT_EQ(ReadLocalFile(f.string()).find(kUser), std::string::npos) << f;
  }
  EXPECT_EQ(log.find(kUser), std::string::npos) << log;
  EXPECT_EQ(log.find("label=Banana"), std::string::npos) << "query strings are not logged: " << log;
}

TEST(AppRoutesTest, JsonRoutesNeedALengthAndContributionsAreRateLimitedPerClient) {
  REQUIRE_MODEL();
  AppServer app({"--contributions-burst", "2", "--contributions-per-minute", "1"});
  ServerProcess& server = app.server();
  ASSERT_GT(server.port(), 0);
  std::string text;
  const std::string chunked = "POST /v1/consent HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + std::string(kToken) +
                              "\r\nX-Subject-Id: u\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n";
  EXPECT_EQ(RawExchange(server.port(), chunked, false, &text, 5000), 411) << text;

  auto c = server.Client();
  const std::string path = "/v1/contributions?label=Banana&purpose=training";
  for (int i = 0; i < 2; ++i) EXPECT_EQ(c->Post(path, As(kUser), "x", "image/jpeg")->status, 403);  // no consent
  auto limited = c->Post(path, As(kUser), "x", "image/jpeg");
  ASSERT_TRUE(limited);
  EXPECT_EQ(limited->status, 429) << limited->body;
  EXPECT_EQ(Body(limited)["error"], "rate_limited");
  const int retry = std::stoi(limited->get_header_value("Retry-After"));
  EXPECT_GE(retry, 1);
  EXPECT_LE(retry, 60);
  // Other routes are not limited.
  EXPECT_EQ(c->Get("/v1/consent?purpose=training", As(kUser))->status, 200);
  c.reset();
  const std::string metrics = [&] {
    auto m = server.Client();
    return Metrics(*m, {{"Authorization", std::string("Bearer ") + kToken}});
  }();
  EXPECT_EQ(MetricValue(metrics, "fruitpipe_rejections_total{reason=\"rate_limited\"}"), 1);
  EXPECT_EQ(MetricValue(metrics, "fruitpipe_http_requests_total{route=\"/v1/contributions\",code=\"429\"}"), 1);
  EXPECT_EQ(server.Terminate(), 0) << server.Log();
}

TEST(AppRoutesTest, EraseMyDataIsPendingUntilForgetPendingCarriesItOut) {
  REQUIRE_MODEL();
  AppServer app;
  ServerProcess& server = app.server();
  ASSERT_GT(server.port(), 0);
  auto c = server.Client();
  ASSERT_EQ(c->Post("/v1/consent", As(kUser), R"({"purpose":"training","action":"grant"})", "application/json")->status,
            200);
  for (const char* cls : {"Banana", "Kiwi"}) {
    auto r = c->Post(std::string("/v1/contributions?label=") + cls + "&purpose=training", As(kUser), PhonePhoto(cls),
                     "image/jpeg");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 201) << r->body;
  }
  // Another person's photo stays.
  ASSERT_EQ(c->Post("/v1/consent", As("someone-else"), R"({"purpose":"training","action":"grant"})",
                    "application/json")->status, 200);
  ASSERT_EQ(c->Post("/v1/contributions?label=Banana&purpose=training", As("someone-else"), PhonePhoto("Banana"),
                    "image/jpeg")->status, 201);
  // The contributions become a dataset the way the batch job makes one.
  const std::string bin = ShellQuote(testing::FruitpipeBinary().string());
  const fs::path out = app.dir() / "out";
  auto run = RunCommand(bin + " run " + ShellQuote(app.store().string()) + " " + ShellQuote(out.string()) +
                        " --consent-ledger " + ShellQuote(app.ledger().string()) + " --quiet 2>&1");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  auto before = RunCommand(bin + " inspect " + ShellQuote((out / "Results").string()) + " --rows 0 2>&1");
  EXPECT_NE(before.output.find("total rows: 3"), std::string::npos) << before.output;

  auto requested = c->Post("/v1/erasure-requests", As(kUser), "", "application/json");
  ASSERT_TRUE(requested);
  EXPECT_EQ(requested->status, 202) << requested->body;
  EXPECT_EQ(Body(requested)["status"], "pending");
  EXPECT_TRUE(Body(requested)["new"].get<bool>());
  EXPECT_FALSE(Body(c->Post("/v1/erasure-requests", As(kUser), "", "application/json"))["new"].get<bool>());
  EXPECT_EQ(c->Post("/v1/erasure-requests", {{"Authorization", std::string("Bearer ") + kToken}}, "",
                    "application/json")->status, 400);
  EXPECT_EQ(app.Stored().size(), 3u);  // erasure is the batch job's

  c.reset();
  EXPECT_EQ(server.Terminate(), 0) << server.Log();
  auto forget = RunCommand(bin + " forget --pending --ledger " + ShellQuote(app.ledger().string()) + " --dataset " +
                           ShellQuote(out.string()) + " --store " + ShellQuote(app.store().string()) + " 2>&1");
  ASSERT_EQ(forget.exit_code, 0) << forget.output;
  const auto left = app.Stored();
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].parent_path().filename(), "Banana");
  auto again = RunCommand(bin + " forget --pending --ledger " + ShellQuote(app.ledger().string()) + " --dataset " +
                          ShellQuote(out.string()) + " --store " + ShellQuote(app.store().string()) + " 2>&1");
  EXPECT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("no pending erasure request"), std::string::npos) << again.output;
  // The dataset keeps the other person's row only.
  auto rows = RunCommand(bin + " inspect " + ShellQuote((out / "Results").string()) + " --rows 0 2>&1");
  EXPECT_EQ(rows.exit_code, 0) << rows.output;
  EXPECT_NE(rows.output.find("total rows: 1"), std::string::npos) << rows.output;
}

}  // namespace
}  // namespace fruitpipe
