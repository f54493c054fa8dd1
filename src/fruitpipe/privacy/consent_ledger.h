// The consent ledger: a SQLite database recording, per pseudonymous subject and purpose, when
// consent was granted and when it was withdrawn, and which photos each subject contributed
// (for retention). It never holds a raw user id: callers pass subject ids (pseudonym.h).
//
// History is kept. A grant opens a row (status 'granted'); a withdrawal closes that row
// (status 'withdrawn', withdrawn_at set) instead of deleting it; a later grant opens a new
// row. At most one row per (subject, purpose) is open, enforced by a partial unique index.
// Schema: docs/gdpr.md.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "fruitpipe/dataset/plan.h"

struct sqlite3;

namespace fruitpipe::privacy {

struct ConsentRecord {
  std::string subject_id;
  std::string purpose;
  std::string status;  // "granted" or "withdrawn"
  std::string granted_at;
  std::optional<std::string> withdrawn_at;
};

// A photo stored by `fruitpipe ingest`: where, whose, when.
struct Contribution {
  std::string subject_id;
  std::string store;    // the store's root URI
  std::string key;      // "<Label>/contrib-<subject>-<hash>.<ext>"
  std::string purpose;
  std::int64_t ingested_at = 0;  // epoch seconds
  std::optional<std::int64_t> erased_at;
};

// Purposes are short machine names: [a-z0-9_-]{1,64} ("training", "research").
void CheckPurpose(std::string_view purpose);

class ConsentLedger {
 public:
  enum class Mode {
    kCreate,    // create the file (mode 0600) and schema when missing
    kExisting,  // the file must exist (readers such as the run's consent filter)
  };
  // Throws NotFoundError (kExisting, missing file), IOError or CorruptionError naming `path`.
  static std::unique_ptr<ConsentLedger> Open(const std::string& path, Mode mode);
  ~ConsentLedger();
  ConsentLedger(const ConsentLedger&) = delete;
  ConsentLedger& operator=(const ConsentLedger&) = delete;

  const std::string& path() const { return path_; }

  // Opens a grant. Returns false (nothing recorded) when consent is already active.
  bool Grant(std::string_view subject_id, std::string_view purpose, std::int64_t now);
  // Closes the active grant. Returns false when there is none.
  bool Withdraw(std::string_view subject_id, std::string_view purpose, std::int64_t now);
  // Closes every active grant of the subject (erasure); returns how many.
  int WithdrawAll(std::string_view subject_id, std::int64_t now);
  bool HasConsent(std::string_view subject_id, std::string_view purpose);
  // Every grant of the subject, oldest first.
  std::vector<ConsentRecord> History(std::string_view subject_id);
  // Subjects whose consent for `purpose` is active now.
  std::set<std::string> SubjectsWithConsent(std::string_view purpose);
  // Subjects with any record for `purpose`, active or withdrawn.
  std::set<std::string> SubjectsWithRecord(std::string_view purpose);

  // Records a stored photo (a re-ingest of the same key refreshes its time and un-erases it).
  void RecordContribution(const Contribution& c);
  // Photos of `store` not yet erased and ingested strictly before `cutoff` (epoch seconds).
  std::vector<Contribution> ContributionsBefore(std::string_view store, std::int64_t cutoff);
  std::vector<Contribution> Contributions(std::string_view subject_id);
  void MarkErased(std::string_view store, std::string_view key, std::int64_t now);
  // Marks every photo of the subject erased, in any store; returns how many rows changed.
  int MarkSubjectErased(std::string_view subject_id, std::int64_t now);

  // Erasure requests (the app's "delete my data"; erasure itself is a batch job:
  // `fruitpipe forget --pending`). Returns false when one is already pending.
  bool RequestErasure(std::string_view subject_id, std::int64_t now);
  std::vector<std::string> PendingErasures();  // subjects, oldest request first
  void MarkErasureDone(std::string_view subject_id, std::int64_t now);

 private:
  ConsentLedger(std::string path, sqlite3* db) : path_(std::move(path)), db_(db) {}
  class Statement;
  void Exec(const char* sql);
  [[noreturn]] void Fail(const std::string& what) const;
  std::string path_;
  sqlite3* db_;
};

// For RunOptions::admit_filter (pipeline/run.h): admits catalogue images (no subject) and
// contributed photos whose subject's consent for `purpose` is active in the ledger at
// `ledger_path` when the filter is made (a snapshot: one query, then lookups). Others get a
// reason: "consent for <purpose> withdrawn" or "no consent for <purpose> recorded".
std::function<std::optional<std::string>(const dataset::SourceImage&)> MakeConsentFilter(
    const std::string& ledger_path, const std::string& purpose);

}  // namespace fruitpipe::privacy
