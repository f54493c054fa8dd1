// Pseudonymisation: a person is known to fruitpipe only as subject_id = HMAC-SHA256(key, user
// id) in hex. The key is a secret kept apart from every output (a file readable by its owner
// only, or an environment variable); without it a subject id cannot be linked back to a user,
// with it the same user always maps to the same id, so consent, erasure and retention can find
// their data. The raw user id is used only to compute the HMAC and is never stored or logged.
#pragma once

#include <string>
#include <string_view>

namespace fruitpipe::privacy {

inline constexpr char kSubjectKeyEnv[] = "FRUITPIPE_SUBJECT_KEY";

// True for a well-formed subject id: 64 lowercase hex digits.
bool IsSubjectId(std::string_view id);
// Throws InvalidArgumentError naming `what` unless IsSubjectId(id).
void CheckSubjectId(std::string_view id, std::string_view what = "subject id");
// The first 12 digits, for messages meant for people ("subject 3f9a0c1d2e4b…").
std::string ShortSubject(std::string_view subject_id);

class SubjectKey {
 public:
  // At least this many bytes; e.g. `openssl rand -hex 32 > subject.key` gives 64.
  static constexpr std::size_t kMinBytes = 32;

  // Reads the key from `key_file` when non-empty (surrounding whitespace trimmed), else from
  // $FRUITPIPE_SUBJECT_KEY. Throws InvalidArgumentError when neither is given, when the key is
  // shorter than kMinBytes, or when the file is readable by group or others.
  static SubjectKey Load(const std::string& key_file);
  static SubjectKey FromBytes(std::string key);  // same length rule

  // HMAC-SHA256(key, user_id) in lowercase hex. Throws InvalidArgumentError for an empty user
  // id, one longer than 256 bytes or one holding control characters (never echoing it).
  std::string SubjectOf(std::string_view user_id) const;

 private:
  explicit SubjectKey(std::string key) : key_(std::move(key)) {}
  std::string key_;
};

}  // namespace fruitpipe::privacy
