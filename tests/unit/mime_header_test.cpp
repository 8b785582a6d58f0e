#include "mime/header.hpp"

#include <gtest/gtest.h>

using namespace ferry::mime;
using Addrs = std::vector<std::string>;

namespace {

TEST(MimeHeader, FieldsKeepTheirRawForm) {
    const auto f = header_fields("From: a@b\r\nSubject : hi\r\n there\r\n\tagain\r\nnot a field\r\nX:1");
    ASSERT_EQ(f.size(), 4u);
    EXPECT_EQ(f[0].name, "From");
    EXPECT_EQ(f[0].raw, "From: a@b\r\n");
    EXPECT_EQ(f[1].name, "Subject");
    EXPECT_EQ(f[1].raw, "Subject : hi\r\n there\r\n\tagain\r\n");
    EXPECT_EQ(f[2].name, "");
    EXPECT_EQ(f[2].raw, "not a field\r\n");
    EXPECT_EQ(f[3].name, "X");
    EXPECT_EQ(f[3].raw, "X:1");
    EXPECT_TRUE(header_fields("").empty());
}

TEST(MimeHeader, SectionEndsAtTheFirstEmptyLine) {
    EXPECT_EQ(header_section("A: 1\r\nB: 2\r\n\r\nbody\r\n\r\n"), "A: 1\r\nB: 2\r\n");
    EXPECT_EQ(header_section("A: 1\nB: 2\n\nbody"), "A: 1\nB: 2\n");
    EXPECT_EQ(header_section("A: 1\r\n"), "A: 1\r\n");
}

TEST(MimeHeader, FieldIsFoundCaseInsensitivelyAndUnfolded) {
    const std::string h = "Subject: x\r\nfrom: \"Alice\r\n Smith\" <alice@example.test>\r\nTo: b@example.test\r\n";
    EXPECT_EQ(header_field(h, "From"), "\"Alice Smith\" <alice@example.test>");
    EXPECT_EQ(header_field(h, "to"), "b@example.test");
    EXPECT_FALSE(header_field(h, "Cc"));
    EXPECT_FALSE(header_field(" From: continuation@x\r\n", "From"));   // a continuation line is no field
}

// RFC 5322 3.6 allows one From:. header_field reads only the first, so the second must be counted: the From: check
// of authenticated mail refuses "From: alice" followed by "From: bob" on this count.
TEST(MimeHeader, CountsEveryFieldOfAName) {
    const std::string h = "From: alice@example.test\r\nSubject: x\r\nfrom : bob@example.test\r\n"
                          "X-From: no@x\r\n From: continuation@x\r\nFROM:\r\n\tcarol@example.test\r\n";
    EXPECT_EQ(count_header_fields(h, "From"), 3u);
    EXPECT_EQ(header_field(h, "From"), "alice@example.test");   // the first only
    EXPECT_EQ(count_header_fields(h, "Subject"), 1u);
    EXPECT_EQ(count_header_fields(h, "Sender"), 0u);
    EXPECT_EQ(count_header_fields("From: a@b\r\n", "From"), 1u);
    EXPECT_EQ(count_header_fields("", "From"), 0u);
    EXPECT_EQ(count_header_fields("From: a@b\nFrom: c@d\n", "from"), 2u);   // LF-only lines too (pickup files)
}

TEST(MimeHeader, AddressListForms) {
    EXPECT_EQ(address_list("alice@example.test"), Addrs{"alice@example.test"});
    EXPECT_EQ(address_list("Alice <alice@example.test>"), Addrs{"alice@example.test"});
    EXPECT_EQ(address_list("\"Doe, John\" <john@example.test>, bob@example.test (Bob)"),
              (Addrs{"john@example.test", "bob@example.test"}));
    EXPECT_EQ(address_list("Team: a@x.test, b@y.test;, c@z.test"), (Addrs{"a@x.test", "b@y.test", "c@z.test"}));
    EXPECT_EQ(address_list("<@relay.test:alice@example.test>"), Addrs{"alice@example.test"});
    EXPECT_EQ(address_list("\"odd local\"@example.test"), Addrs{"\"odd local\"@example.test"});
    EXPECT_EQ(address_list("(nested (comment)) alice@example.test"), Addrs{"alice@example.test"});
}

TEST(MimeHeader, AddressListRejectsBrokenSyntax) {
    for (const char* bad : {"\"unterminated <a@x.test>", "(open comment a@x.test", "<a@x.test", "a@x.test>",
                            "<a@x.test> <b@y.test>", "<>", "Team: a@x.test", "<a@x.test> trailing"})
        EXPECT_FALSE(address_list(bad)) << bad;
}

}  // namespace
