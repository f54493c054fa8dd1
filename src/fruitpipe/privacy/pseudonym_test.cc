#include "fruitpipe/privacy/pseudonym.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <fstream>

#include "fruitpipe/common/error.h"
#include "fruitpipe/common/hash.h"
#include "fruitpipe/common/testing.h"

namespace fruitpipe::privacy {
namespace {

const std::string kKey = "0123456789abcdef0123456789abcdef-test-key";

std::string WriteKey(const testing::TempDir& dir, const std::string& content, mode_t mode) {
  const std::string path = (dir.path() / "subject.key").string();
  std::ofstream(path) << content;
  ::chmod(path.c_str(), mode);
  return path;
}

TEST(PseudonymTest, SubjectIsTheHmacOfTheUserIdUnderTheKey) {
  const SubjectKey key = SubjectKey::FromBytes(kKey);
  const std::string id = key.SubjectOf("alice@example.org");
  EXPECT_EQ(id, HmacSha256Hex(kKey, "alice@example.org"));
  EXPECT_TRUE(IsSubjectId(id));
  EXPECT_EQ(key.SubjectOf("alice@example.org"), id);  // stable
  EXPECT_NE(key.SubjectOf("bob@example.org"), id);
  EXPECT_NE(SubjectKey::FromBytes(kKey + "x").SubjectOf("alice@example.org"), id);  // keyed
  EXPECT_EQ(ShortSubject(id), id.substr(0, 12) + "…");
}

TEST(PseudonymTest, KeyFileIsTrimmedAndMustBePrivate) {
  testing::TempDir dir;
  const std::string path = WriteKey(dir, "  " + kKey + "\n", 0600);
  EXPECT_EQ(SubjectKey::Load(path).SubjectOf("u1"), HmacSha256Hex(kKey, "u1"));

  ::chmod(path.c_str(), 0644);
  try {
    SubjectKey::Load(path);
    ADD_FAILURE() << "a world-readable key was accepted";
  } catch (const InvalidArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("chmod 600"), std::string::npos) << e.what();
  }
  EXPECT_THROW(SubjectKey::Load((dir.path() / "missing.key").string()), NotFoundError);
  const std::string short_key = WriteKey(dir, "too short\n", 0600);
  EXPECT_THROW(SubjectKey::Load(short_key), InvalidArgumentError);
}

TEST(PseudonymTest, KeyFromEnvironmentOrAClearError) {
  ::unsetenv(kSubjectKeyEnv);
  try {
    SubjectKey::Load("");
    ADD_FAILURE() << "no key accepted";
  } catch (const InvalidArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("--subject-key-file"), std::string::npos) << e.what();
  }
  ::setenv(kSubjectKeyEnv, kKey.c_str(), 1);
  EXPECT_EQ(SubjectKey::Load("").SubjectOf("u1"), HmacSha256Hex(kKey, "u1"));
  ::unsetenv(kSubjectKeyEnv);
}

TEST(PseudonymTest, BadUserIdsAreRefusedWithoutEchoingThem) {
  const SubjectKey key = SubjectKey::FromBytes(kKey);
  EXPECT_THROW(key.SubjectOf(""), InvalidArgumentError);
  EXPECT_THROW(key.SubjectOf(std::string(257, 'a')), InvalidArgumentError);
  try {
    key.SubjectOf("secret-user\n");
    ADD_FAILURE();
  } catch (const InvalidArgumentError& e) {
    EXPECT_EQ(std::string(e.what()).find("secret-user"), std::string::npos);
  }
}

TEST(PseudonymTest, SubjectIdShape) {
  EXPECT_TRUE(IsSubjectId(std::string(64, 'a')));
  EXPECT_FALSE(IsSubjectId(std::string(64, 'A')));
  EXPECT_FALSE(IsSubjectId(std::string(63, 'a')));
  EXPECT_FALSE(IsSubjectId(std::string(63, 'a') + "g"));
  EXPECT_THROW(CheckSubjectId("alice"), InvalidArgumentError);
}

}  // namespace
}  // namespace fruitpipe::privacy
