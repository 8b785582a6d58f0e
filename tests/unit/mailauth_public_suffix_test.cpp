#include "mailauth/public_suffix.hpp"

#include <gtest/gtest.h>

#include <filesystem>

using namespace ferry::mailauth;

namespace {

// A few rules of each kind, in the file's own format (comments, sections, UTF-8 rules, text after a rule).
constexpr std::string_view kSmallList =
    "// This Source Code Form is subject to the terms of the Mozilla Public License\n"
    "// ===BEGIN ICANN DOMAINS===\n"
    "com\n"
    "uk\n"
    "co.uk\r\n"
    "\n"
    "// ck : wildcard with an exception\n"
    "*.ck\n"
    "!www.ck\n"
    "jp\n"
    "*.kawasaki.jp\n"
    "!city.kawasaki.jp\n"
    "cn\n"
    "公司.cn\n"
    "中国\n"
    "// ===END ICANN DOMAINS===\n"
    "// ===BEGIN PRIVATE DOMAINS===\n"
    "github.io   this text after whitespace is not part of the rule\n"
    "a.*.bad\n"
    "*\n"
    "// ===END PRIVATE DOMAINS===\n";

const PublicSuffixList& small() {
    static const PublicSuffixList list = PublicSuffixList::parse(kSmallList);
    return list;
}

}  // namespace

TEST(PublicSuffix, ParsesRulesAndSkipsWhatCannotBeUsed) {
    // com uk co.uk *.ck !www.ck jp *.kawasaki.jp !city.kawasaki.jp cn 公司.cn 中国 github.io; "a.*.bad" and "*"
    // are not usable rules.
    EXPECT_EQ(small().size(), 12u);
    EXPECT_EQ(PublicSuffixList::parse("").size(), 0u);
    EXPECT_EQ(PublicSuffixList::parse("// only a comment\n\n  indented\n").size(), 0u);
}

TEST(PublicSuffix, NormalRules) {
    EXPECT_EQ(small().organizational_domain("mail.example.com"), "example.com");
    EXPECT_EQ(small().organizational_domain("a.b.c.example.com"), "example.com");
    EXPECT_EQ(small().organizational_domain("example.com"), "example.com");
    EXPECT_EQ(small().organizational_domain("com"), "com");   // shorter than suffix + 1: the domain itself
    EXPECT_EQ(small().organizational_domain("a.b.example.co.uk"), "example.co.uk");
    EXPECT_EQ(small().organizational_domain("co.uk"), "co.uk");
    EXPECT_EQ(small().organizational_domain("example.uk"), "example.uk");
    EXPECT_EQ(small().public_suffix("a.b.example.co.uk"), "co.uk");
}

TEST(PublicSuffix, WildcardRules) {
    EXPECT_EQ(small().public_suffix("foo.ck"), "foo.ck");
    EXPECT_EQ(small().organizational_domain("foo.ck"), "foo.ck");
    EXPECT_EQ(small().organizational_domain("a.b.foo.ck"), "b.foo.ck");
    EXPECT_EQ(small().organizational_domain("x.y.kawasaki.jp"), "x.y.kawasaki.jp");
    EXPECT_EQ(small().organizational_domain("z.x.y.kawasaki.jp"), "x.y.kawasaki.jp");
    EXPECT_EQ(small().organizational_domain("ck"), "ck");   // the wildcard needs a label to match
}

TEST(PublicSuffix, ExceptionRules) {
    EXPECT_EQ(small().public_suffix("www.ck"), "ck");
    EXPECT_EQ(small().organizational_domain("www.ck"), "www.ck");
    EXPECT_EQ(small().organizational_domain("mail.www.ck"), "www.ck");
    EXPECT_EQ(small().organizational_domain("city.kawasaki.jp"), "city.kawasaki.jp");
    EXPECT_EQ(small().organizational_domain("a.b.city.kawasaki.jp"), "city.kawasaki.jp");
}

TEST(PublicSuffix, UnlistedTopLevelDomainsUseTheImplicitStarRule) {
    EXPECT_EQ(small().organizational_domain("example.test"), "example.test");
    EXPECT_EQ(small().organizational_domain("mail.example.test"), "example.test");
    EXPECT_EQ(small().organizational_domain("test"), "test");
    EXPECT_EQ(small().public_suffix("mail.example.test"), "test");
    EXPECT_EQ(PublicSuffixList::parse("").organizational_domain("a.b.example.org"), "example.org");
}

TEST(PublicSuffix, InternationalizedRulesMatchALabels) {
    EXPECT_EQ(small().organizational_domain("shop.example.xn--fiqs8s"), "example.xn--fiqs8s");   // 中国
    EXPECT_EQ(small().organizational_domain("a.b.xn--55qx5d.cn"), "b.xn--55qx5d.cn");           // 公司.cn
    EXPECT_EQ(small().public_suffix("b.xn--55qx5d.cn"), "xn--55qx5d.cn");
    // A name in U-labels matches the same rules and comes back in the form it was given.
    EXPECT_EQ(small().organizational_domain("a.b.公司.cn"), "b.公司.cn");
    EXPECT_EQ(small().organizational_domain("a.B.XN--55QX5D.CN"), "b.xn--55qx5d.cn");
}

TEST(PublicSuffix, CaseAndTrailingDot) {
    EXPECT_EQ(small().organizational_domain("Mail.Example.CO.UK"), "example.co.uk");
    EXPECT_EQ(small().organizational_domain("mail.example.com."), "example.com");
    EXPECT_EQ(small().organizational_domain("WWW.CK."), "www.ck");
}

TEST(PublicSuffix, MalformedNames) {
    EXPECT_EQ(small().organizational_domain(""), "");
    EXPECT_EQ(small().organizational_domain("."), "");
    EXPECT_EQ(small().organizational_domain("a..Example.com"), "a..example.com");
    EXPECT_EQ(small().public_suffix("a..example.com"), "");
    // A label that is not UTF-8 matches no rule; the labels right of it still do.
    EXPECT_EQ(small().organizational_domain("\xff.example.com"), "example.com");
    EXPECT_EQ(small().organizational_domain("a.example.\xff"), "example.\xff");
}

TEST(PublicSuffix, ALabels) {
    EXPECT_EQ(a_label("bücher"), "xn--bcher-kva");
    EXPECT_EQ(a_label("münchen"), "xn--mnchen-3ya");
    EXPECT_EQ(a_label("中国"), "xn--fiqs8s");
    EXPECT_EQ(a_label("δοκιμή"), "xn--jxalpdlp");
    EXPECT_EQ(a_label("Example"), "example");
    EXPECT_EQ(a_label(""), "");
    EXPECT_FALSE(a_label("\xff"));
    EXPECT_FALSE(a_label("\xc0\x80"));       // overlong
    EXPECT_FALSE(a_label("\xed\xa0\x80"));   // surrogate
    std::string cjk;
    for (int i = 0; i < 85; ++i) cjk += "\xe4\xb8\xad";   // 255 octets of 中
    EXPECT_FALSE(a_label(cjk));
    EXPECT_TRUE(a_label(cjk.substr(3)));
}

TEST(PublicSuffix, DebianList) {
    std::string error;
    const auto list = PublicSuffixList::load(kDebianPublicSuffixList, error);
    ASSERT_TRUE(list) << error;
    EXPECT_GT(list->size(), 5000u);
    EXPECT_EQ(list->organizational_domain("mail.example.co.uk"), "example.co.uk");
    EXPECT_EQ(list->organizational_domain("co.uk"), "co.uk");
    EXPECT_EQ(list->organizational_domain("alice.github.io"), "alice.github.io");   // PRIVATE section
    EXPECT_EQ(list->organizational_domain("www.alice.github.io"), "alice.github.io");
    EXPECT_EQ(list->organizational_domain("mail.example.test"), "example.test");     // not in the list
    EXPECT_EQ(list->organizational_domain("mail.example.com"), "example.com");
    EXPECT_EQ(list->organizational_domain("a.www.ck"), "www.ck");
    EXPECT_EQ(list->organizational_domain("a.b.city.kawasaki.jp"), "city.kawasaki.jp");
    EXPECT_EQ(list->organizational_domain("www.example.xn--fiqs8s"), "example.xn--fiqs8s");
}

TEST(PublicSuffix, LoadErrors) {
    std::string error;
    EXPECT_FALSE(PublicSuffixList::load("/nonexistent/public_suffix_list.dat", error));
    EXPECT_NE(error.find("cannot open"), std::string::npos);
    error.clear();
    EXPECT_FALSE(PublicSuffixList::load("/dev/null", error));
    EXPECT_NE(error.find("no public suffix rule"), std::string::npos);
}
