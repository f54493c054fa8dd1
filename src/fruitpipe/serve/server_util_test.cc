// The pieces of the HTTP layer that decide before any image is read: media types and tokens.
// The service itself is tested over real HTTP in tests/identify/serve_test.cc.
#include <gtest/gtest.h>

#include <fstream>

#include "fruitpipe/common/error.h"
#include "fruitpipe/common/testing.h"
#include "fruitpipe/serve/server.h"

namespace fruitpipe::serve {
namespace {

TEST(ServerUtilTest, MediaTypeDropsParametersAndCase) {
  EXPECT_EQ(MediaType("image/jpeg"), "image/jpeg");
  EXPECT_EQ(MediaType("  Image/JPEG ; charset=binary"), "image/jpeg");
  EXPECT_EQ(MediaType("application/octet-stream;q=1"), "application/octet-stream");
  EXPECT_EQ(MediaType(""), "");
  EXPECT_EQ(MediaType("text/plain"), "text/plain");
}

TEST(ServerUtilTest, TokenMatchesOnlyTheExactToken) {
  EXPECT_TRUE(TokenMatches("s3cret-token", "s3cret-token"));
  EXPECT_FALSE(TokenMatches("s3cret-tokeN", "s3cret-token"));
  EXPECT_FALSE(TokenMatches("s3cret-token ", "s3cret-token"));
  EXPECT_FALSE(TokenMatches("s3cret", "s3cret-token"));
  EXPECT_FALSE(TokenMatches("", "s3cret-token"));
}

void WriteFile(const std::filesystem::path& p, const std::string& s) {
  std::ofstream out(p, std::ios::binary);
  out << s;
}

TEST(ServerUtilTest, ReadTokenFileTakesTheFirstLineTrimmed) {
  testing::TempDir dir;
  const auto p = dir.path() / "token";
  WriteFile(p, "  abc.DEF-123_~  \nsecond line\n");
  EXPECT_EQ(ReadTokenFile(p.string()), "abc.DEF-123_~");
  WriteFile(p, "\n\n");
  EXPECT_THROW(ReadTokenFile(p.string()), InvalidArgumentError);
  WriteFile(p, std::string("ab\x01" "c"));
  EXPECT_THROW(ReadTokenFile(p.string()), InvalidArgumentError);
  EXPECT_THROW(ReadTokenFile((dir.path() / "missing").string()), NotFoundError);
}

}  // namespace
}  // namespace fruitpipe::serve
