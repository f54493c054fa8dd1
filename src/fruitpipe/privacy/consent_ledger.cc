#include "fruitpipe/privacy/consent_ledger.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <filesystem>
#include <utility>

#include "fruitpipe/common/error.h"
#include "fruitpipe/privacy/pseudonym.h"
#include "fruitpipe/common/time.h"

namespace fruitpipe::privacy {
namespace {

constexpr int kSchemaVersion = 2;  // 2: erasure_requests (every statement is IF NOT EXISTS)

// Times are stored as UTC text (IsoUtc) so the file reads well in the sqlite3 shell;
// ingested_at also as epoch seconds for the retention query.
constexpr char kSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS consent (
  id           INTEGER PRIMARY KEY,
  subject_id   TEXT NOT NULL CHECK (length(subject_id) = 64),
  purpose      TEXT NOT NULL,
  status       TEXT NOT NULL CHECK (status IN ('granted', 'withdrawn')),
  granted_at   TEXT NOT NULL,
  withdrawn_at TEXT,
  CHECK ((status = 'withdrawn') = (withdrawn_at IS NOT NULL))
);
CREATE UNIQUE INDEX IF NOT EXISTS consent_active ON consent (subject_id, purpose) WHERE status = 'granted';
CREATE INDEX IF NOT EXISTS consent_subject ON consent (subject_id);
CREATE TABLE IF NOT EXISTS contributions (
  id             INTEGER PRIMARY KEY,
  subject_id     TEXT NOT NULL CHECK (length(subject_id) = 64),
  store          TEXT NOT NULL,
  key            TEXT NOT NULL,
  purpose        TEXT NOT NULL,
  ingested_at    TEXT NOT NULL,
  ingested_epoch INTEGER NOT NULL,
  erased_at      TEXT,
  UNIQUE (store, key)
);
CREATE INDEX IF NOT EXISTS contributions_subject ON contributions (subject_id);
CREATE TABLE IF NOT EXISTS erasure_requests (
  id           INTEGER PRIMARY KEY,
  subject_id   TEXT NOT NULL CHECK (length(subject_id) = 64),
  requested_at TEXT NOT NULL,
  done_at      TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS erasure_pending ON erasure_requests (subject_id) WHERE done_at IS NULL;
)sql";

}  // namespace

void CheckPurpose(std::string_view purpose) {
  bool ok = !purpose.empty() && purpose.size() <= 64;
  for (char c : purpose) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-');
  }
  if (!ok) throw InvalidArgumentError("purpose '" + std::string(purpose) + "': expected [a-z0-9_-]{1,64}");
}

// A prepared statement with positional text/int binds; steps row by row.
class ConsentLedger::Statement {
 public:
  Statement(const ConsentLedger& ledger, const char* sql) : ledger_(ledger) {
    if (sqlite3_prepare_v2(ledger.db_, sql, -1, &stmt_, nullptr) != SQLITE_OK) ledger.Fail("prepare");
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement& Bind(std::string_view text) {
    if (sqlite3_bind_text(stmt_, ++bound_, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT) !=
        SQLITE_OK) {
      ledger_.Fail("bind");
    }
    return *this;
  }
  Statement& Bind(std::int64_t v) {
    if (sqlite3_bind_int64(stmt_, ++bound_, v) != SQLITE_OK) ledger_.Fail("bind");
    return *this;
  }
  // True while there is a row.
  bool Step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc != SQLITE_DONE) ledger_.Fail("step");
    return false;
  }
  std::string Text(int col) const {
    const auto* p = sqlite3_column_text(stmt_, col);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)))
             : std::string();
  }
  bool IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  std::int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }

 private:
  const ConsentLedger& ledger_;
  sqlite3_stmt* stmt_ = nullptr;
  int bound_ = 0;
};

void ConsentLedger::Fail(const std::string& what) const {
  const int code = sqlite3_extended_errcode(db_);
  const std::string msg = path_ + ": consent ledger " + what + " failed: " + sqlite3_errmsg(db_);
  if ((code & 0xff) == SQLITE_CORRUPT || (code & 0xff) == SQLITE_NOTADB) throw CorruptionError(msg);
  throw IOError(msg);
}

void ConsentLedger::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    const std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    const int code = sqlite3_extended_errcode(db_) & 0xff;
    const std::string full = path_ + ": consent ledger: " + msg;
    if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB) throw CorruptionError(full);
    throw IOError(full);
  }
}

std::unique_ptr<ConsentLedger> ConsentLedger::Open(const std::string& path, Mode mode) {
  namespace fs = std::filesystem;
  const bool existed = fs::exists(path);
  if (!existed && mode == Mode::kExisting) throw NotFoundError(path + ": no consent ledger");
  if (!existed) {
    const fs::path parent = fs::path(path).parent_path();
    std::error_code ec;
    if (!parent.empty()) fs::create_directories(parent, ec);
  }
  sqlite3* db = nullptr;
  const int flags = SQLITE_OPEN_READWRITE | (mode == Mode::kCreate ? SQLITE_OPEN_CREATE : 0);
  if (sqlite3_open_v2(path.c_str(), &db, flags, nullptr) != SQLITE_OK) {
    const std::string msg = path + ": cannot open consent ledger: " + (db ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_close(db);
    throw IOError(msg);
  }
  std::unique_ptr<ConsentLedger> ledger(new ConsentLedger(path, db));
  // Pseudonymous ids are still personal data: the file is for its owner only.
  if (!existed) ::chmod(path.c_str(), 0600);
  sqlite3_busy_timeout(db, 10000);  // concurrent ingest/forget processes wait for the lock
  ledger->Exec("PRAGMA foreign_keys = ON");
  int version = 0;
  {
    Statement st(*ledger, "PRAGMA user_version");
    if (st.Step()) version = static_cast<int>(st.Int(0));
  }
  if (version > kSchemaVersion) {
    throw CorruptionError(path + ": consent ledger schema version " + std::to_string(version) +
                          " is newer than this fruitpipe understands (" + std::to_string(kSchemaVersion) + ")");
  }
  if (version < kSchemaVersion) {
    ledger->Exec("BEGIN IMMEDIATE");
    try {
      ledger->Exec(kSchema);
      ledger->Exec(("PRAGMA user_version = " + std::to_string(kSchemaVersion)).c_str());
      ledger->Exec("COMMIT");
    } catch (...) {
      sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }
  return ledger;
}

ConsentLedger::~ConsentLedger() { sqlite3_close(db_); }

bool ConsentLedger::Grant(std::string_view subject_id, std::string_view purpose, std::int64_t now) {
  CheckSubjectId(subject_id);
  CheckPurpose(purpose);
  // The partial unique index makes a second open grant a no-op instead of a duplicate.
  Statement st(*this,
               "INSERT INTO consent (subject_id, purpose, status, granted_at) VALUES (?, ?, 'granted', ?) "
               "ON CONFLICT DO NOTHING");
  st.Bind(subject_id).Bind(purpose).Bind(IsoUtc(now)).Step();
  return sqlite3_changes(db_) > 0;
}

bool ConsentLedger::Withdraw(std::string_view subject_id, std::string_view purpose, std::int64_t now) {
  CheckSubjectId(subject_id);
  CheckPurpose(purpose);
  Statement st(*this,
               "UPDATE consent SET status = 'withdrawn', withdrawn_at = ? "
               "WHERE subject_id = ? AND purpose = ? AND status = 'granted'");
  st.Bind(IsoUtc(now)).Bind(subject_id).Bind(purpose).Step();
  return sqlite3_changes(db_) > 0;
}

int ConsentLedger::WithdrawAll(std::string_view subject_id, std::int64_t now) {
  CheckSubjectId(subject_id);
  Statement st(*this,
               "UPDATE consent SET status = 'withdrawn', withdrawn_at = ? WHERE subject_id = ? AND status = 'granted'");
  st.Bind(IsoUtc(now)).Bind(subject_id).Step();
  return sqlite3_changes(db_);
}

bool ConsentLedger::HasConsent(std::string_view subject_id, std::string_view purpose) {
  CheckSubjectId(subject_id);
  CheckPurpose(purpose);
  Statement st(*this, "SELECT 1 FROM consent WHERE subject_id = ? AND purpose = ? AND status = 'granted'");
  return st.Bind(subject_id).Bind(purpose).Step();
}

std::vector<ConsentRecord> ConsentLedger::History(std::string_view subject_id) {
  CheckSubjectId(subject_id);
  Statement st(*this,
               "SELECT subject_id, purpose, status, granted_at, withdrawn_at FROM consent WHERE subject_id = ? "
               "ORDER BY id");
  st.Bind(subject_id);
  std::vector<ConsentRecord> out;
  while (st.Step()) {
    ConsentRecord r{st.Text(0), st.Text(1), st.Text(2), st.Text(3), std::nullopt};
    if (!st.IsNull(4)) r.withdrawn_at = st.Text(4);
    out.push_back(std::move(r));
  }
  return out;
}

std::set<std::string> ConsentLedger::SubjectsWithConsent(std::string_view purpose) {
  CheckPurpose(purpose);
  Statement st(*this, "SELECT subject_id FROM consent WHERE purpose = ? AND status = 'granted'");
  st.Bind(purpose);
  std::set<std::string> out;
  while (st.Step()) out.insert(st.Text(0));
  return out;
}

std::set<std::string> ConsentLedger::SubjectsWithRecord(std::string_view purpose) {
  CheckPurpose(purpose);
  Statement st(*this, "SELECT DISTINCT subject_id FROM consent WHERE purpose = ?");
  st.Bind(purpose);
  std::set<std::string> out;
  while (st.Step()) out.insert(st.Text(0));
  return out;
}

void ConsentLedger::RecordContribution(const Contribution& c) {
  CheckSubjectId(c.subject_id);
  CheckPurpose(c.purpose);
  Statement st(*this,
               "INSERT INTO contributions (subject_id, store, key, purpose, ingested_at, ingested_epoch) "
               "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (store, key) DO UPDATE SET "
               "subject_id = excluded.subject_id, purpose = excluded.purpose, ingested_at = excluded.ingested_at, "
               "ingested_epoch = excluded.ingested_epoch, erased_at = NULL");
  st.Bind(c.subject_id).Bind(c.store).Bind(c.key).Bind(c.purpose).Bind(IsoUtc(c.ingested_at)).Bind(c.ingested_at);
  st.Step();
}

namespace {

constexpr char kContributionColumns[] =
    "SELECT subject_id, store, key, purpose, ingested_epoch, erased_at FROM contributions ";

}  // namespace

std::vector<Contribution> ConsentLedger::ContributionsBefore(std::string_view store, std::int64_t cutoff) {
  Statement st(*this, (std::string(kContributionColumns) +
                       "WHERE store = ? AND erased_at IS NULL AND ingested_epoch < ? ORDER BY id")
                          .c_str());
  st.Bind(store).Bind(cutoff);
  std::vector<Contribution> out;
  while (st.Step()) {
    out.push_back({st.Text(0), st.Text(1), st.Text(2), st.Text(3), st.Int(4), std::nullopt});
  }
  return out;
}

std::vector<Contribution> ConsentLedger::Contributions(std::string_view subject_id) {
  CheckSubjectId(subject_id);
  Statement st(*this, (std::string(kContributionColumns) + "WHERE subject_id = ? ORDER BY id").c_str());
  st.Bind(subject_id);
  std::vector<Contribution> out;
  while (st.Step()) {
    Contribution c{st.Text(0), st.Text(1), st.Text(2), st.Text(3), st.Int(4), std::nullopt};
    if (!st.IsNull(5)) c.erased_at = ParseIsoUtc(st.Text(5), path_ + ": erased_at");
    out.push_back(std::move(c));
  }
  return out;
}

void ConsentLedger::MarkErased(std::string_view store, std::string_view key, std::int64_t now) {
  Statement st(*this, "UPDATE contributions SET erased_at = ? WHERE store = ? AND key = ? AND erased_at IS NULL");
  st.Bind(IsoUtc(now)).Bind(store).Bind(key).Step();
}

int ConsentLedger::MarkSubjectErased(std::string_view subject_id, std::int64_t now) {
  CheckSubjectId(subject_id);
  Statement st(*this, "UPDATE contributions SET erased_at = ? WHERE subject_id = ? AND erased_at IS NULL");
  st.Bind(IsoUtc(now)).Bind(subject_id).Step();
  return sqlite3_changes(db_);
}

bool ConsentLedger::RequestErasure(std::string_view subject_id, std::int64_t now) {
  CheckSubjectId(subject_id);
  Statement st(*this, "INSERT INTO erasure_requests (subject_id, requested_at) VALUES (?, ?) ON CONFLICT DO NOTHING");
  st.Bind(subject_id).Bind(IsoUtc(now)).Step();
  return sqlite3_changes(db_) > 0;
}

std::vector<std::string> ConsentLedger::PendingErasures() {
  Statement st(*this, "SELECT subject_id FROM erasure_requests WHERE done_at IS NULL ORDER BY id");
  std::vector<std::string> out;
  while (st.Step()) out.push_back(st.Text(0));
  return out;
}

void ConsentLedger::MarkErasureDone(std::string_view subject_id, std::int64_t now) {
  CheckSubjectId(subject_id);
  Statement st(*this, "UPDATE erasure_requests SET done_at = ? WHERE subject_id = ? AND done_at IS NULL");
  st.Bind(IsoUtc(now)).Bind(subject_id).Step();
}

std::function<std::optional<std::string>(const dataset::SourceImage&)> MakeConsentFilter(
    const std::string& ledger_path, const std::string& purpose) {
  CheckPurpose(purpose);
  auto ledger = ConsentLedger::Open(ledger_path, ConsentLedger::Mode::kExisting);
  auto active = std::make_shared<const std::set<std::string>>(ledger->SubjectsWithConsent(purpose));
  // Subjects that had consent once: their exclusion reason says "withdrawn".
  auto seen = std::make_shared<const std::set<std::string>>(ledger->SubjectsWithRecord(purpose));
  return [active, seen, purpose](const dataset::SourceImage& img) -> std::optional<std::string> {
    if (!img.subject_id) return std::nullopt;
    if (active->count(*img.subject_id)) return std::nullopt;
    if (seen->count(*img.subject_id)) return "consent for " + purpose + " withdrawn";
    return "no consent for " + purpose + " recorded";
  };
}

}  // namespace fruitpipe::privacy
