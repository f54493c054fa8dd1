#include "fruitpipe/common/utf8.h"

#include <gtest/gtest.h>

namespace fruitpipe {
namespace {

TEST(Utf8Test, AcceptsWellFormedText) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("Apple Red 1/r_0_100.jpg"));
  EXPECT_TRUE(IsValidUtf8("Pomme/été.jpg"));               // 2-byte
  EXPECT_TRUE(IsValidUtf8("\xE6\xB0\xB4\xE6\x9E\x9C"));   // 3-byte (水果)
  EXPECT_TRUE(IsValidUtf8("\xF0\x9F\x8D\x8E"));           // 4-byte (U+1F34E)
  EXPECT_TRUE(IsValidUtf8("\xF4\x8F\xBF\xBF"));           // U+10FFFF, the last code point
}

TEST(Utf8Test, RejectsMalformedText) {
  EXPECT_FALSE(IsValidUtf8("\xFF"));
  EXPECT_FALSE(IsValidUtf8("image/jp\xFF\xFF" "eg"));
  EXPECT_FALSE(IsValidUtf8("\x80"));                     // lone continuation byte
  EXPECT_FALSE(IsValidUtf8("\xC3"));                     // truncated sequence
  EXPECT_FALSE(IsValidUtf8("\xE6\xB0"));                 // truncated sequence
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));                 // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xE0\x80\xAF"));             // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));             // surrogate U+D800
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));         // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xE6\x41\x9E"));             // bad continuation
}

}  // namespace
}  // namespace fruitpipe
