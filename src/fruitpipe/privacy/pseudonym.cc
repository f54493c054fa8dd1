#include "fruitpipe/privacy/pseudonym.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "fruitpipe/common/env_vars.h"
#include "fruitpipe/common/error.h"
#include "fruitpipe/common/hash.h"

namespace fruitpipe::privacy {
namespace {

std::string Trim(std::string s) {
  const auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!s.empty() && is_space(s.back())) s.pop_back();
  std::size_t start = 0;
  while (start < s.size() && is_space(s[start])) ++start;
  return s.substr(start);
}

}  // namespace

bool IsSubjectId(std::string_view id) {
  if (id.size() != 64) return false;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

void CheckSubjectId(std::string_view id, std::string_view what) {
  if (!IsSubjectId(id)) {
    throw InvalidArgumentError(std::string(what) + ": expected 64 lowercase hex digits (HMAC-SHA256), got " +
                               std::to_string(id.size()) + " characters");
  }
}

std::string ShortSubject(std::string_view subject_id) {
  return std::string(subject_id.substr(0, 12)) + "…";
}

SubjectKey SubjectKey::FromBytes(std::string key) {
  if (key.size() < kMinBytes) {
    throw InvalidArgumentError("subject key: " + std::to_string(key.size()) + " bytes, need at least " +
                               std::to_string(kMinBytes) + " (e.g. openssl rand -hex 32)");
  }
  return SubjectKey(std::move(key));
}

SubjectKey SubjectKey::Load(const std::string& key_file) {
  if (key_file.empty()) {
    auto env = GetEnv(kSubjectKeyEnv);
    if (!env) {
      throw InvalidArgumentError(std::string("no pseudonymisation key: pass --subject-key-file PATH or set ") +
                                 kSubjectKeyEnv);
    }
    return FromBytes(Trim(*env));
  }
  struct stat st {};
  if (::stat(key_file.c_str(), &st) != 0) {
    const int err = errno;
    if (err == ENOENT) throw NotFoundError(key_file + ": no such key file");
    throw IOError(key_file + ": " + std::strerror(err));
  }
  // Like ssh with private keys: a key others can read is a key that is no longer secret.
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    throw InvalidArgumentError(key_file + ": subject key is accessible by group or others; chmod 600 it");
  }
  try {
    return FromBytes(Trim(ReadLocalFile(key_file)));
  } catch (const InvalidArgumentError& e) {
    throw InvalidArgumentError(key_file + ": " + e.what());
  }
}

std::string SubjectKey::SubjectOf(std::string_view user_id) const {
  if (user_id.empty()) throw InvalidArgumentError("subject: empty user id");
  if (user_id.size() > 256) throw InvalidArgumentError("subject: user id longer than 256 bytes");
  for (unsigned char c : user_id) {
    if (c < 0x20 || c == 0x7f) throw InvalidArgumentError("subject: user id holds a control character");
  }
  return HmacSha256Hex(key_, user_id);
}

}  // namespace fruitpipe::privacy
