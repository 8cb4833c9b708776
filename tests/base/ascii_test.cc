#include "idsync/base/ascii.h"

#include <gtest/gtest.h>

namespace idsync::base {
namespace {

TEST(AsciiLower, FoldsOnlyAscii) {
  EXPECT_EQ(AsciiLower("Ana.Lima@Corp.EXAMPLE"), "ana.lima@corp.example");
  EXPECT_EQ(AsciiLower("\xc3\x89MILE"), "\xc3\x89mile");  // É stays as is
  EXPECT_EQ(AsciiLower(""), "");
  EXPECT_EQ(AsciiLower('Q'), 'q');
  EXPECT_EQ(AsciiLower('@'), '@');
  EXPECT_EQ(AsciiLower('['), '[');  // the byte after 'Z'
}

TEST(EqualsIgnoreCase, AsciiOnly) {
  EXPECT_TRUE(EqualsIgnoreCase("Content-Length", "content-length"));
  EXPECT_TRUE(EqualsIgnoreCase("", ""));
  EXPECT_FALSE(EqualsIgnoreCase("chunked", "chunke"));
  EXPECT_FALSE(EqualsIgnoreCase("\xc3\x89", "\xc3\xa9"));  // É and é differ here
  EXPECT_FALSE(EqualsIgnoreCase("a[", "A{"));
}

TEST(StartsWithIgnoreCase, PrefixAfterFolding) {
  EXPECT_TRUE(StartsWithIgnoreCase("LDAPS://dc1", "ldaps://"));
  EXPECT_TRUE(StartsWithIgnoreCase("x", ""));
  EXPECT_FALSE(StartsWithIgnoreCase("ld", "ldap"));
  EXPECT_FALSE(StartsWithIgnoreCase("ldif://", "ldap"));
}

}  // namespace
}  // namespace idsync::base
