#include "fruitpipe/privacy/audit_log.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "fruitpipe/common/env_vars.h"
#include "fruitpipe/common/error.h"
#include "fruitpipe/common/hash.h"
#include "fruitpipe/privacy/pseudonym.h"
#include "fruitpipe/common/time.h"

namespace fruitpipe::privacy {
namespace {

using nlohmann::json;

const std::string kGenesis(64, '0');
constexpr std::size_t kMaxLine = 64 * 1024;

bool IsHex64(const json& v) {
  if (!v.is_string()) return false;
  const auto& s = v.get_ref<const std::string&>();
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// The line as written for an entry (without "hash") chained after `prev_hash`.
std::string LineFor(const json& entry_without_hash, std::string* hash_out) {
  const std::string canonical = entry_without_hash.dump();
  const std::string hash = Sha256Hex(entry_without_hash.at("prev_hash").get<std::string>() + canonical);
  if (hash_out) *hash_out = hash;
  return canonical.substr(0, canonical.size() - 1) + ",\"hash\":\"" + hash + "\"}";
}

// Checks one line on its own: parses, canonical form, hash. Returns the reason when bad.
std::optional<std::string> CheckLine(const std::string& line, json* entry) {
  try {
    *entry = json::parse(line);
  } catch (const json::exception&) {
    return "not valid JSON";
  }
  if (!entry->is_object()) return "not a JSON object";
  if (!IsHex64(entry->value("hash", json())) || !IsHex64(entry->value("prev_hash", json()))) {
    return "hash or prev_hash missing or malformed";
  }
  if (!entry->contains("seq") || !(*entry)["seq"].is_number_integer()) return "seq missing";
  json body = *entry;
  const std::string stored = body["hash"].get<std::string>();
  body.erase("hash");
  std::string computed;
  const std::string expected = LineFor(body, &computed);
  if (computed != stored) return "hash does not match the line's content (edited)";
  if (expected != line) return "line is not in canonical form (edited)";
  return std::nullopt;
}

[[noreturn]] void ThrowErrno(const std::string& what) {
  throw IOError(what + ": " + std::strerror(errno));
}

}  // namespace

AuditHead AuditLog::Append(const std::string& action, const std::optional<std::string>& subject,
                           const json& fields) {
  if (!fields.is_object()) throw InvalidArgumentError("audit log: fields must be a JSON object");
  for (const char* reserved : {"seq", "time", "action", "subject", "hash", "prev_hash"}) {
    if (fields.contains(reserved)) throw InvalidArgumentError(std::string("audit log: field name '") + reserved + "' is reserved");
  }
  if (subject) CheckSubjectId(*subject, "audit log subject");

  const std::filesystem::path parent = std::filesystem::path(path_).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
  }
  const int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) ThrowErrno(path_);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }  // also releases the lock
  } closer{fd};
  if (::flock(fd, LOCK_EX) != 0) ThrowErrno(path_ + ": lock");

  struct stat st {};
  if (::fstat(fd, &st) != 0) ThrowErrno(path_);
  AuditHead head{0, kGenesis};
  const auto size = static_cast<std::size_t>(st.st_size);
  if (size > 0) {
    const std::size_t tail_size = std::min(size, kMaxLine + 1);
    std::string tail(tail_size, '\0');
    const ssize_t got = ::pread(fd, tail.data(), tail_size, static_cast<off_t>(size - tail_size));
    if (got != static_cast<ssize_t>(tail_size)) ThrowErrno(path_ + ": read");
    if (tail.back() != '\n') {
      throw CorruptionError(path_ + ": last audit line is incomplete; run fruitpipe audit verify");
    }
    const auto nl = tail.rfind('\n', tail.size() - 2);
    if (nl == std::string::npos && tail_size < size) {
      throw CorruptionError(path_ + ": last audit line is longer than 64 KiB");
    }
    const std::string last = tail.substr(nl == std::string::npos ? 0 : nl + 1, tail.size() - 1 - (nl == std::string::npos ? 0 : nl + 1));
    json entry;
    if (auto bad = CheckLine(last, &entry)) {
      throw CorruptionError(path_ + ": last audit line: " + *bad + "; run fruitpipe audit verify");
    }
    head = {entry["seq"].get<std::int64_t>(), entry["hash"].get<std::string>()};
  }

  json entry = fields;
  entry["seq"] = head.seq + 1;
  entry["time"] = IsoUtc(WallEpochSeconds());
  entry["action"] = action;
  if (subject) entry["subject"] = *subject;
  entry["prev_hash"] = head.hash;
  std::string hash;
  const std::string line = LineFor(entry, &hash) + "\n";
  if (line.size() > kMaxLine) throw InvalidArgumentError("audit log: entry longer than 64 KiB");
  std::size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(fd, line.data() + done, line.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      ThrowErrno(path_ + ": write");
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) ThrowErrno(path_ + ": fsync");
  return {head.seq + 1, hash};
}

AuditVerdict AuditLog::Verify(const std::optional<AuditHead>& expected_head) const {
  const std::string text = ReadLocalFile(path_);
  AuditVerdict v;
  v.head = {0, kGenesis};
  bool head_seen = !expected_head || expected_head->seq == 0;
  std::size_t pos = 0;
  std::int64_t n = 0;
  auto fail = [&](std::int64_t line, std::string reason) {
    v.ok = false;
    v.bad_line = line;
    v.reason = std::move(reason);
    return v;
  };
  while (pos < text.size()) {
    ++n;
    const auto nl = text.find('\n', pos);
    if (nl == std::string::npos) return fail(n, "incomplete last line (no newline)");
    const std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    json entry;
    if (auto bad = CheckLine(line, &entry)) return fail(n, *bad);
    if (entry["seq"].get<std::int64_t>() != n) {
      return fail(n, "seq is " + entry["seq"].dump() + ", expected " + std::to_string(n) + " (lines removed or reordered)");
    }
    if (entry["prev_hash"].get<std::string>() != v.head.hash) {
      return fail(n, "prev_hash does not match the hash of line " + std::to_string(n - 1) +
                         " (lines removed, inserted or reordered)");
    }
    v.head = {n, entry["hash"].get<std::string>()};
    v.lines = n;
    if (expected_head && expected_head->seq == n) {
      if (expected_head->hash != v.head.hash) return fail(n, "hash differs from the recorded head");
      head_seen = true;
    }
  }
  if (!head_seen) {
    return fail(n + 1, "the log ends at line " + std::to_string(n) + " but the recorded head is line " +
                           std::to_string(expected_head->seq) + " (lines removed from the end)");
  }
  v.ok = true;
  return v;
}

std::string ResolveAuditLogPath(const std::string& flag, const std::string& ledger_path) {
  if (!flag.empty()) return flag;
  if (auto env = GetEnv("FRUITPIPE_AUDIT_LOG")) return *env;
  if (!ledger_path.empty()) {
    const auto parent = std::filesystem::path(ledger_path).parent_path();
    return (parent / "audit.jsonl").string();
  }
  throw InvalidArgumentError("no audit log: pass --audit-log PATH, set FRUITPIPE_AUDIT_LOG, or pass --ledger");
}

}  // namespace fruitpipe::privacy
