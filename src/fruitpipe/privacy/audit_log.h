// The audit log: append-only JSON lines, one per privacy-relevant action (consent change,
// ingest, erasure, purge), each chained to the one before it so that editing, inserting,
// deleting or reordering lines is detected.
//
//   {"action":"forget","dataset":"...","hash":"<64 hex>","prev_hash":"<64 hex>","rows":12,
//    "seq":7,"subject":"<subject id>","time":"2024-05-01T12:00:00Z",...}
//
// The line without its "hash" member, serialised canonically (keys sorted, no spaces), is C;
// hash = SHA-256(prev_hash + C) in hex, prev_hash is the previous line's hash (64 zeros for the
// first line), and the line on disk is C with ,"hash":"..." added before the closing brace.
// Subjects appear only as pseudonymous ids; no field ever holds a raw user id.
//
// Deleting lines from the end leaves a valid shorter chain: keep the head (seq and hash,
// printed by `fruitpipe audit verify` and returned by Append) somewhere else and pass it to
// Verify to detect that too. See docs/gdpr.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace fruitpipe::privacy {

struct AuditHead {
  std::int64_t seq = 0;  // lines in the log
  std::string hash;      // of the last line; 64 zeros when empty
};

struct AuditVerdict {
  bool ok = false;
  std::int64_t lines = 0;      // lines checked and valid
  AuditHead head;
  std::int64_t bad_line = 0;   // 1-based, set when !ok
  std::string reason;          // one line, set when !ok
};

class AuditLog {
 public:
  explicit AuditLog(std::string path) : path_(std::move(path)) {}
  const std::string& path() const { return path_; }

  // Appends one entry: `fields` (an object of counts and names) plus seq, time, action and,
  // when given, subject. Fields may not use those names or hash/prev_hash. The file is
  // created (mode 0600) when missing, locked while the last line is read and the new one
  // written, and synced before returning. Throws CorruptionError when the last line is
  // damaged (the chain cannot be continued; run `fruitpipe audit verify`).
  AuditHead Append(const std::string& action, const std::optional<std::string>& subject,
                   const nlohmann::json& fields = nlohmann::json::object());

  // Checks every line. With `expected_head`, also requires that the chain contains a line
  // with that seq and hash (detects lines deleted from the end after the head was recorded).
  AuditVerdict Verify(const std::optional<AuditHead>& expected_head = std::nullopt) const;

 private:
  std::string path_;
};

// The path for --audit-log: `flag` if set, else $FRUITPIPE_AUDIT_LOG, else audit.jsonl beside
// the ledger (when `ledger_path` is set). Throws InvalidArgumentError when none applies.
std::string ResolveAuditLogPath(const std::string& flag, const std::string& ledger_path);

}  // namespace fruitpipe::privacy
