#include "mailauth/tag_list.hpp"

#include <gtest/gtest.h>

using namespace ferry::mailauth;

TEST(TagList, ParsesTagsWithFoldingWhitespace) {
    const auto l = parse_tag_list("v=1; a=rsa-sha256;\r\n\td=example.net; s=brisbane;\r\n  h=from : to :\r\n subject ; b=ab cd\r\n ef");
    ASSERT_TRUE(l);
    ASSERT_EQ(l->tags.size(), 6u);
    EXPECT_EQ(*l->find("v"), "1");
    EXPECT_EQ(*l->find("d"), "example.net");
    EXPECT_EQ(*l->find("h"), "from : to :\r\n subject");
    EXPECT_EQ(strip_whitespace(*l->find("b")), "abcdef");
    EXPECT_EQ(l->find("x"), nullptr);
}

TEST(TagList, EmptyValuesAndTrailingSemicolon) {
    const auto l = parse_tag_list("p=; t=y;  ");
    ASSERT_TRUE(l);
    EXPECT_EQ(*l->find("p"), "");
    EXPECT_EQ(*l->find("t"), "y");
}

TEST(TagList, NamesAreCaseSensitive) {
    const auto l = parse_tag_list("V=1; v=2");
    ASSERT_TRUE(l);
    EXPECT_EQ(*l->find("V"), "1");
    EXPECT_EQ(*l->find("v"), "2");
}

TEST(TagList, Refusals) {
    std::string why;
    EXPECT_FALSE(parse_tag_list("a=1; a=2", &why));
    EXPECT_EQ(why, "tag given twice");
    EXPECT_FALSE(parse_tag_list("1a=1"));
    EXPECT_FALSE(parse_tag_list("a 1"));
    EXPECT_FALSE(parse_tag_list("a=1\r\nb=2"));    // CRLF not followed by WSP is not folding
    EXPECT_FALSE(parse_tag_list("a=\x01"));
    EXPECT_FALSE(parse_tag_list("a=caf\xc3\xa9"));   // 8-bit octets are not VALCHAR
}
