#include "mailauth/spf_record.hpp"

#include <gtest/gtest.h>

using namespace ferry::mailauth;

namespace {

SpfRecord parse(std::string_view text) {
    std::string why;
    auto r = parse_spf_record(text, &why);
    EXPECT_TRUE(r) << text << ": " << why;
    return r ? *r : SpfRecord{};
}

std::string error_of(std::string_view text) {
    std::string why;
    const auto r = parse_spf_record(text, &why);
    EXPECT_FALSE(r) << text << " parsed as " << (r ? to_string(*r) : "");
    return why;
}

IpAddress ip(std::string_view text) {
    const auto a = parse_client_address(text);
    EXPECT_TRUE(a) << text;
    return a ? *a : IpAddress{};
}

}  // namespace

TEST(SpfRecord, VersionSelection) {
    EXPECT_TRUE(is_spf_record("v=spf1"));
    EXPECT_TRUE(is_spf_record("v=spf1 -all"));
    EXPECT_TRUE(is_spf_record("V=SpF1 ~all"));   // case-insensitive (RFC 7208 4.5, ABNF strings)
    EXPECT_FALSE(is_spf_record("v=spf10"));
    EXPECT_FALSE(is_spf_record("v=spf1-all"));
    EXPECT_FALSE(is_spf_record("v=spf1\t-all"));
    EXPECT_FALSE(is_spf_record(" v=spf1 -all"));
    EXPECT_FALSE(is_spf_record("v=spf"));
    EXPECT_FALSE(is_spf_record("spf2.0/pra -all"));
}

TEST(SpfRecord, EmptyRecordAndSpaces) {
    EXPECT_TRUE(parse("v=spf1").terms.empty());
    const SpfRecord r = parse("v=spf1  ip4:192.0.2.1   -all ");   // 1*SP between terms, *SP at the end
    ASSERT_EQ(r.terms.size(), 2u);
    EXPECT_EQ(r.terms[1].qualifier, SpfQualifier::fail);
    EXPECT_EQ(r.terms[1].mechanism, SpfMechanism::all);
}

TEST(SpfRecord, QualifiersAndEveryMechanism) {
    const SpfRecord r = parse("v=spf1 +all -include:_spf.example.com ~a ?mx ptr ip4:192.0.2.0/24 ip6:2001:db8::/32 "
                              "exists:%{ir}.bl.example.org");
    ASSERT_EQ(r.terms.size(), 8u);
    EXPECT_EQ(r.terms[0].qualifier, SpfQualifier::pass);
    EXPECT_EQ(r.terms[0].mechanism, SpfMechanism::all);
    EXPECT_EQ(r.terms[1].qualifier, SpfQualifier::fail);
    EXPECT_EQ(r.terms[1].mechanism, SpfMechanism::include);
    EXPECT_EQ(r.terms[1].domain_spec, "_spf.example.com");
    EXPECT_EQ(r.terms[2].qualifier, SpfQualifier::softfail);
    EXPECT_EQ(r.terms[2].mechanism, SpfMechanism::a);
    EXPECT_EQ(r.terms[2].domain_spec, "");
    EXPECT_EQ(r.terms[3].qualifier, SpfQualifier::neutral);
    EXPECT_EQ(r.terms[3].mechanism, SpfMechanism::mx);
    EXPECT_EQ(r.terms[4].qualifier, SpfQualifier::pass);   // no qualifier: "+"
    EXPECT_EQ(r.terms[4].mechanism, SpfMechanism::ptr);
    EXPECT_EQ(r.terms[5].mechanism, SpfMechanism::ip4);
    EXPECT_EQ(r.terms[5].network, ip("192.0.2.0"));
    EXPECT_EQ(r.terms[5].cidr4, 24);
    EXPECT_EQ(r.terms[6].mechanism, SpfMechanism::ip6);
    EXPECT_EQ(r.terms[6].network, ip("2001:db8::"));
    EXPECT_EQ(r.terms[6].cidr6, 32);
    EXPECT_EQ(r.terms[7].mechanism, SpfMechanism::exists);
    EXPECT_EQ(r.terms[7].domain_spec, "%{ir}.bl.example.org");
    EXPECT_FALSE(r.redirect());
    EXPECT_FALSE(r.explanation());
    EXPECT_TRUE(r.has_all());
}

TEST(SpfRecord, MechanismNamesAreCaseInsensitive) {
    const SpfRecord r = parse("v=spf1 A:Example.COM MX IP4:192.0.2.1 -ALL");
    ASSERT_EQ(r.terms.size(), 4u);
    EXPECT_EQ(r.terms[0].mechanism, SpfMechanism::a);
    EXPECT_EQ(r.terms[0].domain_spec, "Example.COM");
    EXPECT_EQ(r.terms[1].mechanism, SpfMechanism::mx);
    EXPECT_EQ(r.terms[2].mechanism, SpfMechanism::ip4);
    EXPECT_EQ(r.terms[3].mechanism, SpfMechanism::all);
    EXPECT_EQ(to_string(r), "v=spf1 a:Example.COM mx ip4:192.0.2.1 -all");
}

TEST(SpfRecord, DualCidrLengths) {
    const SpfRecord r = parse("v=spf1 a/24//64 mx//48 a:example.com/0 mx:example.com//0 a a:example.com/32//128");
    ASSERT_EQ(r.terms.size(), 6u);
    EXPECT_EQ(r.terms[0].cidr4, 24);
    EXPECT_EQ(r.terms[0].cidr6, 64);
    EXPECT_EQ(r.terms[0].domain_spec, "");
    EXPECT_EQ(r.terms[1].cidr4, 32);
    EXPECT_EQ(r.terms[1].cidr6, 48);
    EXPECT_EQ(r.terms[2].cidr4, 0);
    EXPECT_EQ(r.terms[2].domain_spec, "example.com");
    EXPECT_EQ(r.terms[3].cidr6, 0);
    EXPECT_EQ(r.terms[3].cidr4, 32);
    EXPECT_EQ(r.terms[4].cidr4, 32);
    EXPECT_EQ(r.terms[4].cidr6, 128);
    EXPECT_EQ(to_string(r.terms[5]), "a:example.com");
    // ip6 lengths above 32 are fine on a (RFC 7208 5.3: a//33 is not an ip4 length).
    EXPECT_EQ(parse("v=spf1 a//33").terms[0].cidr6, 33);
}

TEST(SpfRecord, CidrLengthErrors) {
    EXPECT_NE(error_of("v=spf1 a/33").find("IPv4 CIDR"), std::string::npos);
    EXPECT_NE(error_of("v=spf1 a//129").find("IPv6 CIDR"), std::string::npos);
    error_of("v=spf1 mx/33 -all");
    error_of("v=spf1 mx//129 -all");
    error_of("v=spf1 a/24/64 -all");        // the ip6 length needs "//"
    error_of("v=spf1 a//24//64 -all");
    error_of("v=spf1 ip4:192.0.2.1/33");
    error_of("v=spf1 ip4:192.0.2.1/032");   // no leading zeros (as in ip4-network)
    error_of("v=spf1 ip4:192.0.2.1//32");   // no dual length on ip4
    error_of("v=spf1 ip4:192.0.2.1/");
    error_of("v=spf1 ip6:2001:db8::/129");
    error_of("v=spf1 ip6:::1.1.1.1//33");
    error_of("v=spf1 a/");
    error_of("v=spf1 a/-1");
    EXPECT_EQ(parse("v=spf1 ip4:1.1.1.1/0").terms[0].cidr4, 0);
    EXPECT_EQ(parse("v=spf1 ip6:::/0").terms[0].cidr6, 0);
    EXPECT_EQ(parse("v=spf1 ip6:::1/128").terms[0].cidr6, 128);
}

TEST(SpfRecord, SlashInsideADomainSpecIsNotACidr) {
    // A domain-spec may hold any visible character but '%' (RFC 7208 7.1); the lengths are read from the right.
    const SpfRecord r = parse("v=spf1 a:foo:bar/baz.example.com mx:foo/bar.example.com/24");
    EXPECT_EQ(r.terms[0].domain_spec, "foo:bar/baz.example.com");
    EXPECT_EQ(r.terms[0].cidr4, 32);
    EXPECT_EQ(r.terms[1].domain_spec, "foo/bar.example.com");
    EXPECT_EQ(r.terms[1].cidr4, 24);
}

TEST(SpfRecord, Ip4AndIp6Networks) {
    error_of("v=spf1 ip4");
    error_of("v=spf1 ip4:");
    error_of("v=spf1 ip4:192.0.2");           // no shortened addresses (RFC 7208 5.6)
    error_of("v=spf1 ip4:192.0.2.256");
    error_of("v=spf1 ip4:192.0.02.1");
    error_of("v=spf1 ip4:192.0.2.1:8080");
    error_of("v=spf1 ip4:2001:db8::1");
    error_of("v=spf1 -all ip6");
    error_of("v=spf1 ip6::CAFE::BABE");
    error_of("v=spf1 ip6:192.0.2.1");
    error_of("v=spf1 ip6:2001:db8::1%eth0");
    const SpfRecord r = parse("v=spf1 ip6:::FFFF:1.2.3.4 ip6:CAFE:BABE:8000::/33 ip4:0.0.0.0/0");
    EXPECT_TRUE(r.terms[0].network.v6);   // an ip6 network stays IPv6, mapped or not
    EXPECT_EQ(to_string(r.terms[1]), "ip6:cafe:babe:8000::/33");
    EXPECT_EQ(to_string(r.terms[2]), "ip4:0.0.0.0/0");
}

TEST(SpfRecord, DomainSpecSyntax) {
    // RFC 7208 7.1: domain-end is "." toplabel [ "." ] or a macro-expand.
    parse("v=spf1 a:example.com a:example.com. a:foo.example.xn--zckzah a:%{d} a:%{d}.example.com a:e-xample.1-2");
    error_of("v=spf1 a:");
    error_of("v=spf1 include:");
    error_of("v=spf1 include");
    error_of("v=spf1 exists");
    error_of("v=spf1 exists:");
    error_of("v=spf1 ptr:");
    error_of("v=spf1 a:museum");        // a toplabel alone
    error_of("v=spf1 a:museum.");
    error_of("v=spf1 a:111.222.33.44");  // all-numeric toplabel
    error_of("v=spf1 mx:abc.123");
    error_of("v=spf1 a:example.-com");
    error_of("v=spf1 a:example.com-");
    error_of("v=spf1 a:example.com:8080");
    error_of("v=spf1 a:example.com..");
    error_of("v=spf1 a:%{d}.");
    error_of("v=spf1 a:%{d}x");
    error_of(std::string("v=spf1 a:foo.example.com\0", 25));
    error_of("v=spf1 a:\xef\xbb\xbfgarbage.example.net -all");
    error_of("v=spf1 exists:mail.example.com/24");
    error_of("v=spf1 include:ip5.example.com/24");
    error_of("v=spf1 ptr/0");
}

TEST(SpfRecord, MacroErrorsAnywhereAreSyntaxErrors) {
    error_of("v=spf1 -exists:%(ir).sbl.example.com ?all");
    error_of("v=spf1 exists:foo%(ir).sbl.example.com ?all");
    error_of("v=spf1 exists:foo%.sbl.example.com ?all");
    error_of("v=spf1 a:%{a}.example.com -all");
    error_of("v=spf1 a:%{d0}.example.com");
    error_of("v=spf1 a:%{d2r.example.com");
    error_of("v=spf1 -all exp=%{r}.example.com");   // c, r, t only in the explanation text (RFC 7208 7.2)
    error_of("v=spf1 exists:%{t}.example.com");
    error_of("v=spf1 -all foo=%abc");               // unknown modifiers need valid macros too
    parse("v=spf1 -all foo=%{c}%{r}%{t}%%");
    parse("v=spf1 exists:%{l1r+-}.%{d2}._spf.%{V}.%{h}.%{o}.%{s}.%{p}.%{i}");
}

TEST(SpfRecord, Modifiers) {
    const SpfRecord r = parse("v=spf1 mx Redirect=_spf.example.com EXP=explain.%{d} moo.cow-far_out=man:dog/cat x=");
    ASSERT_EQ(r.terms.size(), 5u);
    ASSERT_TRUE(r.redirect());
    EXPECT_EQ(*r.redirect(), "_spf.example.com");
    ASSERT_TRUE(r.explanation());
    EXPECT_EQ(*r.explanation(), "explain.%{d}");
    EXPECT_EQ(r.terms[3].kind, SpfTerm::Kind::modifier);
    EXPECT_EQ(r.terms[3].name, "moo.cow-far_out");
    EXPECT_EQ(r.terms[3].value, "man:dog/cat");
    EXPECT_EQ(r.terms[4].name, "x");
    EXPECT_EQ(r.terms[4].value, "");
    EXPECT_FALSE(r.has_all());
    EXPECT_EQ(to_string(r), "v=spf1 mx redirect=_spf.example.com exp=explain.%{d} moo.cow-far_out=man:dog/cat x=");
    // Unknown modifiers may repeat; "default=" is one of them.
    EXPECT_EQ(parse("v=spf1 default=pass default=+ a=b").terms.size(), 3u);
}

TEST(SpfRecord, ModifierErrors) {
    EXPECT_EQ(error_of("v=spf1 redirect=a.example.com -all redirect=a.example.com"),
              "redirect= given twice in \"redirect=a.example.com\"");
    EXPECT_EQ(error_of("v=spf1 exp=a.example.com -all exp=b.example.com"), "exp= given twice in \"exp=b.example.com\"");
    error_of("v=spf1 exp= -all");
    error_of("v=spf1 ?all redirect=");
    error_of("v=spf1 exp=-all");            // a known modifier with a bad domain-spec is no unknown modifier
    error_of("v=spf1 redirect=-all ?all");
    error_of("v=spf1 redirect:example.com");   // a modifier, not a mechanism
    error_of("v=spf1 =all");
    error_of("v=spf1 1up=foo");
    error_of("v=spf1 moo.cow:far_out=man:dog/cat ip4:1.2.3.4 -all");   // '=' must come before ':' or '/'
    error_of("v=spf1 moo.cow/far_out=man:dog/cat ip4:1.2.3.4 -all");
    error_of("v=spf1 -redirect=example.com");
}

TEST(SpfRecord, OtherSyntaxErrors) {
    EXPECT_EQ(error_of("v=spf1 ip4:1.2.3.4 -all moo"), "unknown mechanism in \"moo\"");
    error_of("v=spf1 -all:foobar");
    error_of("v=spf1 -all.");
    error_of("v=spf1 -all/8");
    error_of("v=spf1 \x80" "a:example.net -all");
    error_of("v=spf1 a:example.net \x96" "all");
    error_of("v=spf1 a:example.net\t-all");
    error_of("v=spf1 ++all");
    error_of("v=spf1 +");
    error_of("v=spf10 -all");
    error_of("");
    // The quoted term is printable and bounded.
    const std::string why = error_of("v=spf1 " + std::string(100, 'z') + "\x01");
    EXPECT_EQ(why, "unknown mechanism in \"" + std::string(40, 'z') + "...\"");
}

TEST(SpfRecord, PrintsBackToTheSameTerms) {
    for (const char* text : {"v=spf1 -include:_spf.example.com ~a:%{d}/24//64 ?mx//0 ptr:%{d2} -ip4:10.0.0.0/8 "
                             "ip6:2001:db8:0:0::1/64 exists:%{ir}.%{v}._spf.%{d2} redirect=%{d}.x.example exp=e.%{d} "
                             "u=%{c}",
                             "v=spf1", "v=spf1 ip6:::ffff:192.0.2.1 ip6:::192.0.2.1 -all"}) {
        const SpfRecord r = parse(text);
        EXPECT_EQ(parse(to_string(r)), r) << to_string(r);
    }
}

TEST(SpfRecord, ClientAddresses) {
    EXPECT_EQ(to_string(ip("192.0.2.1")), "192.0.2.1");
    EXPECT_FALSE(ip("192.0.2.1").v6);
    // IPv4-mapped IPv6 is the IPv4 client (RFC 7208 5).
    EXPECT_EQ(ip("::ffff:192.0.2.1"), ip("192.0.2.1"));
    EXPECT_EQ(ip("::FFFF:1.2.3.4"), ip("1.2.3.4"));
    EXPECT_TRUE(ip("2001:db8::1").v6);
    EXPECT_EQ(to_string(ip("2001:DB8:0:0::CB01")), "2001:db8::cb01");
    EXPECT_FALSE(parse_client_address(""));
    EXPECT_FALSE(parse_client_address("example.com"));
    EXPECT_FALSE(parse_client_address("[192.0.2.1]"));
    EXPECT_FALSE(parse_client_address(std::string("1.2.3.4\0", 8)));
}

TEST(SpfRecord, NetworksMatch) {
    EXPECT_TRUE(in_network(ip("192.0.2.77"), ip("192.0.2.0"), 24));
    EXPECT_FALSE(in_network(ip("192.0.3.1"), ip("192.0.2.0"), 24));
    EXPECT_TRUE(in_network(ip("192.0.2.1"), ip("192.0.2.1"), 32));
    EXPECT_FALSE(in_network(ip("192.0.2.2"), ip("192.0.2.1"), 32));
    EXPECT_TRUE(in_network(ip("203.0.113.9"), ip("1.1.1.1"), 0));
    EXPECT_TRUE(in_network(ip("192.0.2.130"), ip("192.0.2.128"), 25));
    EXPECT_FALSE(in_network(ip("192.0.2.127"), ip("192.0.2.128"), 25));
    EXPECT_TRUE(in_network(ip("10.255.1.1"), ip("10.240.0.0"), 12));
    EXPECT_FALSE(in_network(ip("10.239.1.1"), ip("10.240.0.0"), 12));
    EXPECT_TRUE(in_network(ip("2001:db8:1234::cafe"), ip("2001:db8:1234::dead"), 64));
    EXPECT_FALSE(in_network(ip("2001:db8:1235::cafe"), ip("2001:db8:1234::dead"), 64));
    EXPECT_TRUE(in_network(ip("cafe:babe:8000::"), ip("cafe:babe:8000::"), 33));
    EXPECT_FALSE(in_network(ip("cafe:babe::"), ip("cafe:babe:8000::"), 33));
    // Families never match each other, not even with /0.
    EXPECT_FALSE(in_network(ip("1.2.3.4"), ip("::"), 0));
    EXPECT_FALSE(in_network(ip("::1"), ip("0.0.0.0"), 0));
}

TEST(SpfRecord, CheckHostDomains) {
    EXPECT_EQ(spf_check_domain("example.com"), "example.com");
    EXPECT_EQ(spf_check_domain("Mail.Example.COM."), "Mail.Example.COM");
    EXPECT_EQ(spf_check_domain("_spf.example.com"), "_spf.example.com");
    EXPECT_TRUE(spf_check_domain(std::string(63, 'a') + ".example.com"));
    EXPECT_FALSE(spf_check_domain(std::string(64, 'a') + ".example.com"));   // label over 63 (RFC 7208 4.3)
    std::string long_name;
    while (long_name.size() < 260) long_name += "abcdefghi.";
    long_name += "com";   // 263 octets
    EXPECT_FALSE(spf_check_domain(long_name));
    EXPECT_TRUE(spf_check_domain(long_name.substr(long_name.size() - 253)));
    EXPECT_FALSE(spf_check_domain(""));
    EXPECT_FALSE(spf_check_domain("."));
    EXPECT_FALSE(spf_check_domain("localhost"));      // not multi-label
    EXPECT_FALSE(spf_check_domain("A2345678"));
    EXPECT_FALSE(spf_check_domain("[1.2.3.5]"));      // address literal
    EXPECT_FALSE(spf_check_domain("192.0.2.1"));       // an address, not a name
    EXPECT_FALSE(spf_check_domain("A...example.com"));
    EXPECT_FALSE(spf_check_domain(".example.com"));
    EXPECT_FALSE(spf_check_domain("example.com.."));
    EXPECT_FALSE(spf_check_domain("exa mple.com"));
    EXPECT_FALSE(spf_check_domain("caf\xc3\xa9.example"));   // U-labels are converted by the caller
}
