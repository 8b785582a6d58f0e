#include "smtp/dsn.hpp"

#include <gtest/gtest.h>

#include <string>

namespace ferry::smtp {
namespace {

TEST(Xtext, DecodesPlainAndHexchars) {
    EXPECT_EQ(xtext_decode(""), "");
    EXPECT_EQ(xtext_decode("abc+2Bdef"), "abc+def");
    EXPECT_EQ(xtext_decode("a+3Db+20c+2B"), "a=b c+");
    EXPECT_EQ(xtext_decode("+00+FF"), std::string("\0\xFF", 2));
    EXPECT_EQ(xtext_decode("!~\"<>"), "!~\"<>");
}

TEST(Xtext, RejectsWhatTheGrammarDoesNot) {
    for (const char* bad : {"a=b", "a b", "+", "+2", "a+2", "+2b", "+zz", "+G0", "caf\xC3\xA9", "\x7F", "a\tb"})
        EXPECT_FALSE(xtext_decode(bad)) << bad;
    EXPECT_FALSE(xtext_decode(std::string("a\0b", 3)));
}

TEST(Xtext, EncodesSpecialsAndRoundTrips) {
    EXPECT_EQ(xtext_encode("alice@example.test"), "alice@example.test");
    EXPECT_EQ(xtext_encode("a+b=c d"), "a+2Bb+3Dc+20d");
    EXPECT_EQ(xtext_encode("\r\n\xC3\xA9"), "+0D+0A+C3+A9");
    std::string all;
    for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
    EXPECT_EQ(xtext_decode(xtext_encode(all)), all);
}

TEST(Notify, ParsesNeverOrAList) {
    EXPECT_EQ(parse_notify("NEVER"), kNotifyNever);
    EXPECT_EQ(parse_notify("never"), kNotifyNever);
    EXPECT_EQ(parse_notify("SUCCESS"), kNotifySuccess);
    EXPECT_EQ(parse_notify("failure,Success"), kNotifySuccess | kNotifyFailure);
    EXPECT_EQ(parse_notify("DELAY,FAILURE,SUCCESS"), kNotifySuccess | kNotifyFailure | kNotifyDelay);
}

TEST(Notify, RejectsMixesRepeatsAndEmptyItems) {
    for (const char* bad : {"", "NEVER,SUCCESS", "SUCCESS,NEVER", "SUCCESS,SUCCESS", "SUCCESS,", ",SUCCESS",
                            "SUCCESS,,FAILURE", "SUCCESS FAILURE", "SOMETIMES", "NEVERMORE"})
        EXPECT_FALSE(parse_notify(bad)) << bad;
}

TEST(Notify, FormatsCanonically) {
    EXPECT_EQ(format_notify(0), "");
    EXPECT_EQ(format_notify(kNotifyNever), "NEVER");
    EXPECT_EQ(format_notify(kNotifyDelay | kNotifySuccess), "SUCCESS,DELAY");
    for (unsigned n : {2u, 4u, 6u, 8u, 10u, 12u, 14u, 1u}) EXPECT_EQ(parse_notify(format_notify(n)), n);
}

TEST(Ret, ParsesFullAndHdrs) {
    EXPECT_EQ(parse_ret("FULL"), Ret::full);
    EXPECT_EQ(parse_ret("hdrs"), Ret::hdrs);
    EXPECT_FALSE(parse_ret("HEADERS"));
    EXPECT_FALSE(parse_ret(""));
    EXPECT_EQ(to_string(Ret::unspecified), "");
    EXPECT_EQ(to_string(Ret::full), "FULL");
    EXPECT_EQ(to_string(Ret::hdrs), "HDRS");
}

TEST(Envid, XtextOfPrintableAsciiUpTo100Octets) {
    EXPECT_TRUE(valid_envid("abc+2Bdef"));
    EXPECT_TRUE(valid_envid("QQ314159+20x"));   // white space is printable in RFC 3461's sense
    EXPECT_TRUE(valid_envid(std::string(100, 'a')));
    EXPECT_FALSE(valid_envid(std::string(100, 'a') + "+2B"));
    EXPECT_TRUE(valid_envid(std::string(98, 'a') + "+2B"));   // 99 octets decoded, 101 encoded
    EXPECT_FALSE(valid_envid(std::string(101, 'a')));
    EXPECT_FALSE(valid_envid(""));
    EXPECT_FALSE(valid_envid("a+0Ab"));   // a line break once decoded
    EXPECT_FALSE(valid_envid("a+C3+A9"));
    EXPECT_FALSE(valid_envid("a+2b"));
}

TEST(Orcpt, Rfc822TypeDecodesXtext) {
    EXPECT_EQ(decode_orcpt("rfc822;alice@example.test"), "rfc822;alice@example.test");
    EXPECT_EQ(decode_orcpt("RFC822;bob+2Bsales@example.test"), "rfc822;bob+sales@example.test");
    EXPECT_EQ(decode_orcpt("x-local;anything+20goes"), "x-local;anything goes");   // any atom as addr-type
    for (const char* bad : {"alice@example.test", ";alice@example.test", "rfc822;", "rfc 822;a@b", "rfc822;a+2",
                            "rfc822;a+0Db@c", "rfc822;caf\xC3\xA9@x", "rfc822;a+C3+A9@x", "a(b);x@y"})
        EXPECT_FALSE(decode_orcpt(bad)) << bad;
}

TEST(Orcpt, Utf8TypeFollowsRfc6533) {
    EXPECT_EQ(decode_orcpt("utf-8;j\xC3\xB6rg@example.test"), "utf-8;j\xC3\xB6rg@example.test");
    EXPECT_EQ(decode_orcpt("UTF-8;j\\x{F6}rg@example.test"), "utf-8;j\xC3\xB6rg@example.test");
    EXPECT_EQ(decode_orcpt("utf-8;a\\x{2B}b@example.test"), "utf-8;a+b@example.test");
    EXPECT_EQ(decode_orcpt("utf-8;\\x{1F600}@example.test"), "utf-8;\xF0\x9F\x98\x80@example.test");
    for (const char* bad : {"utf-8;a+2Bb@example.test",   // '+' is not a QCHAR
                            "utf-8;a\\x{}b@example.test", "utf-8;a\\x{1234567}@x.test", "utf-8;a\\x{D800}@x.test",
                            "utf-8;a\\x{110000}@x.test", "utf-8;a\\x{0A}b@example.test", "utf-8;a\\xF6@x.test",
                            "utf-8;a\\x{F6@x.test", "utf-8;\xC3@example.test", "utf-8;not an address",
                            "utf-8;nodomain"})
        EXPECT_FALSE(decode_orcpt(bad)) << bad;
}

TEST(Orcpt, LongerThanTheRfc3461BoundIsRejected) {
    const std::string local(kMaxOrcptLength - 20, 'a');
    EXPECT_TRUE(decode_orcpt("rfc822;" + local + "@x.test"));
    EXPECT_FALSE(decode_orcpt("rfc822;" + local + std::string(30, 'b') + "@x.test"));
}

}  // namespace
}  // namespace ferry::smtp
