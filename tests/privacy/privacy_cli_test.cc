// The privacy commands end to end, through the fruitpipe binary: consent, ingest (metadata
// stripped), a dataset built from the store (synthetic, and with the real model), forget,
// purge and the audit log, checked with DuckDB and by grepping every byte for raw user ids.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "fruitpipe/common/env_vars.h"
#include "fruitpipe/common/hash.h"
#include "fruitpipe/common/testing.h"
#include "fruitpipe/image/decode.h"
#include "fruitpipe/image/test_images.h"
#include "fruitpipe/dataset/plan.h"
#include "fruitpipe/privacy/consent_ledger.h"
#include "fruitpipe/privacy/test_dataset.h"
#include "fruitpipe/privacy/test_photos.h"
#include "fruitpipe/common/time.h"
#include "fruitpipe/storage/s3/s3_storage.h"
#include "fruitpipe/storage/s3/test_util.h"

namespace fruitpipe::privacy {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::RunCommand;
using testing::ShellQuote;

const std::string kKey = "4f1c2a9d8e7b6a5f4e3d2c1b0a99887766554433221100ffeeddccbbaa998877";
const std::string kAliceId = "alice@example.org";
const std::string kBobId = "bob@example.org";

void WriteFile(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << bytes;
}

// A workspace: inputs (the photos as users send them) apart from everything fruitpipe writes.
class Workspace {
 public:
  Workspace() {
    WriteFile(key(), kKey + "\n");
    fs::permissions(key(), fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace);
  }
  fs::path inputs() const { return dir_.path() / "inputs"; }
  fs::path data() const { return dir_.path() / "data"; }  // store, dataset, ledger, audit log
  fs::path store() const { return data() / "store"; }
  fs::path out() const { return data() / "out"; }
  fs::path ledger() const { return data() / "ledger" / "consent.sqlite"; }
  fs::path audit() const { return data() / "ledger" / "audit.jsonl"; }
  fs::path key() const { return dir_.path() / "secrets" / "subject.key"; }

  testing::CommandResult Fp(const std::string& args) const {
    return RunCommand(ShellQuote(testing::FruitpipeBinary().string()) + " " + args);
  }
  // The options every privacy command here shares.
  std::string Common() const {
    return "--subject-key-file " + ShellQuote(key().string()) + " --ledger " + ShellQuote(ledger().string());
  }

 private:
  testing::TempDir dir_;
};

std::string Sid(const std::string& user) { return HmacSha256Hex(kKey, user); }

std::vector<std::string> StoreKeys(const fs::path& store) {
  std::vector<std::string> keys;
  if (!fs::exists(store)) return keys;
  for (const auto& e : fs::recursive_directory_iterator(store)) {
    if (e.is_regular_file()) keys.push_back(fs::relative(e.path(), store).string());
  }
  std::sort(keys.begin(), keys.end());
  return keys;
}

// Every file under `root` holding `needle`, byte for byte (SQLite files included).
std::vector<std::string> FilesContaining(const fs::path& root, const std::string& needle) {
  std::vector<std::string> hits;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (!e.is_regular_file()) continue;
    if (ReadLocalFile(e.path().string()).find(needle) != std::string::npos) hits.push_back(e.path().string());
  }
  return hits;
}

json DuckDb(const std::string& sql) {
  const auto script = testing::SourceDir() / "tests/privacy/duckdb_query.mjs";
  const auto r = RunCommand("node " + ShellQuote(script.string()) + " " + ShellQuote(sql));
  EXPECT_EQ(r.exit_code, 0) << r.output.substr(0, 2000);
  return json::parse(r.output);
}

int DuckDbCount(const fs::path& dir, const std::string& where) {
  return DuckDb("SELECT count(*)::INTEGER AS n FROM read_parquet('" + dir.string() + "/*.parquet') WHERE " + where)[0]["n"];
}

json OtherRows(const fs::path& out, const std::string& subject) {
  return DuckDb("SELECT path, label, image_sha256, width, height, subject_id, md5(features::VARCHAR) AS f FROM read_parquet('" +
                (out / "Results").string() + "/*.parquet') WHERE subject_id IS DISTINCT FROM '" + subject +
                "' ORDER BY path");
}

int Lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

TEST(PrivacyCliTest, ConsentIngestForgetPurgeAndAuditWithoutTheModel) {
  FRUITPIPE_REQUIRE_NODE_TOOLS();  // DuckDB
  Workspace ws;
  const std::string plain = image::testimg::Encode(testphotos::TestPicture(64, 48), ".jpg");
  const std::string phone_jpg = testphotos::PhoneJpeg(plain, 6);
  WriteFile(ws.inputs() / "phone.jpg", phone_jpg);
  WriteFile(ws.inputs() / "phone.png", testphotos::PhonePng(20, 10, 1));
  WriteFile(ws.inputs() / "bob.jpg", image::testimg::Encode(testphotos::TestPicture(32, 32), ".jpg"));
  WriteFile(ws.inputs() / "notes.txt", "not an image");
  const std::string in = ShellQuote(ws.inputs().string()) + "/";
  const std::string store = " --store " + ShellQuote(ws.store().string());

  // No consent yet: refused, one line, nothing stored (the ledger must exist for ingest).
  ASSERT_EQ(ws.Fp("consent grant --subject carol --purpose research " + ws.Common()).exit_code, 0);
  auto r = ws.Fp("ingest --subject " + kAliceId + " --consent training --label Apple " + in + "phone.jpg" + store + " " + ws.Common());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_EQ(Lines(r.output), 1) << r.output;
  EXPECT_NE(r.output.find("no active consent"), std::string::npos) << r.output;
  EXPECT_TRUE(StoreKeys(ws.store()).empty());

  for (const auto& user : {kAliceId, kBobId}) {
    r = ws.Fp("consent grant --subject " + user + " --purpose training " + ws.Common());
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  r = ws.Fp("ingest --subject " + kAliceId + " --consent training --label Apple " + in + "phone.jpg " + in + "phone.png" +
            store + " " + ws.Common());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = ws.Fp("ingest --subject " + kBobId + " --consent training --label Kiwi " + in + "bob.jpg" + store + " " + ws.Common());
  ASSERT_EQ(r.exit_code, 0) << r.output;

  // Not an image, a bad label: refused with one line, nothing stored.
  r = ws.Fp("ingest --subject " + kBobId + " --consent training --label Kiwi " + in + "notes.txt" + store + " " + ws.Common());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(Lines(r.output), 1) << r.output;
  r = ws.Fp("ingest --subject " + kBobId + " --consent training --label _x " + in + "bob.jpg" + store + " " + ws.Common());
  EXPECT_NE(r.exit_code, 0);

  const auto keys = StoreKeys(ws.store());
  ASSERT_EQ(keys.size(), 3u);
  const std::string alice = Sid(kAliceId), bob = Sid(kBobId);
  for (const auto& k : keys) {
    const auto subject = dataset::SubjectFromKey(k);
    ASSERT_TRUE(subject.has_value()) << k;
    EXPECT_TRUE(*subject == alice || *subject == bob) << k;
    const std::string bytes = ReadLocalFile((ws.store() / k).string());
    for (const char* secret : {"FruitPhone", "alice", "Paris", "kitchen", "TRAILER"}) {
      EXPECT_EQ(bytes.find(secret), std::string::npos) << secret << " in " << k;
    }
    EXPECT_EQ(bytes.find(testphotos::Le32(2952) + testphotos::Le32(100)), std::string::npos) << "GPS in " << k;
    if (k.ends_with(".jpg") && *subject == alice) {
      image::HeaderInfo info;
      std::string why;
      ASSERT_TRUE(image::ReadHeader(bytes, &info, &why)) << why;
      EXPECT_EQ(info.orientation, 6);  // kept, so the photo still decodes upright
      const auto a = image::DecodeImage(bytes), b = image::DecodeImage(phone_jpg);
      ASSERT_TRUE(a.ok && b.ok);
      EXPECT_EQ(cv::norm(a.image.rgb, b.image.rgb, cv::NORM_INF), 0.0);
    }
  }

  // Catalogue images beside the contributions, and a dataset of the store in the run's layout.
  WriteFile(ws.store() / "Apple" / "1_100.jpg", image::testimg::Encode(testphotos::TestPicture(16, 16), ".jpg"));
  WriteFile(ws.store() / "Kiwi" / "2_100.jpg", image::testimg::Encode(testphotos::TestPicture(24, 16), ".jpg"));
  auto store_fs = storage::OpenStorage(ws.store().string());
  testdata::DatasetSpec spec;
  spec.source = store_fs->Uri("");
  spec.shard_size = 2;
  spec.pca_k = 2;
  for (const auto& img : dataset::ListSource(*store_fs, nullptr)) spec.photos.push_back({img.key, img.label, img.subject_id, ""});
  auto out = storage::OpenStorage(ws.out().string());
  testdata::BuildDataset(*out, spec);
  ASSERT_EQ(DuckDbCount(ws.out() / "Results", "subject_id = '" + alice + "'"), 2);
  const json others = OtherRows(ws.out(), alice);

  r = ws.Fp("forget --subject " + kAliceId + " --dataset " + ShellQuote(ws.out().string()) + store + " " + ws.Common());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const auto& k : StoreKeys(ws.store())) EXPECT_EQ(k.find(alice), std::string::npos) << k;
  for (const char* dir : {"Results", "Results_PCA"}) {
    EXPECT_EQ(DuckDbCount(ws.out() / dir, "subject_id = '" + alice + "' OR path LIKE '%" + alice + "%'"), 0) << dir;
  }
  EXPECT_EQ(OtherRows(ws.out(), alice), others);
  EXPECT_TRUE(FilesContaining(ws.out(), alice).empty());
  r = ws.Fp("consent show --subject " + kAliceId + " " + ws.Common());
  EXPECT_NE(r.output.find("withdrawn"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("0 stored, 2 erased"), std::string::npos) << r.output;

  // Bob withdraws: a run with the consent filter leaves his photos out.
  ASSERT_EQ(ws.Fp("consent withdraw --subject " + kBobId + " --purpose training " + ws.Common()).exit_code, 0);
  auto filter = MakeConsentFilter(ws.ledger().string(), "training");
  for (const auto& img : dataset::ListSource(*store_fs, nullptr)) {
    EXPECT_EQ(filter(img).has_value(), img.subject_id == bob) << img.key;
  }

  // Retention: Bob's photo was ingested 40 days ago (as the ledger now says); purge at 30 days.
  {
    auto ledger = ConsentLedger::Open(ws.ledger().string(), ConsentLedger::Mode::kExisting);
    for (const auto& c : ledger->Contributions(bob)) {
      ledger->RecordContribution({bob, c.store, c.key, c.purpose, WallEpochSeconds() - 40 * 86400, std::nullopt});
    }
  }
  r = ws.Fp("purge --older-than 30" + store + " --dataset " + ShellQuote(ws.out().string()) + " --ledger " +
            ShellQuote(ws.ledger().string()) + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(json::parse(r.output)["photos_deleted"], 1) << r.output;
  EXPECT_EQ(StoreKeys(ws.store()), (std::vector<std::string>{"Apple/1_100.jpg", "Kiwi/2_100.jpg"}));
  EXPECT_EQ(DuckDbCount(ws.out() / "Results", "subject_id IS NOT NULL"), 0);
  EXPECT_EQ(DuckDbCount(ws.out() / "Results", "TRUE"), 2);

  // The raw ids are nowhere: not in the store, the dataset, the ledger or the audit log.
  for (const auto& user : {kAliceId, kBobId, std::string("carol")}) {
    EXPECT_TRUE(FilesContaining(ws.data(), user).empty()) << user;
  }

  // The audit log: intact, one line per action, and tampering is caught at the right line.
  r = ws.Fp("audit verify " + ShellQuote(ws.audit().string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::vector<std::string> lines;
  {
    std::ifstream f(ws.audit());
    for (std::string l; std::getline(f, l);) lines.push_back(l);
  }
  std::vector<std::string> actions;
  for (const auto& l : lines) actions.push_back(json::parse(l)["action"]);
  EXPECT_EQ(actions, (std::vector<std::string>{"consent.grant", "consent.grant", "consent.grant", "ingest", "ingest",
                                               "forget", "consent.withdraw", "purge", "purge.summary"}));
  const fs::path edited = ws.data() / "edited.jsonl";
  std::string text = ReadLocalFile(ws.audit().string());
  const auto at = text.find("\"photos\":2");
  ASSERT_NE(at, std::string::npos);
  WriteFile(edited, text.replace(at, 10, "\"photos\":1"));
  r = ws.Fp("audit verify " + ShellQuote(edited.string()));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("line 4"), std::string::npos) << r.output;
  std::string without;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (i != 5) without += lines[i] + "\n";
  }
  WriteFile(edited, without);
  r = ws.Fp("audit verify " + ShellQuote(edited.string()));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("line 6"), std::string::npos) << r.output;
}

TEST(PrivacyCliTest, TheKeyMustBeGivenAndKeptApartFromTheData) {
  Workspace ws;
  ::unsetenv("FRUITPIPE_SUBJECT_KEY");
  auto r = ws.Fp("consent grant --subject " + kAliceId + " --purpose training --ledger " + ShellQuote(ws.ledger().string()));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("--subject-key-file"), std::string::npos) << r.output;
  const fs::path inside = ws.store() / "subject.key";
  WriteFile(inside, kKey);
  fs::permissions(inside, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace);
  r = ws.Fp("forget --subject " + kAliceId + " --store " + ShellQuote(ws.store().string()) + " --subject-key-file " +
            ShellQuote(inside.string()) + " --audit-log " + ShellQuote(ws.audit().string()));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("must not be stored with the data"), std::string::npos) << r.output;
}

// The app's "delete my data": a request now, the erasure in the next batch job.
TEST(PrivacyCliTest, ErasureRequestsAreCarriedOutByForgetPending) {
  Workspace ws;
  WriteFile(ws.inputs() / "a.jpg", image::testimg::Encode(testphotos::TestPicture(32, 32), ".jpg"));
  const std::string store = " --store " + ShellQuote(ws.store().string());
  for (const auto& user : {kAliceId, kBobId}) {
    ASSERT_EQ(ws.Fp("consent grant --subject " + user + " --purpose training " + ws.Common()).exit_code, 0);
    ASSERT_EQ(ws.Fp("ingest --subject " + user + " --consent training --label Apple " +
                    ShellQuote((ws.inputs() / "a.jpg").string()) + store + " " + ws.Common()).exit_code, 0);
  }
  ASSERT_EQ(StoreKeys(ws.store()).size(), 2u);
  auto r = ws.Fp("forget --pending" + store + " " + ws.Common());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("no pending erasure request"), std::string::npos) << r.output;
  r = ws.Fp("forget --request --subject " + kAliceId + " " + ws.Common());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("erasure requested"), std::string::npos) << r.output;
  EXPECT_EQ(StoreKeys(ws.store()).size(), 2u);  // nothing erased yet
  r = ws.Fp("forget --pending --subject " + kBobId + store + " " + ws.Common());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  r = ws.Fp("forget --pending" + store + " " + ws.Common() + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(json::parse(r.output)["photos_deleted"], 1);
  const auto left = StoreKeys(ws.store());
  ASSERT_EQ(left.size(), 1u);
  EXPECT_NE(left.front().find(Sid(kBobId)), std::string::npos);
  r = ws.Fp("forget --pending" + store + " " + ws.Common());
  EXPECT_NE(r.output.find("no pending erasure request"), std::string::npos) << r.output;  // marked done
  EXPECT_NE(ReadLocalFile(ws.audit().string()).find("erasure.request"), std::string::npos);
}

TEST(PrivacyCliTest, TheUserIdCanComeFromStandardInputOrAFile) {
  Workspace ws;
  // The safe forms keep the raw id out of ps and shell history; all three name one subject.
  auto r = RunCommand("printf '%s\\n' " + ShellQuote(kAliceId) + " | " + ShellQuote(testing::FruitpipeBinary().string()) +
                      " consent grant --subject - --purpose training " + ws.Common());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const fs::path id_file = ws.data() / "user-id.txt";
  WriteFile(id_file, "  " + kAliceId + "\r\n");
  r = ws.Fp("consent show --subject-file " + ShellQuote(id_file.string()) + " " + ws.Common());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("training"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("granted 20"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find(kAliceId), std::string::npos) << "the raw id is never printed";
  r = RunCommand("printf '' | " + ShellQuote(testing::FruitpipeBinary().string()) +
                 " consent show --subject - " + ws.Common());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("standard input: no user id"), std::string::npos) << r.output;
}

// `fruitpipe run` with the real model over a store holding catalogue photos and two people's
// contributions; forget one; the pipeline can go on with the dataset and never brings them back;
// the other withdraws consent and a run with the ledger leaves their photos out.
TEST(PrivacyCliTest, RealPipelineRunThenForget) {
  FRUITPIPE_REQUIRE_SHARED();
  FRUITPIPE_REQUIRE_NODE_TOOLS();  // DuckDB
  Workspace ws;
  std::vector<fs::path> dev;
  for (const auto& label : fs::directory_iterator(testing::DevDataDir() / "Test")) {
    std::vector<fs::path> files;
    for (const auto& f : fs::directory_iterator(label.path())) files.push_back(f.path());
    std::sort(files.begin(), files.end());
    for (std::size_t i = 0; i < 4 && i < files.size(); ++i) dev.push_back(files[i]);
    if (dev.size() >= 16) break;
  }
  ASSERT_GE(dev.size(), 16u);
  for (std::size_t i = 0; i < 10; ++i) {  // catalogue
    WriteFile(ws.store() / dev[i].parent_path().filename() / dev[i].filename(), ReadLocalFile(dev[i].string()));
  }
  for (const auto& user : {kAliceId, kBobId}) {
    ASSERT_EQ(ws.Fp("consent grant --subject " + user + " --purpose training " + ws.Common()).exit_code, 0);
  }
  auto ingest = [&](const std::string& user, std::size_t from, std::size_t to) {
    std::string files;
    for (std::size_t i = from; i < to; ++i) files += " " + ShellQuote(dev[i].string());
    const auto r = ws.Fp("ingest --subject " + user + " --consent training --label " +
                         ShellQuote(dev[from].parent_path().filename().string()) + files + " --store " +
                         ShellQuote(ws.store().string()) + " " + ws.Common());
    ASSERT_EQ(r.exit_code, 0) << r.output;
  };
  ingest(kAliceId, 10, 13);
  ingest(kBobId, 13, 16);

  // Consent fails closed: without a ledger, contributions are left out, saying why.
  const fs::path no_ledger = ws.data() / "no-ledger";
  auto r = ws.Fp("run " + ShellQuote(ws.store().string()) + " " + ShellQuote(no_ledger.string()) + " --model " +
                 ShellQuote(testing::FeatureModelCard().string()) + " --pca-k 4 -q");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(DuckDbCount(no_ledger / "Results", "TRUE"), 10);
  const std::string refused = ReadLocalFile((no_ledger / "rejected.jsonl").string());
  EXPECT_EQ(Lines(refused), 6) << refused;
  EXPECT_NE(refused.find("no consent ledger given"), std::string::npos) << refused;

  const std::string run = "run " + ShellQuote(ws.store().string()) + " " + ShellQuote(ws.out().string()) + " --model " +
                          ShellQuote(testing::FeatureModelCard().string()) + " --shard-size 6 --pca-k 4 -q" +
                          " --consent-ledger " + ShellQuote(ws.ledger().string());
  r = ws.Fp(run);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string alice = Sid(kAliceId), bob = Sid(kBobId);
  // A copy of one of Alice's stored photos, under a catalogue name, to come back later.
  std::string alice_bytes;
  for (const auto& f : FilesContaining(ws.store(), "")) {
    if (f.find(alice) != std::string::npos && f.ends_with(".jpg")) alice_bytes = ReadLocalFile(f);
  }
  ASSERT_FALSE(alice_bytes.empty());
  // Two identifiers trained on the dataset: one is named to forget, the other is not.
  const std::string train_opts = " --augment-images 0 --imagenet-head none --quiet --model " +
                                 ShellQuote(testing::FeatureModelCard().string());
  const fs::path model = ws.data() / "model", other_model = ws.data() / "other-model";
  for (const auto& dir : {model, other_model}) {
    r = ws.Fp("train " + ShellQuote(ws.out().string()) + " --out " + ShellQuote(dir.string()) + train_opts);
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  ASSERT_EQ(DuckDbCount(ws.out() / "Results", "subject_id = '" + alice + "'"), 3);
  ASSERT_EQ(DuckDbCount(ws.out() / "Results", "subject_id = '" + bob + "'"), 3);
  const json others = OtherRows(ws.out(), alice);

  r = ws.Fp("forget --subject " + kAliceId + " --dataset " + ShellQuote(ws.out().string()) + " --store " +
            ShellQuote(ws.store().string()) + " --model-dir " + ShellQuote(model.string()) + " " + ws.Common() +
            " --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const json report = json::parse(r.output);
  EXPECT_EQ(report["models_retrained"], json::array({model.string()}));
  // The retrained model is the one `train` makes on the erased dataset, byte for byte.
  const fs::path fresh = ws.data() / "fresh-model";
  ASSERT_EQ(ws.Fp("train " + ShellQuote(ws.out().string()) + " --out " + ShellQuote(fresh.string()) + train_opts).exit_code, 0);
  for (const auto& f : fs::directory_iterator(fresh)) {
    EXPECT_EQ(ReadLocalFile(f.path().string()), ReadLocalFile((model / f.path().filename()).string())) << f.path();
  }
  // The model nobody retrained says it holds erased data; the retrained one does not.
  const std::string photo = ShellQuote(dev[0].string());
  auto predicted = ws.Fp("predict " + ShellQuote(other_model.string()) + " " + photo + " --json");
  ASSERT_EQ(predicted.exit_code, 0) << predicted.output;
  EXPECT_NE(predicted.output.find("has been erased from since"), std::string::npos) << predicted.output;
  predicted = ws.Fp("predict " + ShellQuote(model.string()) + " " + photo + " --json");
  EXPECT_EQ(predicted.output.find("warning"), std::string::npos) << predicted.output;
  EXPECT_EQ(report["rows_removed"], 3);
  EXPECT_EQ(report["photos_deleted"], 3);
  EXPECT_EQ(report["pca"], "refit");
  for (const char* dir : {"Results", "Results_PCA"}) {
    EXPECT_EQ(DuckDbCount(ws.out() / dir, "subject_id = '" + alice + "' OR path LIKE '%" + alice + "%'"), 0) << dir;
    EXPECT_EQ(DuckDbCount(ws.out() / dir, "TRUE"), 13) << dir;
  }
  EXPECT_EQ(OtherRows(ws.out(), alice), others);
  // (The ledger and the audit log keep the pseudonym: proof of consent and of the erasure.)
  for (const auto& dir : {ws.out(), ws.store()}) {
    const auto hits = FilesContaining(dir, alice);
    EXPECT_TRUE(hits.empty()) << hits.front();
  }

  // The pipeline carries on with the erased dataset and does not bring the photos back, not
  // even a copy under another name: the dataset remembers the erased bytes.
  WriteFile(ws.store() / "Kiwi" / "copy.jpg", alice_bytes);
  r = ws.Fp(run + " --incremental");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(DuckDbCount(ws.out() / "Results", "TRUE"), 13);
  EXPECT_NE(ReadLocalFile((ws.out() / "rejected.jsonl").string()).find("copy.jpg\",\"reason\":\"erased (right to erasure)"),
            std::string::npos);
  fs::remove(ws.store() / "Kiwi" / "copy.jpg");
  EXPECT_EQ(DuckDbCount(ws.out() / "Results_PCA", "subject_id = '" + alice + "'"), 0);
  EXPECT_EQ(OtherRows(ws.out(), alice), others);
  for (const auto& user : {kAliceId, kBobId}) EXPECT_TRUE(FilesContaining(ws.data(), user).empty()) << user;

  // Bob withdraws: a new run with the ledger leaves his photos out, saying why.
  ASSERT_EQ(ws.Fp("consent withdraw --subject " + kBobId + " --purpose training " + ws.Common()).exit_code, 0);
  const fs::path out2 = ws.data() / "out2";
  r = ws.Fp("run " + ShellQuote(ws.store().string()) + " " + ShellQuote(out2.string()) + " --model " +
            ShellQuote(testing::FeatureModelCard().string()) + " --pca-k 4 -q --consent-ledger " +
            ShellQuote(ws.ledger().string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(DuckDbCount(out2 / "Results", "TRUE"), 10);
  EXPECT_EQ(DuckDbCount(out2 / "Results", "subject_id IS NOT NULL"), 0);
  const std::string rejected = ReadLocalFile((out2 / "rejected.jsonl").string());
  EXPECT_EQ(Lines(rejected), 3) << rejected;
  EXPECT_NE(rejected.find("consent for training withdrawn"), std::string::npos) << rejected;
}

// The same erasure on S3 (s3rver, SigV4, EU region), through the CLI.
TEST(PrivacyCliTest, ForgetOnS3) {
  FRUITPIPE_REQUIRE_NODE_TOOLS();
  storage::s3::testing::IsolateAwsEnvironment();
  storage::s3::harness::S3rver server({"fp-privacy"});
  ::setenv("AWS_ACCESS_KEY_ID", "S3RVER", 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", "S3RVER", 1);
  ::setenv("AWS_ENDPOINT_URL", server.endpoint().c_str(), 1);
  ::setenv("AWS_REGION", "eu-west-1", 1);
  storage::RegisterS3Storage();
  auto raw = storage::OpenStorage("s3://fp-privacy/raw");
  auto out = storage::OpenStorage("s3://fp-privacy/out");
  const std::string alice = Sid(kAliceId), bob = Sid(kBobId);
  testdata::DatasetSpec spec;
  spec.source = raw->Uri("");
  spec.shard_size = 3;
  spec.photos = testdata::MixedPhotos({alice, bob}, 2, 5);
  for (const auto& p : spec.photos) raw->Put(p.key, "photo bytes");
  testdata::BuildDataset(*out, spec);
  auto expected = testdata::CommittedRows(*out);
  std::erase_if(expected, [&](const auto& kv) { return kv.second.row.subject_id == alice; });

  Workspace ws;
  const auto r = ws.Fp("forget --subject " + kAliceId + " --dataset s3://fp-privacy/out --store s3://fp-privacy/raw " +
                       "--subject-key-file " + ShellQuote(ws.key().string()) + " --audit-log " +
                       ShellQuote(ws.audit().string()) + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(testdata::CommittedRows(*out), expected);
  EXPECT_EQ(testdata::PcaRows(*out).size(), expected.size());
  for (const auto& [k, v] : testdata::Snapshot(*out)) {
    EXPECT_EQ(k.find(alice), std::string::npos) << k;
    EXPECT_EQ(v.find(alice), std::string::npos) << k;
  }
  for (const auto& obj : raw->List("")) EXPECT_EQ(obj.key.find(alice), std::string::npos) << obj.key;
  EXPECT_TRUE(out->Exists("_SUCCESS"));
  for (const char* v : {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_REGION"}) ::unsetenv(v);
}

}  // namespace
}  // namespace fruitpipe::privacy
