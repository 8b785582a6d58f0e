#include "mailauth/spf_macro.hpp"

#include <gtest/gtest.h>

#include <algorithm>

using namespace ferry::mailauth;

namespace {

// RFC 7208 7.4: "The <sender> is strong-bad@email.example.com. The IPv4 SMTP client IP is 192.0.2.3. The IPv6
// SMTP client IP is 2001:db8::cb01. The PTR domain name of the client IP is mx.example.org."
MacroValues rfc_values(std::string_view client = "192.0.2.3") {
    const IpAddress ip = *parse_client_address(client);
    MacroValues v;
    v.sender = "strong-bad@email.example.com";
    v.local_part = "strong-bad";
    v.sender_domain = "email.example.com";
    v.domain = "email.example.com";
    v.ip = ip_macro_text(ip);
    v.ip_version = std::string(ip_version_text(ip));
    v.client_ip = to_string(ip);
    v.ptr_name = "mx.example.org";
    v.helo = "mx.example.org";
    v.receiver = "mx.example.net";
    v.timestamp = "1700000000";
    return v;
}

std::string domain(std::string_view spec, const MacroValues& v = rfc_values()) {
    const auto out = expand_domain_spec(spec, v);
    EXPECT_TRUE(out) << spec;
    return out ? *out : "<error>";
}

// A macro-string on its own: expanded as explanation text, which takes every letter.
std::string text(std::string_view macro, const MacroValues& v = rfc_values()) {
    const auto out = expand_explanation(macro, v);
    EXPECT_TRUE(out) << macro;
    return out ? *out : "<error>";
}

}  // namespace

// RFC 7208 7.4, the table of single macros, letter for letter.
TEST(SpfMacro, Rfc7208ExamplesSingleMacros) {
    EXPECT_EQ(text("%{s}"), "strong-bad@email.example.com");
    EXPECT_EQ(text("%{o}"), "email.example.com");
    EXPECT_EQ(text("%{d}"), "email.example.com");
    EXPECT_EQ(text("%{d4}"), "email.example.com");
    EXPECT_EQ(text("%{d3}"), "email.example.com");
    EXPECT_EQ(text("%{d2}"), "example.com");
    EXPECT_EQ(text("%{d1}"), "com");
    EXPECT_EQ(text("%{dr}"), "com.example.email");
    EXPECT_EQ(text("%{d2r}"), "example.email");
    EXPECT_EQ(text("%{l}"), "strong-bad");
    EXPECT_EQ(text("%{l-}"), "strong.bad");
    EXPECT_EQ(text("%{lr}"), "strong-bad");
    EXPECT_EQ(text("%{lr-}"), "bad.strong");
    EXPECT_EQ(text("%{l1r-}"), "strong");
}

// RFC 7208 7.4, the macro-strings of the second table, as domain-specs.
TEST(SpfMacro, Rfc7208ExamplesDomainSpecs) {
    EXPECT_EQ(domain("%{ir}.%{v}._spf.%{d2}"), "3.2.0.192.in-addr._spf.example.com");
    EXPECT_EQ(domain("%{lr-}.lp._spf.%{d2}"), "bad.strong.lp._spf.example.com");
    EXPECT_EQ(domain("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}"), "bad.strong.lp.3.2.0.192.in-addr._spf.example.com");
    EXPECT_EQ(domain("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}"), "3.2.0.192.in-addr.strong.lp._spf.example.com");
    EXPECT_EQ(domain("%{d2}.trusted-domains.example.net"), "example.com.trusted-domains.example.net");
    // The IPv6 client of the same section.
    EXPECT_EQ(domain("%{ir}.%{v}._spf.%{d2}", rfc_values("2001:db8::cb01")),
              "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com");
}

TEST(SpfMacro, EveryLetter) {
    const MacroValues v = rfc_values();
    EXPECT_EQ(text("%{s}|%{l}|%{o}|%{d}|%{i}|%{p}|%{v}|%{h}|%{c}|%{r}|%{t}", v),
              "strong-bad@email.example.com|strong-bad|email.example.com|email.example.com|192.0.2.3|"
              "mx.example.org|in-addr|mx.example.org|192.0.2.3|mx.example.net|1700000000");
    const MacroValues v6 = rfc_values("2001:db8::cb01");
    EXPECT_EQ(text("%{i}", v6), "2.0.0.1.0.d.b.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.c.b.0.1");
    EXPECT_EQ(text("%{v}", v6), "ip6");
    EXPECT_EQ(text("%{c}", v6), "2001:db8::cb01");   // readable form in explanations (RFC 7208 7.3)
    // An IPv4-mapped client is IPv4 everywhere.
    const MacroValues mapped = rfc_values("::ffff:192.0.2.3");
    EXPECT_EQ(text("%{i} %{v} %{c}", mapped), "192.0.2.3 in-addr 192.0.2.3");
}

TEST(SpfMacro, Transformers) {
    MacroValues v = rfc_values();
    v.local_part = "foo-bar+zip+quux";
    EXPECT_EQ(text("%{l2r+-}", v), "bar.foo");         // split on "+" and "-", reversed, then two right-hand parts
    EXPECT_EQ(text("%{lr+-}", v), "quux.zip.bar.foo");
    EXPECT_EQ(text("%{l+}", v), "foo-bar.zip.quux");
    EXPECT_EQ(text("%{l1}", v), "foo-bar+zip+quux");   // no '.' in it: one part
    v.local_part = "a,b/c_d=e.f";
    EXPECT_EQ(text("%{l,/_=}", v), "a.b.c.d.e.f");
    EXPECT_EQ(text("%{l2,/_=}", v), "d.e.f");        // "." is no delimiter here: "e.f" is one part
    EXPECT_EQ(text("%{l2,/_=.}", v), "e.f");
    EXPECT_EQ(text("%{l1r,/_=}", v), "a");
    EXPECT_EQ(text("%{l=}", v), "a,b/c_d.e.f");
    EXPECT_EQ(text("%{d127}"), "email.example.com");   // more parts than there are: all of them
    EXPECT_EQ(text("%{d99999999999999999999}"), "email.example.com");
    // Counts above 127 are honoured too (RFC 7208 7.3 asks for at least 127).
    std::string labels;
    for (int i = 0; i < 199; ++i) labels += "x.";
    v.domain = labels + "end";
    const std::string kept = text("%{d150}", v);
    EXPECT_EQ(std::count(kept.begin(), kept.end(), '.'), 149);
    EXPECT_EQ(kept.size(), 301u);
    EXPECT_EQ(text("%{d01}"), "com");                   // *DIGIT: a leading zero is allowed
    EXPECT_EQ(text("%{dR}"), "com.example.email");      // "r" is case-insensitive (ABNF)
    // Empty parts are kept (RFC 7208 7.3: no special treatment of leading, trailing or repeated delimiters).
    v.domain = ".a..b.";
    EXPECT_EQ(text("%{dr}", v), ".b..a.");
    EXPECT_EQ(text("%{d2}", v), "b.");
}

TEST(SpfMacro, UpperCaseLettersAreUrlEscaped) {
    MacroValues v = rfc_values();
    v.local_part = "jack&jill=up";
    EXPECT_EQ(text("http://example.com/why.html?l=%{L}", v), "http://example.com/why.html?l=jack%26jill%3Dup");
    EXPECT_EQ(text("%{S}"), "strong-bad%40email.example.com");
    EXPECT_EQ(text("%{C}", rfc_values("2001:db8::cb01")), "2001%3Adb8%3A%3Acb01");
    EXPECT_EQ(text("%{D2R}"), "example.email");
    v.helo = "JUMPIN' JUPITER";
    EXPECT_EQ(domain("%{H}.bar", v), "JUMPIN%27%20JUPITER.bar");
    EXPECT_EQ(url_escape("aZ09-._~ /%\x80"), "aZ09-._~%20%2F%25%80");
}

TEST(SpfMacro, Escapes) {
    EXPECT_EQ(text("100%% %_%-"), "100%  %20");
    EXPECT_EQ(domain("macro%%percent%_%_space%-url-space.example.com"), "macro%percent  space%20url-space.example.com");
    EXPECT_EQ(text("This is a test."), "This is a test.");   // no trailing dot removed from text
    EXPECT_EQ(domain("msg.example.com."), "msg.example.com");  // but from a domain
}

TEST(SpfMacro, SyntaxErrors) {
    std::string why;
    EXPECT_FALSE(check_macro_string("%(ir)", MacroContext::domain_spec, &why));
    EXPECT_EQ(why, "'%' not followed by '{', '%', '_' or '-'");
    EXPECT_FALSE(check_macro_string("foo%", MacroContext::domain_spec, &why));
    EXPECT_FALSE(check_macro_string("%{x}", MacroContext::explanation, &why));
    EXPECT_EQ(why, "unknown macro letter");
    EXPECT_FALSE(check_macro_string("%{d0}", MacroContext::explanation, &why));
    EXPECT_FALSE(check_macro_string("%{d", MacroContext::explanation, &why));
    EXPECT_FALSE(check_macro_string("%{}", MacroContext::explanation, &why));
    EXPECT_FALSE(check_macro_string("%{d2r-x}", MacroContext::explanation, &why));
    EXPECT_FALSE(check_macro_string("%{drr}", MacroContext::explanation, &why));
    EXPECT_FALSE(check_macro_string("%{d-2}", MacroContext::explanation, &why));   // digits come before delimiters
    EXPECT_FALSE(check_macro_string("a b", MacroContext::domain_spec, &why));
    EXPECT_EQ(why, "space in a domain-spec");
    EXPECT_TRUE(check_macro_string("a b", MacroContext::explanation));
    EXPECT_FALSE(check_macro_string("caf\xc3\xa9", MacroContext::explanation));   // US-ASCII only
    EXPECT_FALSE(check_macro_string("a\tb", MacroContext::explanation));
    EXPECT_FALSE(expand_explanation("The %{x}-files.", rfc_values()));
    // c, r and t are for explanations only (RFC 7208 7.2).
    for (const char* m : {"%{c}.example.com", "%{r}.example.com", "%{t}.example.com", "%{C}.example.com"}) {
        EXPECT_FALSE(check_domain_spec(m, &why)) << m;
        EXPECT_EQ(why, "macro c, r or t outside an explanation");
        EXPECT_FALSE(expand_domain_spec(m, rfc_values()));
        EXPECT_TRUE(check_macro_string(m, MacroContext::explanation)) << m;
    }
    EXPECT_TRUE(check_macro_string("", MacroContext::domain_spec));
    EXPECT_FALSE(check_domain_spec(""));
}

TEST(SpfMacro, DomainEnd) {
    EXPECT_TRUE(check_domain_spec("example.com"));
    EXPECT_TRUE(check_domain_spec("example.com."));
    EXPECT_TRUE(check_domain_spec("%{d}"));
    EXPECT_TRUE(check_domain_spec("foo.%%"));          // "%%" is a macro-expand too
    EXPECT_TRUE(check_domain_spec(".com"));            // macro-string may be empty
    EXPECT_TRUE(check_domain_spec("foo.e-xample"));
    EXPECT_TRUE(check_domain_spec("foo.1-2"));         // digits with a dash inside are a toplabel
    EXPECT_TRUE(check_domain_spec("foo.xn--zckzah"));
    EXPECT_FALSE(check_domain_spec("museum"));
    EXPECT_FALSE(check_domain_spec("museum."));
    EXPECT_FALSE(check_domain_spec("abc.123"));
    EXPECT_FALSE(check_domain_spec("example.-com"));
    EXPECT_FALSE(check_domain_spec("example.com-"));
    EXPECT_FALSE(check_domain_spec("example.c_m"));
    EXPECT_FALSE(check_domain_spec("%{d}."));
    EXPECT_FALSE(check_domain_spec("%{d}com"));
    EXPECT_FALSE(check_domain_spec("%{d}.%{d}x"));
    EXPECT_FALSE(check_domain_spec("example.com:8080"));
    EXPECT_FALSE(check_domain_spec("example.com/24"));
    EXPECT_TRUE(check_domain_spec("foo:bar/baz.example.com"));
}

TEST(SpfMacro, TruncationFromTheLeft) {
    // RFC 7208 7.3: labels (with their dots) are removed from the left until at most 253 octets remain.
    const std::string label(29, 'x');
    MacroValues v = rfc_values();
    v.sender_domain = "somewhat.long.exp.example.com";
    const std::string expected = "somewhat.long.exp.example.com.somewhat.long.exp.example.com.somewhat.long.exp."
                                 "example.com.somewhat.long.exp.example.com.somewhat.long.exp.example.com.somewhat."
                                 "long.exp.example.com.somewhat.long.exp.example.com.somewhat.long.exp.example.com."
                                 "example.com";
    EXPECT_EQ(domain("foobar.%{o}.%{o}.%{o}.%{o}.%{o}.%{o}.%{o}.%{o}.example.com", v), expected);
    EXPECT_EQ(expected.size(), 251u);

    EXPECT_EQ(truncate_domain(std::string(253, 'a')), std::string(253, 'a'));
    EXPECT_EQ(truncate_domain("b." + std::string(252, 'a')), std::string(252, 'a'));
    EXPECT_EQ(truncate_domain("b." + std::string(253, 'a')), std::string(253, 'a'));
    EXPECT_EQ(truncate_domain("b." + std::string(254, 'a')), "");   // nothing fits: every label goes
    EXPECT_EQ(truncate_domain("c.b." + std::string(251, 'a')), "b." + std::string(251, 'a'));
    EXPECT_EQ(truncate_domain(std::string(300, '.')), std::string(253, '.'));
}

TEST(SpfMacro, HugeExpansionsStayBoundedAndTruncateTheSame) {
    MacroValues v = rfc_values();
    for (const std::size_t local : {10u, 37u, 100u, 250u, 600u}) {
        v.sender = std::string(local, 's') + "@d.example";
        std::string spec, naive;
        for (int i = 0; i < 2000; ++i) {
            spec += "%{s}.";
            naive += v.sender + ".";
        }
        spec += "tail.example.com";
        naive += "tail.example.com";
        const std::string out = domain(spec, v);
        EXPECT_LE(out.size(), kSpfMaxDomainLength);
        EXPECT_EQ(out, truncate_domain(naive)) << local;   // the same as truncating the whole expansion
        EXPECT_EQ(out.substr(out.size() - 16), "tail.example.com");
    }
    // An explanation is cut at its limit.
    std::string many;
    for (int i = 0; i < 1000; ++i) many += "%{s} ";
    EXPECT_EQ(text(many, v).size(), kSpfMaxExplanationLength);
}

TEST(SpfMacro, ExplanationOctetsOutsideAsciiBecomeQuestionMarks) {
    MacroValues v = rfc_values();
    v.local_part = "caf\xc3\xa9\r\n";
    EXPECT_EQ(text("hi %{l}.", v), "hi caf????.");
    EXPECT_EQ(text("hi %{L}.", v), "hi caf%C3%A9%0D%0A.");
}

TEST(SpfMacro, UsesLetter) {
    EXPECT_TRUE(uses_macro_letter("exists:%{p}.example.com", 'p'));
    EXPECT_TRUE(uses_macro_letter("%{P2r}", 'p'));
    EXPECT_FALSE(uses_macro_letter("%{d}.p.example.com", 'p'));
    EXPECT_FALSE(uses_macro_letter("%%{p}", 'p'));   // "%%" then the literal "{p}"
}
