#include "mailauth/dkim_signature.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace ferry::mailauth;

namespace {

const std::string kBase = "v=1; a=rsa-sha256; d=example.com; s=sel; h=from:to; bh=AAAA; b=AAAA";

std::string error_of(const std::string& value) { return parse_dkim_signature(value).error; }

// kBase with tag `name` replaced by `spec` ("" drops it), or `spec` appended when kBase has no such tag.
std::string with(const std::string& name, const std::string& spec) {
    std::string out;
    bool replaced = false;
    std::size_t at = 0;
    while (at <= kBase.size()) {
        std::size_t semi = kBase.find("; ", at);
        if (semi == std::string::npos) semi = kBase.size();
        const std::string tag = kBase.substr(at, semi - at);
        const std::string tag_name = tag.substr(0, tag.find('='));
        std::string piece = tag;
        if (tag_name == name) {
            piece = spec;
            replaced = true;
        }
        if (!piece.empty()) out += (out.empty() ? "" : "; ") + piece;
        at = semi + 2;
    }
    if (!replaced) out += "; " + spec;
    return out;
}

}  // namespace

TEST(DkimSignature, ParsesTheRfc8463Signature) {
    const std::string value =
        " v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n d=football.example.com; i=@football.example.com;\r\n"
        " q=dns/txt; s=brisbane; t=1528637909; h=from : to :\r\n subject : date : message-id : from : subject : date;\r\n"
        " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus\r\n"
        " Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==\r\n";
    const auto p = parse_dkim_signature(value);
    ASSERT_TRUE(p.ok()) << p.error;
    const auto& s = p.signature;
    EXPECT_EQ(s.algorithm, DkimAlgorithm::ed25519_sha256);
    EXPECT_EQ(s.algorithm_name, "ed25519-sha256");
    EXPECT_EQ(s.header_canon, DkimCanon::relaxed);
    EXPECT_EQ(s.body_canon, DkimCanon::relaxed);
    EXPECT_EQ(s.domain, "football.example.com");
    EXPECT_EQ(s.selector, "brisbane");
    EXPECT_EQ(s.identity, "@football.example.com");
    EXPECT_EQ(s.timestamp, 1528637909);
    EXPECT_FALSE(s.expiration);
    EXPECT_FALSE(s.body_length);
    EXPECT_EQ(s.signed_headers,
              (std::vector<std::string>{"from", "to", "subject", "date", "message-id", "from", "subject", "date"}));
    EXPECT_EQ(s.body_hash.size(), 32u);
    EXPECT_EQ(s.signature.size(), 64u);
    EXPECT_EQ(s.signature_b, "/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11BusFa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==");
}

TEST(DkimSignature, DefaultsAndOptionalTags) {
    auto p = parse_dkim_signature(kBase);
    ASSERT_TRUE(p.ok()) << p.error;
    EXPECT_EQ(p.signature.header_canon, DkimCanon::simple);   // no c=: simple/simple
    EXPECT_EQ(p.signature.body_canon, DkimCanon::simple);
    EXPECT_EQ(p.signature.identity, "@example.com");         // no i=: @d=
    p = parse_dkim_signature(with("c", "c=relaxed"));         // "relaxed" alone: relaxed/simple
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p.signature.header_canon, DkimCanon::relaxed);
    EXPECT_EQ(p.signature.body_canon, DkimCanon::simple);
    p = parse_dkim_signature(with("c", "c=simple/relaxed"));
    EXPECT_EQ(p.signature.header_canon, DkimCanon::simple);
    EXPECT_EQ(p.signature.body_canon, DkimCanon::relaxed);
    p = parse_dkim_signature(with("l", "l=1234") + "; x=2000000000; t=1000000000; i=user@mail.Example.COM; q=dns/txt:foo/bar; zz=unknown; q2=x");
    ASSERT_TRUE(p.ok()) << p.error;
    EXPECT_EQ(p.signature.body_length, 1234u);
    EXPECT_EQ(p.signature.expiration, 2000000000);
    EXPECT_EQ(p.signature.timestamp, 1000000000);
    EXPECT_EQ(p.signature.identity, "user@mail.Example.COM");
    // l= longer than any body saturates instead of failing.
    p = parse_dkim_signature(with("l", "l=99999999999999999999999999999"));
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p.signature.body_length, UINT64_MAX);
    // Case of a= and c= values does not matter; FWS around h= names does not either.
    p = parse_dkim_signature(with("a", "a=RSA-SHA256") + "; c=Relaxed/SIMPLE");
    ASSERT_TRUE(p.ok()) << p.error;
    p = parse_dkim_signature(with("h", "h= From\r\n\t: To :subject "));
    ASSERT_TRUE(p.ok()) << p.error;
    EXPECT_EQ(p.signature.signed_headers, (std::vector<std::string>{"From", "To", "subject"}));
    // A final CRLF is allowed.
    EXPECT_TRUE(parse_dkim_signature(kBase + "\r\n").ok());
}

TEST(DkimSignature, RequiredTags) {
    EXPECT_EQ(error_of(with("v", "")), "v= is missing");
    for (const char* tag : {"a", "b", "bh", "d", "h", "s"})
        EXPECT_EQ(error_of(with(tag, "")), std::string(tag) + "= is missing") << tag;
}

TEST(DkimSignature, Refusals) {
    EXPECT_EQ(error_of(with("v", "v=2")), "unsupported version v=2");
    EXPECT_EQ(error_of(with("v", "v=01")), "unsupported version v=01");
    EXPECT_EQ(error_of(with("a", "a=rsa-sha1")), "rsa-sha1 is no longer accepted (RFC 8301)");
    EXPECT_EQ(error_of(with("a", "a=ed448-sha256")), "unknown algorithm a=ed448-sha256");
    EXPECT_EQ(error_of(with("b", "b=AAA")), "b= is not valid base64");
    EXPECT_EQ(error_of(with("b", "b=")), "b= is empty");
    EXPECT_EQ(error_of(with("bh", "bh=A=AA")), "bh= is not valid base64");
    EXPECT_EQ(error_of(with("c", "c=nowsp")), "unknown canonicalization c=nowsp");
    EXPECT_EQ(error_of(with("c", "c=relaxed/")), "unknown canonicalization c=relaxed/");
    EXPECT_EQ(error_of(with("c", "c=simple/simple/simple")), "unknown canonicalization c=simple/simple/simple");
    EXPECT_EQ(error_of(with("d", "d=")), "d= is not a domain name");
    EXPECT_EQ(error_of(with("d", "d=exa mple.com")), "d= is not a domain name");
    EXPECT_EQ(error_of(with("d", "d=.example.com")), "d= is not a domain name");
    EXPECT_EQ(error_of(with("d", "d=" + std::string(64, 'a') + ".com")), "d= is not a domain name");
    EXPECT_EQ(error_of(with("s", "s=a..b")), "s= is not a valid selector");
    EXPECT_EQ(error_of(with("h", "h=to:subject")), "h= does not include From");
    EXPECT_EQ(error_of(with("h", "h=from::to")), "h= holds an empty or invalid field name");
    EXPECT_EQ(error_of(with("h", "h=from:")), "h= holds an empty or invalid field name");
    EXPECT_EQ(error_of(with("i", "i=user.example.com")), "i= has no '@'");
    EXPECT_EQ(error_of(with("i", "i=@example.org")), "i= domain is not d= or a subdomain of it");
    EXPECT_EQ(error_of(with("i", "i=@badexample.com")), "i= domain is not d= or a subdomain of it");
    EXPECT_EQ(error_of(with("l", "l=12a")), "l= is not a number");
    EXPECT_EQ(error_of(with("l", "l=-1")), "l= is not a number");
    EXPECT_EQ(error_of(with("q", "q=dns")), "q= offers no supported query method (only dns/txt)");
    EXPECT_EQ(error_of(with("t", "t=yesterday")), "t= is not a timestamp");
    EXPECT_EQ(error_of(with("t", "t=1234567890123")), "t= is not a timestamp");   // 13 digits
    EXPECT_EQ(error_of(with("x", "x=1; t=2")), "x= is not after t=");
    EXPECT_EQ(error_of(with("x", "x=2; t=2")), "x= is not after t=");
    EXPECT_EQ(error_of(kBase + "; d=example.org"), "malformed tag list: tag given twice");
    EXPECT_EQ(error_of("v=1; a"), "malformed tag list: '=' expected after a tag name");
    // What could be read is kept for the outcome.
    const auto p = parse_dkim_signature(with("a", "a=rsa-sha1"));
    EXPECT_EQ(p.signature.domain, "example.com");
    EXPECT_EQ(p.signature.selector, "sel");
    EXPECT_EQ(p.signature.algorithm_name, "rsa-sha1");
    EXPECT_EQ(p.signature.signature_b, "AAAA");
}

TEST(DkimSignature, RemoveBValue) {
    EXPECT_EQ(remove_b_value("DKIM-Signature: v=1; b=abc\r\n def; bh=xyz\r\n"), "DKIM-Signature: v=1; b=; bh=xyz\r\n");
    // b= last: its folded value and the whitespace around it go, the final CRLF stays.
    EXPECT_EQ(remove_b_value("DKIM-Signature: v=1;\r\n b = ab\r\n cd \r\n"), "DKIM-Signature: v=1;\r\n b =\r\n");
    // bh= is not b=; a "b=" inside another tag's value is not either.
    EXPECT_EQ(remove_b_value("DKIM-Signature: bh=abc; z=b=1; b=q"), "DKIM-Signature: bh=abc; z=b=1; b=");
    EXPECT_EQ(remove_b_value("DKIM-Signature: v=1; bh=abc\r\n"), "DKIM-Signature: v=1; bh=abc\r\n");
    EXPECT_EQ(remove_b_value("no colon here"), "no colon here");
    EXPECT_EQ(remove_b_value("X:b=1;b=2"), "X:b=;b=2");   // only the first (duplicates make the field invalid anyway)
}

TEST(DkimSignature, DomainNames) {
    EXPECT_TRUE(valid_domain_name("example.com"));
    EXPECT_TRUE(valid_domain_name("s_1-a"));
    EXPECT_TRUE(valid_domain_name(std::string(63, 'a')));
    EXPECT_FALSE(valid_domain_name(std::string(64, 'a')));
    EXPECT_FALSE(valid_domain_name("example.com."));
    EXPECT_FALSE(valid_domain_name("exam\xc3\xa9.com"));
    EXPECT_TRUE(is_same_or_subdomain("Mail.Example.com", "example.COM"));
    EXPECT_TRUE(is_same_or_subdomain("example.com", "example.com"));
    EXPECT_FALSE(is_same_or_subdomain("badexample.com", "example.com"));
    EXPECT_FALSE(is_same_or_subdomain("com", "example.com"));
    EXPECT_FALSE(is_same_or_subdomain("", ""));
}
