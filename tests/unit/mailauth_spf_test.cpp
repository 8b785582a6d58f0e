// check_host() end to end over FakeDns: every mechanism, the modifiers, the include table, the limits of
// RFC 7208 4.6.4, explanations, macros as evaluated, and the MAIL FROM / HELO identities.
#include "mailauth/spf.hpp"

#include <gtest/gtest.h>

#include <algorithm>

#include "dns/wire.hpp"
#include "fake_dns.hpp"

using namespace ferry::mailauth;
using ferry::testing::FakeDns;
using ferry::testing::run_sync;
namespace dns = ferry::dns;

namespace {

constexpr std::time_t kNow = 1700000000;

SpfOutcome mail_from(FakeDns& d, const std::string& ip, const std::string& sender,
                     const std::string& helo = "mail.example.org") {
    return run_sync(check_spf_mail_from(d, SpfQuery{ip, helo, sender, "mx.example.net"}, kNow));
}

SpfOutcome helo(FakeDns& d, const std::string& ip, const std::string& name) {
    return run_sync(check_spf_helo(d, SpfQuery{ip, name, "someone@example.com", "mx.example.net"}, kNow));
}

// The result for sender user@example.com whose record is `record`, with `setup` adding more.
SpfResult result_of(const std::string& record, const std::string& ip = "192.0.2.1",
                    void (*setup)(FakeDns&) = nullptr) {
    FakeDns d;
    d.txt("example.com", record);
    if (setup) setup(d);
    return mail_from(d, ip, "user@example.com").result;
}

std::size_t count_asked(const FakeDns& d, const std::string& name, int type) {
    return static_cast<std::size_t>(std::count(d.asked.begin(), d.asked.end(), std::make_pair(name, type)));
}

bool printable_line(const std::string& s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c <= 0x7e; });
}

}  // namespace

TEST(Spf, QualifiersGiveTheirResults) {
    FakeDns d;
    d.txt("example.com", "v=spf1 ip4:192.0.2.0/24 -ip4:198.51.100.1 ~ip4:198.51.100.2 ?ip4:198.51.100.3 -all");
    SpfOutcome o = mail_from(d, "192.0.2.77", "user@example.com");
    EXPECT_EQ(o.result, SpfResult::pass);
    EXPECT_EQ(o.reason, "matched ip4:192.0.2.0/24");
    EXPECT_EQ(o.identity, "mailfrom");
    EXPECT_EQ(o.domain, "example.com");
    EXPECT_EQ(o.sender, "user@example.com");
    EXPECT_EQ(o.explanation, "");
    EXPECT_EQ(mail_from(d, "198.51.100.1", "user@example.com").result, SpfResult::fail);
    EXPECT_EQ(mail_from(d, "198.51.100.2", "user@example.com").result, SpfResult::softfail);
    EXPECT_EQ(mail_from(d, "198.51.100.3", "user@example.com").result, SpfResult::neutral);
    o = mail_from(d, "203.0.113.5", "user@example.com");
    EXPECT_EQ(o.result, SpfResult::fail);
    EXPECT_EQ(o.reason, "matched -all");
}

TEST(Spf, DefaultResultIsNeutral) {
    FakeDns d;
    d.txt("example.com", "v=spf1 ip4:192.0.2.1");
    const SpfOutcome o = mail_from(d, "192.0.2.2", "user@example.com");
    EXPECT_EQ(o.result, SpfResult::neutral);
    EXPECT_EQ(o.reason, "default result neutral (no match, no all)");
    EXPECT_EQ(result_of("v=spf1"), SpfResult::neutral);
    EXPECT_EQ(result_of("v=spf1 default=+ default=pass"), SpfResult::neutral);   // unknown modifiers do nothing
}

TEST(Spf, RecordSelection) {
    FakeDns d;
    d.txt("none.example", "google-site-verification=abc").txt("none.example", "v=spf10 +all");
    d.txt("two.example", "v=spf1 -all").txt("two.example", "V=sPf1 +all");
    d.txt("other.example", "v=spf1 -all").txt("other.example", "\x96 not spf at all").txt("other.example", "spf2.0/pra +all");
    d.txt("case.example", "V=SpF1 ~all");
    d.exists("empty.example");
    d.temporary("down.example");
    d.txt("bad.example", "v=spf1 ip4:192.0.2.1 -all moo");
    d.txt("split.example", std::string("v=spf1 ip4:192.0.2.1 ") + std::string(300, ' ') + "-all");   // over 255 octets

    SpfOutcome o = mail_from(d, "192.0.2.1", "a@none.example");
    EXPECT_EQ(o.result, SpfResult::none);
    EXPECT_EQ(o.reason, "no SPF record");
    EXPECT_EQ(mail_from(d, "192.0.2.1", "a@empty.example").result, SpfResult::none);
    o = mail_from(d, "192.0.2.1", "a@nowhere.example");
    EXPECT_EQ(o.result, SpfResult::none);   // NXDOMAIN
    EXPECT_EQ(o.reason, "no SPF record (no such domain)");
    o = mail_from(d, "192.0.2.1", "a@two.example");
    EXPECT_EQ(o.result, SpfResult::permerror);
    EXPECT_EQ(o.reason, "more than one SPF record");
    EXPECT_EQ(mail_from(d, "192.0.2.1", "a@other.example").result, SpfResult::fail);
    EXPECT_EQ(mail_from(d, "192.0.2.1", "a@case.example").result, SpfResult::softfail);
    o = mail_from(d, "192.0.2.1", "a@down.example");
    EXPECT_EQ(o.result, SpfResult::temperror);
    EXPECT_EQ(o.reason, "DNS failure looking up the SPF record of down.example");
    o = mail_from(d, "192.0.2.1", "a@bad.example");
    EXPECT_EQ(o.result, SpfResult::permerror);   // detected even after the matching term (RFC 7208 4.6)
    EXPECT_EQ(o.reason, "syntax error: unknown mechanism in \"moo\"");
    EXPECT_EQ(mail_from(d, "192.0.2.2", "a@split.example").result, SpfResult::fail);   // strings joined
}

TEST(Spf, UnusableDomainsGiveNoneWithoutAsking) {
    FakeDns d;
    d.txt("example.com", "v=spf1 -all");
    for (const std::string& sender : {"a@" + std::string(64, 'x') + ".example.com", std::string("foo@[192.0.2.1]"),
                                     std::string("foo@localhost"), std::string("a@A...example.com"),
                                     std::string("a@192.0.2.1"), std::string("a@exa_mple!.com")}) {
        const SpfOutcome o = mail_from(d, "192.0.2.1", sender);
        EXPECT_EQ(o.result, SpfResult::none) << sender;
        EXPECT_EQ(o.domain, "") << sender;
        EXPECT_TRUE(printable_line(o.reason) && o.reason.size() <= 200) << o.reason;
    }
    EXPECT_TRUE(d.asked.empty());
    // 63 octets is fine.
    d.txt(std::string(63, 'x') + ".example.com", "v=spf1 -all");
    EXPECT_EQ(mail_from(d, "192.0.2.1", "a@" + std::string(63, 'x') + ".example.com").result, SpfResult::fail);
    // A trailing dot is ignored, and the domain is reported in lower case.
    const SpfOutcome dotted = mail_from(d, "192.0.2.1", "a@Example.COM.");
    EXPECT_EQ(dotted.result, SpfResult::fail);
    EXPECT_EQ(dotted.domain, "example.com");
    // A bad client address gives none too.
    EXPECT_EQ(mail_from(d, "not-an-ip", "a@example.com").result, SpfResult::none);
}

TEST(Spf, InternationalizedDomainsAreLookedUpAsALabels) {
    FakeDns d;
    d.txt("xn--caf-dma.example", "v=spf1 -all");
    const SpfOutcome o = mail_from(d, "192.0.2.1", "user@caf\xc3\xa9.example");
    EXPECT_EQ(o.result, SpfResult::fail);
    EXPECT_EQ(o.domain, "xn--caf-dma.example");
}

TEST(Spf, AMechanism) {
    auto setup = [](FakeDns& d) {
        d.a("example.com", "192.0.2.10").a("example.com", "192.0.2.11").aaaa("example.com", "2001:db8::10");
        d.a("other.example", "198.51.100.7");
        d.a("net.example", "203.0.113.1").aaaa("net.example", "2001:db8:1234::dead:beef");
        d.temporary("down.example");
    };
    EXPECT_EQ(result_of("v=spf1 a -all", "192.0.2.11", setup), SpfResult::pass);
    EXPECT_EQ(result_of("v=spf1 a -all", "192.0.2.12", setup), SpfResult::fail);
    EXPECT_EQ(result_of("v=spf1 a -all", "2001:db8::10", setup), SpfResult::pass);   // AAAA for IPv6
    EXPECT_EQ(result_of("v=spf1 a -all", "::ffff:192.0.2.10", setup), SpfResult::pass);   // mapped: A
    EXPECT_EQ(result_of("v=spf1 a:other.example -all", "198.51.100.7", setup), SpfResult::pass);
    EXPECT_EQ(result_of("v=spf1 a:other.example -all", "192.0.2.10", setup), SpfResult::fail);
    EXPECT_EQ(result_of("v=spf1 a:nowhere.example -all", "192.0.2.10", setup), SpfResult::fail);
    EXPECT_EQ(result_of("v=spf1 a:down.example -all", "192.0.2.10", setup), SpfResult::temperror);
    // Dual CIDR lengths: /24 for IPv4 clients, //64 for IPv6 clients.
    EXPECT_EQ(result_of("v=spf1 a:net.example/24//64 -all", "203.0.113.200", setup), SpfResult::pass);
    EXPECT_EQ(result_of("v=spf1 a:net.example/24//64 -all", "203.0.114.1", setup), SpfResult::fail);
    EXPECT_EQ(result_of("v=spf1 a:net.example/24//64 -all", "2001:db8:1234::cafe:babe", setup), SpfResult::pass);
    EXPECT_EQ(result_of("v=spf1 a:net.example/24 -all", "2001:db8:1234::cafe:babe", setup), SpfResult::fail);
    EXPECT_EQ(result_of("v=spf1 a:net.example//64 -all", "203.0.113.200", setup), SpfResult::fail);
    EXPECT_EQ(result_of("v=spf1 a:net.example/0 -all", "192.0.2.99", setup), SpfResult::pass);
    EXPECT_EQ(result_of("v=spf1 a:net.example//0 -all", "192.0.2.99", setup), SpfResult::fail);
    EXPECT_EQ(result_of("v=spf1 a:net.example//0 -all", "2001:db8:ffff::1", setup), SpfResult::pass);
    EXPECT_EQ(result_of("v=spf1 a:net.example/33 -all", "203.0.113.1", setup), SpfResult::permerror);
    // No address of the client's family: no match, even with /0.
    EXPECT_EQ(result_of("v=spf1 a:other.example//0 -all", "2001:db8::1", setup), SpfResult::fail);
    // A domain-spec with characters no host name has is still looked up (RFC 7208 7.1: any visible character).
    FakeDns d;
    d.txt("example.com", "v=spf1 a:foo:bar/baz.example.com -all").a("foo:bar/baz.example.com", "192.0.2.1");
    EXPECT_EQ(mail_from(d, "192.0.2.1", "u@example.com").result, SpfResult::pass);
    EXPECT_EQ(count_asked(d, "foo:bar/baz.example.com", dns::kTypeA), 1u);
}

TEST(Spf, MxMechanism) {
    auto setup = [](FakeDns& d) {
        d.mx("example.com", 10, "mx1.example.com").mx("example.com", 20, "mx2.example.com");
        d.a("mx1.example.com", "192.0.2.1").a("mx2.example.com", "192.0.2.2").aaaa("mx2.example.com", "2001:db8::2");
        d.a("nomx.example", "192.0.2.50");   // an A record but no MX: no implicit MX (RFC 7208 5.4)
        d.mx("null.example", 0, "");         // RFC 7505 null MX
        d.mx("half.example", 10, "down.example").temporary("down.example");
    };
    EXPECT_EQ(result_of("v=spf1 mx -all", "192.0.2.2", setup), SpfResult::pass);
    EXPECT_EQ(result_of("v=spf1 mx -all", "2001:db8::2", setup), SpfResult::pass);
    EXPECT_EQ(result_of("v=spf1 mx -all", "192.0.2.3", setup), SpfResult::fail);
    EXPECT_EQ(result_of("v=spf1 mx/30 -all", "192.0.2.3", setup), SpfResult::pass);
    EXPECT_EQ(result_of("v=spf1 mx//64 -all", "2001:db8::ffff", setup), SpfResult::pass);
    EXPECT_EQ(result_of("v=spf1 mx:nomx.example -all", "192.0.2.50", setup), SpfResult::fail);
    EXPECT_EQ(result_of("v=spf1 mx:null.example ?all", "192.0.2.50", setup), SpfResult::neutral);
    EXPECT_EQ(result_of("v=spf1 mx:half.example -all", "192.0.2.1", setup), SpfResult::temperror);
}

TEST(Spf, MxLimitTenAllowedElevenPermerror) {
    FakeDns d;
    for (int i = 0; i < 10; ++i) d.mx("ten.example", static_cast<std::uint16_t>(i), "h" + std::to_string(i) + ".example");
    for (int i = 0; i < 11; ++i) d.mx("eleven.example", static_cast<std::uint16_t>(i), "h" + std::to_string(i) + ".example");
    for (int i = 0; i < 11; ++i) d.a("h" + std::to_string(i) + ".example", "192.0.2." + std::to_string(i + 1));
    d.txt("a.example", "v=spf1 mx:ten.example -all").txt("b.example", "v=spf1 mx:eleven.example -all");
    EXPECT_EQ(mail_from(d, "192.0.2.10", "u@a.example").result, SpfResult::pass);   // the tenth host
    const SpfOutcome o = mail_from(d, "192.0.2.1", "u@b.example");
    EXPECT_EQ(o.result, SpfResult::permerror);   // even though the first would match
    EXPECT_EQ(o.reason, "mx:eleven.example: more than 10 MX records");
}

TEST(Spf, PtrMechanism) {
    FakeDns d;
    d.ptr("1.2.0.192.in-addr.arpa", "mail.example.com").ptr("1.2.0.192.in-addr.arpa", "fake.example.com");
    d.a("mail.example.com", "192.0.2.1");
    d.a("fake.example.com", "198.51.100.1");   // does not point back: not validated
    d.ptr(*dns::reverse_name("2001:db8::1"), "v6.example.com");
    d.aaaa("v6.example.com", "2001:db8::1");
    d.temporary("2.2.0.192.in-addr.arpa");
    d.txt("example.com", "v=spf1 ptr -all");
    d.txt("sub.example.com", "v=spf1 ptr:example.com -all");
    d.txt("fake.example.com", "v=spf1 ptr:fake.example.com -all");
    d.txt("other.example", "v=spf1 ptr:ample.com -all");   // "ample.com" is no parent of "mail.example.com"
    EXPECT_EQ(mail_from(d, "192.0.2.1", "u@example.com").result, SpfResult::pass);
    EXPECT_EQ(mail_from(d, "192.0.2.1", "u@sub.example.com").result, SpfResult::pass);
    EXPECT_EQ(mail_from(d, "192.0.2.1", "u@fake.example.com").result, SpfResult::fail);
    EXPECT_EQ(mail_from(d, "192.0.2.1", "u@other.example").result, SpfResult::fail);
    EXPECT_EQ(mail_from(d, "2001:db8::1", "u@v6.example.com").result, SpfResult::none);   // no record there
    d.txt("v6.example.com", "v=spf1 ptr -all");
    EXPECT_EQ(mail_from(d, "2001:db8::1", "u@v6.example.com").result, SpfResult::pass);
    // A DNS error on the PTR query is no match, not temperror (RFC 7208 5.5).
    EXPECT_EQ(mail_from(d, "192.0.2.2", "u@example.com").result, SpfResult::fail);
    EXPECT_EQ(mail_from(d, "192.0.2.9", "u@example.com").result, SpfResult::fail);   // no PTR at all
}

TEST(Spf, PtrLooksAtTheFirstTenNamesOnly) {
    FakeDns d;
    for (int i = 0; i < 10; ++i) d.ptr("5.2.0.192.in-addr.arpa", "h" + std::to_string(i) + ".other.example");
    d.ptr("5.2.0.192.in-addr.arpa", "mail.example.com");   // the eleventh
    d.a("mail.example.com", "192.0.2.5");
    d.txt("example.com", "v=spf1 ptr ?all");
    const SpfOutcome o = mail_from(d, "192.0.2.5", "u@example.com");
    EXPECT_EQ(o.result, SpfResult::neutral);   // ignored, not a permerror (RFC 7208 4.6.4)
    EXPECT_EQ(count_asked(d, "mail.example.com", dns::kTypeA), 0u);
}

TEST(Spf, Ip6Mechanism) {
    EXPECT_EQ(result_of("v=spf1 ip6:2001:db8::/32 -all", "2001:db8:ffff::1"), SpfResult::pass);
    EXPECT_EQ(result_of("v=spf1 ip6:2001:db8::/32 -all", "2001:db9::1"), SpfResult::fail);
    EXPECT_EQ(result_of("v=spf1 ip6:2001:db8::1 -all", "2001:db8::1"), SpfResult::pass);
    EXPECT_EQ(result_of("v=spf1 ip6:cafe:babe:8000::/33 ?all", "cafe:babe:8000::"), SpfResult::pass);
    // IPv4 clients, mapped ones too, never match ip6 (RFC 7208 5).
    EXPECT_EQ(result_of("v=spf1 ip6:::/0 ?all", "192.0.2.1"), SpfResult::neutral);
    EXPECT_EQ(result_of("v=spf1 ip6:::FFFF:1.2.3.4 ?all", "::ffff:1.2.3.4"), SpfResult::neutral);
    EXPECT_EQ(result_of("v=spf1 -ip4:1.2.3.4 ip6:::FFFF:1.2.3.4", "::FFFF:1.2.3.4"), SpfResult::fail);
    EXPECT_EQ(result_of("v=spf1 ip4:0.0.0.0/0 ?all", "2001:db8::1"), SpfResult::neutral);
}

TEST(Spf, ExistsMechanism) {
    auto setup = [](FakeDns& d) {
        d.a("yes.example", "127.0.0.2").aaaa("v6only.example", "2001:db8::4").temporary("down.example");
    };
    EXPECT_EQ(result_of("v=spf1 exists:yes.example -all", "192.0.2.1", setup), SpfResult::pass);
    EXPECT_EQ(result_of("v=spf1 exists:yes.example -all", "2001:db8::3", setup), SpfResult::pass);   // A always
    EXPECT_EQ(result_of("v=spf1 exists:v6only.example -all", "2001:db8::4", setup), SpfResult::fail);
    EXPECT_EQ(result_of("v=spf1 exists:no.example -all", "192.0.2.1", setup), SpfResult::fail);
    EXPECT_EQ(result_of("v=spf1 exists:down.example -all", "192.0.2.1", setup), SpfResult::temperror);
}

TEST(Spf, IncludeResultTable) {
    // RFC 7208 5.2: pass -> match; fail, softfail, neutral -> no match; temperror -> temperror;
    // permerror, none -> permerror.
    FakeDns d;
    d.txt("pass.example", "v=spf1 +all").txt("fail.example", "v=spf1 -all").txt("soft.example", "v=spf1 ~all");
    d.txt("neutral.example", "v=spf1 ?all").txt("perm.example", "v=spf1 foo").temporary("temp.example");
    d.exists("none.example");
    for (const char* target : {"pass", "fail", "soft", "neutral", "perm", "temp", "none", "nxdomain"})
        d.txt(std::string(target) + ".test", std::string("v=spf1 include:") + target + ".example ~all");
    EXPECT_EQ(mail_from(d, "192.0.2.1", "u@pass.test").result, SpfResult::pass);
    EXPECT_EQ(mail_from(d, "192.0.2.1", "u@pass.test").reason, "matched include:pass.example");
    EXPECT_EQ(mail_from(d, "192.0.2.1", "u@fail.test").result, SpfResult::softfail);
    EXPECT_EQ(mail_from(d, "192.0.2.1", "u@soft.test").result, SpfResult::softfail);
    EXPECT_EQ(mail_from(d, "192.0.2.1", "u@neutral.test").result, SpfResult::softfail);
    SpfOutcome o = mail_from(d, "192.0.2.1", "u@perm.test");
    EXPECT_EQ(o.result, SpfResult::permerror);
    EXPECT_EQ(o.reason, "include:perm.example: syntax error: unknown mechanism in \"foo\"");
    o = mail_from(d, "192.0.2.1", "u@temp.test");
    EXPECT_EQ(o.result, SpfResult::temperror);
    EXPECT_EQ(o.reason, "include:temp.example: DNS failure looking up the SPF record of temp.example");
    o = mail_from(d, "192.0.2.1", "u@none.test");
    EXPECT_EQ(o.result, SpfResult::permerror);
    EXPECT_EQ(o.reason, "include:none.example: no SPF record");
    EXPECT_EQ(mail_from(d, "192.0.2.1", "u@nxdomain.test").result, SpfResult::permerror);
    // The included check sees the included domain as %{d}, the original sender as %{s}.
    FakeDns m;
    m.txt("example.com", "v=spf1 include:inc.example -all");
    m.txt("inc.example", "v=spf1 exists:%{l}.%{o}.%{d}.check.example -all");
    m.a("u.example.com.inc.example.check.example", "127.0.0.2");
    EXPECT_EQ(mail_from(m, "192.0.2.1", "u@example.com").result, SpfResult::pass);
    // An include target that expands to no usable domain is a permerror.
    m.txt("bad.example", "v=spf1 include:%{h}.example -all");
    EXPECT_EQ(mail_from(m, "192.0.2.1", "u@bad.example", "[192.0.2.1]").result, SpfResult::permerror);
}

TEST(Spf, Redirect) {
    FakeDns d;
    d.txt("example.com", "v=spf1 ip4:192.0.2.1 redirect=_spf.example.net");
    d.txt("_spf.example.net", "v=spf1 ip4:198.51.100.0/24 -all");
    d.txt("withall.example", "v=spf1 ?all redirect=_spf.example.net");
    d.txt("before.example", "v=spf1 redirect=_spf.example.net ~all");   // "all" anywhere cancels redirect=
    d.txt("nowhere.example", "v=spf1 redirect=nothing.example");
    d.txt("macro.example", "v=spf1 redirect=%{d}.d.spf.example.");
    d.txt("macro.example.d.spf.example", "v=spf1 ip4:203.0.113.1 -all");
    EXPECT_EQ(mail_from(d, "192.0.2.1", "u@example.com").result, SpfResult::pass);
    SpfOutcome o = mail_from(d, "198.51.100.9", "u@example.com");
    EXPECT_EQ(o.result, SpfResult::pass);
    EXPECT_EQ(o.reason, "redirect=_spf.example.net: matched ip4:198.51.100.0/24");
    EXPECT_EQ(o.domain, "example.com");
    EXPECT_EQ(mail_from(d, "203.0.113.1", "u@example.com").result, SpfResult::fail);
    EXPECT_EQ(mail_from(d, "198.51.100.9", "u@withall.example").result, SpfResult::neutral);
    EXPECT_EQ(mail_from(d, "198.51.100.9", "u@before.example").result, SpfResult::softfail);
    o = mail_from(d, "198.51.100.9", "u@nowhere.example");
    EXPECT_EQ(o.result, SpfResult::permerror);   // no record at the target: permerror, not none (RFC 7208 6.1)
    EXPECT_EQ(o.reason, "redirect=nothing.example: no SPF record (no such domain)");
    EXPECT_EQ(mail_from(d, "203.0.113.1", "u@macro.example").result, SpfResult::pass);
}

TEST(Spf, ExplanationOnFail) {
    FakeDns d;
    d.txt("example.com", "v=spf1 mx ~ip4:198.51.100.1 -all exp=explain._spf.%{d}");
    d.txt("explain._spf.example.com", "%{i} is not one of %{d}'s designated mail servers (%{s}, %{c}, %{r}, %{t}).");
    SpfOutcome o = mail_from(d, "192.0.2.1", "user@example.com");
    EXPECT_EQ(o.result, SpfResult::fail);
    EXPECT_EQ(o.explanation, "192.0.2.1 is not one of example.com's designated mail servers (user@example.com, "
                             "192.0.2.1, mx.example.net, 1700000000).");
    // Not fetched for anything but fail.
    d.asked.clear();
    o = mail_from(d, "198.51.100.1", "user@example.com");
    EXPECT_EQ(o.result, SpfResult::softfail);
    EXPECT_EQ(o.explanation, "");
    EXPECT_EQ(count_asked(d, "explain._spf.example.com", dns::kTypeTxt), 0u);
    // %{c} of an IPv6 client is its readable form.
    d.txt("v6.example", "v=spf1 -all exp=e.v6.example").txt("e.v6.example", "%{c} is queried as %{ir}.%{v}.arpa");
    EXPECT_EQ(mail_from(d, "2001:db8::cb01", "u@v6.example").explanation,
              "2001:db8::cb01 is queried as 1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
}

TEST(Spf, ExplanationProblemsLeaveItEmpty) {
    FakeDns d;
    d.txt("two.example", "v=spf1 -all exp=two.exp").txt("two.exp", "one").txt("two.exp", "two");
    d.txt("none.example", "v=spf1 -all exp=nothing.exp");
    d.txt("down.example", "v=spf1 -all exp=down.exp").temporary("down.exp");
    d.txt("syntax.example", "v=spf1 -all exp=syntax.exp").txt("syntax.exp", "The %{x}-files.");
    d.txt("ascii.example", "v=spf1 -all exp=ascii.exp").txt("ascii.exp", "\xef\xbb\xbf" "Explanation");
    d.txt("empty.example", "v=spf1 -all exp=empty.exp").exists("empty.exp");
    for (const char* domain : {"two.example", "none.example", "down.example", "syntax.example", "ascii.example",
                               "empty.example"}) {
        const SpfOutcome o = mail_from(d, "192.0.2.1", std::string("u@") + domain);
        EXPECT_EQ(o.result, SpfResult::fail) << domain;
        EXPECT_EQ(o.explanation, "") << domain;
    }
    // "exp=" itself is a syntax error: a permerror.
    d.txt("bare.example", "v=spf1 exp= -all");
    EXPECT_EQ(mail_from(d, "192.0.2.1", "u@bare.example").result, SpfResult::permerror);
}

TEST(Spf, ExplanationComesFromTheRecordThatFailed) {
    FakeDns d;
    // include: the included record's exp= is never used (RFC 7208 6.2).
    d.txt("inc.example", "v=spf1 include:inner.example -all exp=outer.exp").txt("outer.exp", "Correct!");
    d.txt("inner.example", "v=spf1 -all exp=inner.exp").txt("inner.exp", "Wrong");
    EXPECT_EQ(mail_from(d, "192.0.2.1", "u@inc.example").explanation, "Correct!");
    // redirect: the target's exp= is used, the original's not; %{d} there is the target domain.
    d.txt("red.example", "v=spf1 exp=orig.exp redirect=target.example").txt("orig.exp", "Wrong");
    d.txt("target.example", "v=spf1 -all exp=%{d}.exp").txt("target.example.exp", "from %{d}, for %{o}");
    EXPECT_EQ(mail_from(d, "192.0.2.1", "u@red.example").explanation, "from target.example, for red.example");
    d.txt("red2.example", "v=spf1 exp=orig.exp redirect=plain.example").txt("plain.example", "v=spf1 -all");
    EXPECT_EQ(mail_from(d, "192.0.2.1", "u@red2.example").explanation, "");
}

TEST(Spf, TenDnsTermsAllowedEleventhPermerror) {
    FakeDns d;
    d.a("example.com", "198.51.100.1");
    d.txt("ten.example", "v=spf1 a:example.com a:example.com a:example.com a:example.com a:example.com "
                         "a:example.com a:example.com a:example.com a:example.com a:example.com ip4:192.0.2.1 -all");
    d.txt("eleven.example", "v=spf1 a:example.com a:example.com a:example.com a:example.com a:example.com "
                            "a:example.com a:example.com a:example.com a:example.com a:example.com "
                            "a:example.com ip4:192.0.2.1 -all");
    EXPECT_EQ(mail_from(d, "192.0.2.1", "u@ten.example").result, SpfResult::pass);
    const SpfOutcome o = mail_from(d, "192.0.2.1", "u@eleven.example");
    EXPECT_EQ(o.result, SpfResult::permerror);
    EXPECT_EQ(o.reason, "more than 10 DNS lookups");
    // The count is one for the whole evaluation, includes and redirects included; terms not reached do not
    // count (the "mx" after the match).
    d.txt("e8.example", "v=spf1 a include:inc.example ip4:192.0.2.1 mx -all").a("e8.example", "198.51.100.9");
    d.txt("inc.example", "v=spf1 a a a a a a a a").a("inc.example", "198.51.100.10");
    EXPECT_EQ(mail_from(d, "192.0.2.1", "u@e8.example").result, SpfResult::pass);
    d.txt("e9.example", "v=spf1 a include:inc.example a ip4:192.0.2.1 -all").a("e9.example", "198.51.100.9");
    EXPECT_EQ(mail_from(d, "192.0.2.1", "u@e9.example").result, SpfResult::permerror);
    // ip4, ip6, all and exp= do not count.
    std::string many = "v=spf1";
    for (int i = 0; i < 50; ++i) many += " ip4:198.51.100." + std::to_string(i);
    many += " a:example.com a:example.com a:example.com a:example.com a:example.com a:example.com a:example.com "
            "a:example.com a:example.com a:example.com ip6:2001:db8::/32 ip4:192.0.2.1 -all exp=e.example";
    d.txt("many.example", many);
    EXPECT_EQ(mail_from(d, "192.0.2.1", "u@many.example").result, SpfResult::pass);
}

TEST(Spf, IncludeAndRedirectLoopsEndInPermerror) {
    FakeDns d;
    d.txt("loop.example", "v=spf1 include:loop.example -all");
    d.txt("r1.example", "v=spf1 ip4:198.51.100.1 redirect=r2.example");
    d.txt("r2.example", "v=spf1 ip4:198.51.100.2 redirect=r1.example");
    SpfOutcome o = mail_from(d, "192.0.2.1", "u@loop.example");
    EXPECT_EQ(o.result, SpfResult::permerror);
    EXPECT_LE(d.asked.size(), 12u);
    EXPECT_TRUE(printable_line(o.reason) && o.reason.size() <= 200) << o.reason;
    d.asked.clear();
    o = mail_from(d, "192.0.2.1", "u@r1.example");
    EXPECT_EQ(o.result, SpfResult::permerror);
    EXPECT_LE(d.asked.size(), 12u);
    EXPECT_TRUE(printable_line(o.reason) && o.reason.size() <= 200) << o.reason;
}

TEST(Spf, VoidLookupsTwoAllowedThirdPermerror) {
    FakeDns d;
    d.exists("nodata.example");
    d.txt("two.example", "v=spf1 a:nx1.example mx:nodata.example ?all");
    d.txt("three.example", "v=spf1 a:nx1.example exists:nx2.example mx:nodata.example ?all");
    d.txt("ptr.example", "v=spf1 a:nx1.example a:nx2.example ptr ?all");   // no PTR for the client: void
    EXPECT_EQ(mail_from(d, "192.0.2.1", "u@two.example").result, SpfResult::neutral);
    SpfOutcome o = mail_from(d, "192.0.2.1", "u@three.example");
    EXPECT_EQ(o.result, SpfResult::permerror);
    EXPECT_EQ(o.reason, "more than 2 void DNS lookups (at mx:nodata.example)");
    EXPECT_EQ(mail_from(d, "192.0.2.1", "u@ptr.example").result, SpfResult::permerror);
    // An exp= that does not exist is no void lookup (it is looked up after the result).
    d.txt("exp.example", "v=spf1 a:nx1.example a:nx2.example exp=nx3.example -all");
    EXPECT_EQ(mail_from(d, "192.0.2.1", "u@exp.example").result, SpfResult::fail);
}

TEST(Spf, TargetNamesNoQueryCanBeMadeForAreNxdomain) {
    FakeDns d;
    // An empty local-part label and a label over 63 octets from a macro.
    d.txt("example.com", "v=spf1 a:%{l}.x..example.com exists:%{l}.%{l}.%{l}.example.com ?all");
    const std::string local(40, 'l');
    EXPECT_EQ(mail_from(d, "192.0.2.1", local + "@example.com").result, SpfResult::neutral);
    d.txt("long.example", "v=spf1 a:%{l}%{l}.long.example ?all");
    EXPECT_EQ(mail_from(d, "192.0.2.1", local + "@long.example").result, SpfResult::neutral);
    for (const auto& [name, type] : d.asked) EXPECT_TRUE(name.find("..") == std::string::npos) << name;
}

TEST(Spf, MacrosAsEvaluated) {
    // RFC 7208 7.4, with records that make each expansion matter.
    FakeDns d;
    d.txt("email.example.com", "v=spf1 exists:%{ir}.%{v}._spf.%{d2} exists:%{lr-}.lp.%{ir}.%{v}._spf.%{d2} -all");
    d.a("3.2.0.192.in-addr._spf.example.com", "127.0.0.2");
    d.a("1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com", "127.0.0.2");
    d.a("bad.strong.lp.4.2.0.192.in-addr._spf.example.com", "127.0.0.2");
    EXPECT_EQ(mail_from(d, "192.0.2.3", "strong-bad@email.example.com").result, SpfResult::pass);
    EXPECT_EQ(mail_from(d, "2001:db8::cb01", "strong-bad@email.example.com").result, SpfResult::pass);
    EXPECT_EQ(mail_from(d, "192.0.2.4", "strong-bad@email.example.com").result, SpfResult::pass);
    EXPECT_EQ(mail_from(d, "192.0.2.4", "strong-good@email.example.com").result, SpfResult::fail);
    EXPECT_EQ(mail_from(d, "2001:db8::cb02", "strong-bad@email.example.com").result, SpfResult::fail);
    // %{h} and upper-case escaping in a lookup.
    FakeDns h;
    h.txt("example.com", "v=spf1 a:%{H}.bar -all");
    EXPECT_EQ(mail_from(h, "192.0.2.1", "u@example.com", "JUMPIN' JUPITER").result, SpfResult::fail);
    EXPECT_EQ(count_asked(h, "jumpin%27%20jupiter.bar", dns::kTypeA), 1u);
}

TEST(Spf, PtrMacro) {
    FakeDns d;
    d.ptr("42.2.0.192.in-addr.arpa", "mx.example.com").ptr("42.2.0.192.in-addr.arpa", "mx.e7.example.com");
    d.a("mx.example.com", "192.0.2.42").a("mx.e7.example.com", "192.0.2.42");
    d.ptr("41.2.0.192.in-addr.arpa", "mx.example.com").a("mx.example.com", "192.0.2.41");
    d.ptr("40.2.0.192.in-addr.arpa", "mx.example.com");   // does not validate
    // A subdomain of <domain> is preferred (RFC 7208 7.3).
    d.txt("e7.example.com", "v=spf1 exists:%{p}.should.example.com ~exists:%{p}.ok.example.com");
    d.a("mx.e7.example.com.should.example.com", "127.0.0.2").a("mx.example.com.ok.example.com", "127.0.0.2");
    EXPECT_EQ(mail_from(d, "192.0.2.42", "t@e7.example.com").result, SpfResult::pass);
    // In an explanation, with and without a validated name.
    d.txt("e6.example.com", "v=spf1 -all exp=e6msg.example.com").txt("e6msg.example.com", "connect from %{p}");
    EXPECT_EQ(mail_from(d, "192.0.2.41", "t@e6.example.com").explanation, "connect from mx.example.com");
    EXPECT_EQ(mail_from(d, "192.0.2.40", "t@e6.example.com").explanation, "connect from unknown");
    EXPECT_EQ(mail_from(d, "192.0.2.99", "t@e6.example.com").explanation, "connect from unknown");
    // The PTR lookup for %{p} is made once per check, however many terms use it.
    d.txt("many.example", "v=spf1 exists:%{p}.a.example exists:%{p}.b.example exists:%{p}.c.example -all");
    d.asked.clear();
    mail_from(d, "192.0.2.41", "t@many.example");
    EXPECT_EQ(count_asked(d, "41.2.0.192.in-addr.arpa", dns::kTypePtr), 1u);
}

// RFC 7208 4.5: TXT records that are not SPF records are discarded, also those without text: no character-string
// at all (RDLENGTH 0) or one empty string.
TEST(Spf, TxtRecordsWithoutTextAreDiscarded) {
    FakeDns d;
    d.rdata("example.com", dns::kTypeTxt, "").txt("example.com", "v=spf1 ip4:192.0.2.1 -all");
    d.rdata("example.com", dns::kTypeTxt, std::string(1, '\0'));
    EXPECT_EQ(mail_from(d, "192.0.2.1", "u@example.com").result, SpfResult::pass);
    EXPECT_EQ(mail_from(d, "192.0.2.2", "u@example.com").result, SpfResult::fail);
    d.rdata("empty.example", dns::kTypeTxt, "").rdata("empty.example", dns::kTypeTxt, std::string(1, '\0'));
    const SpfOutcome o = mail_from(d, "192.0.2.1", "u@empty.example");
    EXPECT_EQ(o.result, SpfResult::none);
    EXPECT_EQ(o.reason, "no SPF record");
}

// RFC 7208 7.3: of the validated names, <domain> itself, else a name below it, else any; in whatever order the
// PTR records come, and a name that does not validate is never chosen.
TEST(Spf, PtrMacroPrefersTheDomainThenASubdomain) {
    const std::string reverse = "43.2.0.192.in-addr.arpa";
    auto with_names = [&](std::vector<std::string> names, std::vector<std::string> validated) {
        FakeDns d;
        for (const auto& n : names) d.ptr(reverse, n);
        for (const auto& n : validated) d.a(n, "192.0.2.43");
        d.txt("e9.example.com", "v=spf1 -all exp=msg.e9.example.com").txt("msg.e9.example.com", "%{p}");
        return d;
    };
    auto p_of = [&](FakeDns d) { return mail_from(d, "192.0.2.43", "t@e9.example.com").explanation; };
    const std::vector<std::string> all = {"mx.other.example", "mx.e9.example.com", "e9.example.com"};
    EXPECT_EQ(p_of(with_names(all, all)), "e9.example.com");
    EXPECT_EQ(p_of(with_names({"e9.example.com", "mx.other.example", "mx.e9.example.com"}, all)), "e9.example.com");
    EXPECT_EQ(p_of(with_names({"mx.other.example", "mx.e9.example.com"}, all)), "mx.e9.example.com");
    // <domain> itself does not validate: the subdomain is next; neither does: any validated name.
    EXPECT_EQ(p_of(with_names(all, {"mx.other.example", "mx.e9.example.com"})), "mx.e9.example.com");
    EXPECT_EQ(p_of(with_names(all, {"mx.other.example"})), "mx.other.example");
    // "xe9.example.com" ends like the domain but is no subdomain of it.
    EXPECT_EQ(p_of(with_names({"xe9.example.com", "mx.other.example"}, {"xe9.example.com", "mx.other.example"})),
              "xe9.example.com");
    EXPECT_EQ(p_of(with_names({"mx.other.example", "xe9.example.com", "a.e9.example.com"},
                              {"mx.other.example", "xe9.example.com", "a.e9.example.com"})),
              "a.e9.example.com");
    EXPECT_EQ(p_of(with_names(all, {})), "unknown");
    // Inside an include, <domain> is the include's target (RFC 7208 5.2): the fourth name, e9inc.example.com, is
    // chosen there (for outer.example none would be better than the first).
    FakeDns d = with_names(all, all);
    d.txt("outer.example", "v=spf1 include:e9inc.example.com -all");
    d.txt("e9inc.example.com", "v=spf1 exists:%{p}.p.example -all");
    d.ptr(reverse, "e9inc.example.com").a("e9inc.example.com", "192.0.2.43");
    d.a("e9inc.example.com.p.example", "127.0.0.2");
    EXPECT_EQ(mail_from(d, "192.0.2.43", "t@outer.example").result, SpfResult::pass);
}

TEST(Spf, NoLocalPartIsPostmaster) {
    FakeDns d;
    d.txt("example.net", "v=spf1 -all exp=exp.example.net").txt("exp.example.net", "%{l} / %{s}");
    const SpfOutcome o = mail_from(d, "192.0.2.1", "@example.net");
    EXPECT_EQ(o.result, SpfResult::fail);
    EXPECT_EQ(o.explanation, "postmaster / postmaster@example.net");
    // Spaces and odd characters in a local-part reach the explanation as they are.
    d.txt("e8.example", "v=spf1 -all exp=e8.exp").txt("e8.exp", "%{l} in implementation");
    EXPECT_EQ(mail_from(d, "192.0.2.1", "\"Macro Error\"@e8.example").explanation,
              "\"Macro Error\" in implementation");
}

TEST(Spf, NullSenderChecksPostmasterAtHelo) {
    FakeDns d;
    d.txt("mail.example.org", "v=spf1 ip4:192.0.2.1 -all exp=e.example.org").txt("e.example.org", "%{s} via %{h}");
    SpfOutcome o = mail_from(d, "192.0.2.1", "", "mail.example.org");
    EXPECT_EQ(o.result, SpfResult::pass);
    EXPECT_EQ(o.identity, "mailfrom");
    EXPECT_EQ(o.sender, "postmaster@mail.example.org");
    EXPECT_EQ(o.domain, "mail.example.org");
    o = mail_from(d, "192.0.2.2", "", "mail.example.org");
    EXPECT_EQ(o.result, SpfResult::fail);
    EXPECT_EQ(o.explanation, "postmaster@mail.example.org via mail.example.org");
    // A HELO that is no usable name leaves nothing to check.
    EXPECT_EQ(mail_from(d, "192.0.2.1", "", "[192.0.2.1]").result, SpfResult::none);
    EXPECT_EQ(mail_from(d, "192.0.2.1", "", "A2345678").result, SpfResult::none);
}

TEST(Spf, HeloIdentity) {
    FakeDns d;
    d.txt("mail.example.org", "v=spf1 a -all").a("mail.example.org", "192.0.2.1");
    d.txt("lp.example.org", "v=spf1 exists:%{l}.%{o}.x.example -all").a("postmaster.lp.example.org.x.example", "127.0.0.2");
    SpfOutcome o = helo(d, "192.0.2.1", "mail.example.org");
    EXPECT_EQ(o.result, SpfResult::pass);
    EXPECT_EQ(o.identity, "helo");
    EXPECT_EQ(o.domain, "mail.example.org");
    EXPECT_EQ(o.sender, "postmaster@mail.example.org");
    EXPECT_EQ(helo(d, "192.0.2.2", "mail.example.org").result, SpfResult::fail);
    EXPECT_EQ(helo(d, "192.0.2.2", "lp.example.org").result, SpfResult::pass);   // %{l} is postmaster
    d.asked.clear();
    for (const char* bad : {"[192.0.2.1]", "[IPv6:2001:db8::1]", "OEMCOMPUTER", "192.0.2.1", "", "a..b.example",
                            "JUMPIN' JUPITER"}) {
        o = helo(d, "192.0.2.1", bad);
        EXPECT_EQ(o.result, SpfResult::none) << bad;
        EXPECT_EQ(o.identity, "helo");
    }
    EXPECT_TRUE(d.asked.empty());
}

TEST(Spf, ReasonsStayShortAndPrintable) {
    FakeDns d;
    const std::string junk = "\x01\x7f" + std::string(500, 'j');
    d.txt("junk.example", "v=spf1 " + junk);
    auto name = [](int i) { return "d" + std::to_string(i) + "." + std::string(60, 'x') + ".example"; };
    d.txt("deep.example", "v=spf1 include:" + name(1));
    for (int i = 1; i < 9; ++i) d.txt(name(i), "v=spf1 include:" + name(i + 1));   // name(9) has no record
    for (const char* sender : {"u@junk.example", "u@deep.example"}) {
        const SpfOutcome o = mail_from(d, "192.0.2.1", sender);
        EXPECT_EQ(o.result, SpfResult::permerror) << sender;
        EXPECT_TRUE(printable_line(o.reason)) << o.reason;
        EXPECT_LE(o.reason.size(), 200u) << o.reason;
    }
}
