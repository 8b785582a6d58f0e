#include "smtp/address.hpp"

#include <gtest/gtest.h>

#include <string>

namespace ferry::smtp {
namespace {

// Parses a complete path; fails the test when the path does not take the whole input.
PathParse parse_whole(std::string_view text, bool allow_null = false) {
    PathParse p = parse_path(text, allow_null);
    if (p.error == PathError::none) {
        EXPECT_EQ(p.consumed, text.size()) << text;
    }
    return p;
}

Mailbox parse_ok(std::string_view text) {
    PathParse p = parse_whole(text);
    EXPECT_EQ(p.error, PathError::none) << text;
    if (p.error != PathError::none || !p.path.mailbox) {
        ADD_FAILURE() << "no mailbox for " << text;
        return {};
    }
    return *p.path.mailbox;
}

PathError parse_error(std::string_view text, bool allow_null = false) {
    return parse_path(text, allow_null).error;
}

// --- simple mailboxes --------------------------------------------------------------------------------

TEST(SmtpAddress, SimpleMailbox) {
    const Mailbox mb = parse_ok("<joe@example.test>");
    EXPECT_EQ(mb.local, "joe");
    EXPECT_EQ(mb.domain, "example.test");
    EXPECT_FALSE(mb.utf8);
    EXPECT_EQ(mb.to_string(), "joe@example.test");
}

TEST(SmtpAddress, ConsumedStopsAtClosingBracket) {
    const PathParse p = parse_path("<joe@example.test> SIZE=100", false);
    ASSERT_EQ(p.error, PathError::none);
    EXPECT_EQ(p.consumed, 18u);
    ASSERT_TRUE(p.path.mailbox);
    EXPECT_EQ(p.path.mailbox->domain, "example.test");
}

TEST(SmtpAddress, PathToStringKeepsBrackets) {
    EXPECT_EQ(parse_whole("<joe@example.test>").path.to_string(), "<joe@example.test>");
    EXPECT_EQ(parse_whole("<>", true).path.to_string(), "<>");
}

TEST(SmtpAddress, AtextCharactersAllowedInDotString) {
    const Mailbox mb = parse_ok("<a!#$%&'*+-/=?^_`{|}~z@example.test>");
    EXPECT_EQ(mb.local, "a!#$%&'*+-/=?^_`{|}~z");
    EXPECT_EQ(mb.to_string(), "a!#$%&'*+-/=?^_`{|}~z@example.test");
}

TEST(SmtpAddress, DotStringWithInnerDots) {
    const Mailbox mb = parse_ok("<first.middle.last@example.test>");
    EXPECT_EQ(mb.local, "first.middle.last");
    EXPECT_EQ(mb.to_string(), "first.middle.last@example.test");
}

TEST(SmtpAddress, DotStringRejectsLeadingTrailingAndDoubleDots) {
    EXPECT_EQ(parse_error("<.joe@example.test>"), PathError::syntax);
    EXPECT_EQ(parse_error("<joe.@example.test>"), PathError::syntax);
    EXPECT_EQ(parse_error("<jo..e@example.test>"), PathError::syntax);
    EXPECT_EQ(parse_error("<.@example.test>"), PathError::syntax);
}

TEST(SmtpAddress, DotStringRejectsSpecialsAndControls) {
    for (const char* bad : {"<jo e@example.test>", "<jo(e@example.test>", "<jo,e@example.test>",
                            "<jo;e@example.test>", "<jo\\e@example.test>", "<jo\"e@example.test>",
                            "<jo[e@example.test>", "<jo\te@example.test>"})
        EXPECT_EQ(parse_error(bad), PathError::syntax) << bad;
    EXPECT_EQ(parse_error(std::string_view("<jo\0e@example.test>", 19)), PathError::syntax);
}

TEST(SmtpAddress, MissingPartsRejected) {
    EXPECT_EQ(parse_error("<@example.test>"), PathError::syntax);
    EXPECT_EQ(parse_error("<joe@>"), PathError::syntax);
    EXPECT_EQ(parse_error("<joe>"), PathError::syntax);
    EXPECT_EQ(parse_error("<joe@@example.test>"), PathError::syntax);
    EXPECT_EQ(parse_error("<a@b@example.test>"), PathError::syntax);
}

TEST(SmtpAddress, BracketsRequired) {
    EXPECT_EQ(parse_error("joe@example.test"), PathError::syntax);
    EXPECT_EQ(parse_error("<joe@example.test"), PathError::syntax);
    EXPECT_EQ(parse_error(""), PathError::syntax);
    EXPECT_EQ(parse_error(" <joe@example.test>"), PathError::syntax);
}

TEST(SmtpAddress, BadDomainsRejected) {
    for (const char* bad : {"<joe@example..test>", "<joe@.example.test>", "<joe@example.test.>",
                            "<joe@-example.test>", "<joe@example-.test>", "<joe@exa_mple.test>",
                            "<joe@exa mple.test>", "<joe@example.test >"})
        EXPECT_EQ(parse_error(bad), PathError::syntax) << bad;
}

TEST(SmtpAddress, DomainLabelLengthLimit) {
    const std::string label63(63, 'a');
    EXPECT_EQ(parse_error("<joe@" + label63 + ".test>"), PathError::none);
    EXPECT_EQ(parse_error("<joe@" + label63 + "a.test>"), PathError::syntax);
    EXPECT_EQ(parse_error("<joe@ex-am-ple.test>"), PathError::none);
    EXPECT_EQ(parse_error("<joe@123.example.test>"), PathError::none);
}

// --- quoted local parts --------------------------------------------------------------------------------

TEST(SmtpAddress, QuotedLocalPartWithSpace) {
    const Mailbox mb = parse_ok("<\"john doe\"@example.test>");
    EXPECT_EQ(mb.local, "john doe");
    EXPECT_EQ(mb.domain, "example.test");
    EXPECT_EQ(mb.to_string(), "\"john doe\"@example.test");
}

TEST(SmtpAddress, QuotedPairsResolvedAndRequoted) {
    const Mailbox mb = parse_ok(R"(<"a\"b\\c"@example.test>)");
    EXPECT_EQ(mb.local, R"(a"b\c)");
    EXPECT_EQ(mb.to_string(), R"("a\"b\\c"@example.test)");
}

TEST(SmtpAddress, QuotedPairOfOrdinaryCharacterIsUnquoted) {
    const Mailbox mb = parse_ok(R"(<"\j\o\e"@example.test>)");
    EXPECT_EQ(mb.local, "joe");
    // The content is a plain dot-string, so to_string() needs no quotes.
    EXPECT_EQ(mb.to_string(), "joe@example.test");
}

TEST(SmtpAddress, QuotedLocalPartNeedingQuotesForDots) {
    const Mailbox mb = parse_ok("<\"joe..smith\"@example.test>");
    EXPECT_EQ(mb.local, "joe..smith");
    EXPECT_EQ(mb.to_string(), "\"joe..smith\"@example.test");
    const Mailbox lead = parse_ok("<\".joe\"@example.test>");
    EXPECT_EQ(lead.to_string(), "\".joe\"@example.test");
}

TEST(SmtpAddress, QuotedLocalPartMayHoldAtAndAngleBrackets) {
    const Mailbox mb = parse_ok("<\"a@b>c\"@example.test>");
    EXPECT_EQ(mb.local, "a@b>c");
    EXPECT_EQ(mb.domain, "example.test");
    EXPECT_EQ(mb.to_string(), "\"a@b>c\"@example.test");
}

TEST(SmtpAddress, EmptyQuotedLocalPart) {
    const Mailbox mb = parse_ok("<\"\"@example.test>");
    EXPECT_EQ(mb.local, "");
    EXPECT_EQ(mb.to_string(), "\"\"@example.test");
}

TEST(SmtpAddress, BadQuotedLocalParts) {
    EXPECT_EQ(parse_error("<\"joe@example.test>"), PathError::syntax);            // unterminated
    EXPECT_EQ(parse_error("<\"joe\"x@example.test>"), PathError::syntax);         // junk after quote
    EXPECT_EQ(parse_error("<\"joe\"example.test>"), PathError::syntax);           // no '@'
    EXPECT_EQ(parse_error("<\"jo\te\"@example.test>"), PathError::syntax);        // control in qtext
    EXPECT_EQ(parse_error("<\"jo\\\te\"@example.test>"), PathError::syntax);      // quoted-pair of a control
    EXPECT_EQ(parse_error("<\"jo\x7f\"@example.test>"), PathError::syntax);       // DEL
    EXPECT_EQ(parse_error("<\"joe\"@>"), PathError::syntax);
}

// --- source routes -----------------------------------------------------------------------------------

TEST(SmtpAddress, SourceRouteAcceptedAndIgnored) {
    const PathParse p = parse_whole("<@a.test,@b.test:joe@c.test>");
    ASSERT_EQ(p.error, PathError::none);
    ASSERT_TRUE(p.path.mailbox);
    EXPECT_EQ(p.path.mailbox->local, "joe");
    EXPECT_EQ(p.path.mailbox->domain, "c.test");
    EXPECT_EQ(p.path.to_string(), "<joe@c.test>");
}

TEST(SmtpAddress, SingleHopSourceRoute) {
    const Mailbox mb = parse_ok("<@a.test:joe@c.test>");
    EXPECT_EQ(mb.to_string(), "joe@c.test");
}

TEST(SmtpAddress, SourceRouteWithAddressLiterals) {
    EXPECT_EQ(parse_ok("<@[192.0.2.1]:joe@c.test>").to_string(), "joe@c.test");
    // The colons inside an IPv6 literal are not the end of the route.
    EXPECT_EQ(parse_ok("<@[IPv6:2001:db8::1],@b.test:joe@c.test>").to_string(), "joe@c.test");
}

TEST(SmtpAddress, BadSourceRoutes) {
    for (const char* bad : {"<@a.test joe@c.test>", "<@:joe@c.test>", "<@a.test,b.test:joe@c.test>",
                            "<@a..test:joe@c.test>", "<@a.test,:joe@c.test>", "<@a.test,@:joe@c.test>",
                            "<@a.test:>", "<@[1.2.3]:joe@c.test>"})
        EXPECT_EQ(parse_error(bad), PathError::syntax) << bad;
}

// --- address literals ----------------------------------------------------------------------------------

TEST(SmtpAddress, Ipv4Literal) {
    const Mailbox mb = parse_ok("<joe@[1.2.3.4]>");
    EXPECT_EQ(mb.domain, "[1.2.3.4]");
    EXPECT_EQ(mb.to_string(), "joe@[1.2.3.4]");
    EXPECT_FALSE(mb.utf8);
}

TEST(SmtpAddress, Ipv6Literal) {
    EXPECT_EQ(parse_ok("<joe@[IPv6:::1]>").domain, "[IPv6:::1]");
    EXPECT_EQ(parse_ok("<joe@[IPv6:2001:db8::1]>").domain, "[IPv6:2001:db8::1]");
    EXPECT_EQ(parse_ok("<joe@[IPv6:::ffff:192.0.2.1]>").domain, "[IPv6:::ffff:192.0.2.1]");
}

TEST(SmtpAddress, GeneralAddressLiteral) {
    EXPECT_EQ(parse_ok("<joe@[x-tag:some-content]>").domain, "[x-tag:some-content]");
}

// Found by fuzz_address ("6@[ipvD6:>2]"): parse_mailbox accepted it, but inside angle brackets the '>' of the
// literal was taken as the end of the path. dcontent (RFC 5321 4.1.3) includes '>' and '"'.
TEST(SmtpAddress, GeneralAddressLiteralWithAngleBracketOrQuote) {
    EXPECT_EQ(parse_ok("<6@[ipvD6:>2]>").domain, "[ipvD6:>2]");
    EXPECT_EQ(parse_ok("<joe@[x:\"]>").domain, "[x:\"]");
    const auto bare = parse_mailbox("6@[ipvD6:>2]");
    ASSERT_TRUE(bare.has_value());
    EXPECT_EQ(parse_ok("<" + bare->to_string() + ">"), *bare);
    EXPECT_EQ(parse_error("<joe@[x:>"), PathError::syntax);   // an unclosed literal never ends the path
}

// Found by fuzz_address ("\"Postmaster\"@[z:@-:>:]"): the canonical form Postmaster@[z:@-:>:] no longer parsed,
// because the local part was split at the last '@', which sat inside the literal.
TEST(SmtpAddress, AtSignInsideGeneralAddressLiteral) {
    const Mailbox mb = parse_ok("<\"Postmaster\"@[z:@-:>:]>");
    EXPECT_EQ(mb.local, "Postmaster");
    EXPECT_EQ(mb.domain, "[z:@-:>:]");
    EXPECT_EQ(mb.to_string(), "Postmaster@[z:@-:>:]");
    const auto again = parse_mailbox(mb.to_string());
    ASSERT_TRUE(again.has_value());
    EXPECT_EQ(*again, mb);
    EXPECT_EQ(parse_ok("<joe@[x-tag:a@b]>").local, "joe");
    EXPECT_EQ(parse_error("<joe@x@y.test>"), PathError::syntax);
}

// Found by fuzz_address: parse_mailbox took "0@[-:.GGG...]" with a 303-octet general address literal.
TEST(SmtpAddress, AddressLiteralOver255OctetsRejected) {
    const std::string literal = "[x-tag:" + std::string(247, 'a') + "]";   // 255 octets
    ASSERT_EQ(literal.size(), kMaxDomainLength);
    ASSERT_TRUE(parse_mailbox("joe@" + literal).has_value());
    const std::string longer = "[x-tag:" + std::string(248, 'a') + "]";
    EXPECT_FALSE(parse_mailbox("joe@" + longer).has_value());
}

TEST(SmtpAddress, BadAddressLiterals) {
    for (const char* bad : {"<joe@[1.2.3.256]>", "<joe@[1.2.3]>", "<joe@[1.2.3.4.5]>", "<joe@[]>",
                            "<joe@[IPv6:1.2.3.4]>", "<joe@[IPv6:::g]>", "<joe@[IPv6:1:2:3:4:5:6:7:8:9]>",
                            "<joe@[1.2.3.4>", "<joe@1.2.3.4]>", "<joe@[:x]>", "<joe@[tag:]>",
                            "<joe@[ta_g:x]>", "<joe@[tag:a b]>", "<joe@[tag:a\\b]>", "<joe@[hello]>",
                            "<joe@[1.2.3.4]x>", "<joe@x[1.2.3.4]>"})
        EXPECT_EQ(parse_error(bad), PathError::syntax) << bad;
}

TEST(SmtpAddress, NulInsideAddressLiteralRejected) {
    const std::string v4("<joe@[1.2.3.4\0x]>", 17);
    EXPECT_EQ(parse_error(v4), PathError::syntax);
    const std::string v6("<joe@[IPv6:::1\0x]>", 18);
    EXPECT_EQ(parse_error(v6), PathError::syntax);
}

// --- UTF-8 (RFC 6531) ----------------------------------------------------------------------------------

TEST(SmtpAddress, Utf8LocalPartSetsFlag) {
    const Mailbox mb = parse_ok("<j\xC3\xB6rg@example.test>");   // jörg
    EXPECT_EQ(mb.local, "j\xC3\xB6rg");
    EXPECT_TRUE(mb.utf8);
    EXPECT_EQ(mb.to_string(), "j\xC3\xB6rg@example.test");
}

TEST(SmtpAddress, Utf8DomainSetsFlag) {
    const Mailbox mb = parse_ok("<joe@b\xC3\xBC" "cher.test>");   // bücher.test
    EXPECT_EQ(mb.domain, "b\xC3\xBC" "cher.test");
    EXPECT_TRUE(mb.utf8);
}

TEST(SmtpAddress, Utf8FourByteAndThreeByteSequences) {
    EXPECT_TRUE(parse_ok("<\xF0\x9F\x98\x80@example.test>").utf8);           // U+1F600
    EXPECT_TRUE(parse_ok("<\xE2\x82\xAC@\xE6\x97\xA5\xE6\x9C\xAC.test>").utf8);  // € @ 日本
}

TEST(SmtpAddress, Utf8InQuotedLocalPart) {
    const Mailbox mb = parse_ok("<\"j\xC3\xB6rg m\"@example.test>");
    EXPECT_EQ(mb.local, "j\xC3\xB6rg m");
    EXPECT_TRUE(mb.utf8);
    EXPECT_EQ(mb.to_string(), "\"j\xC3\xB6rg m\"@example.test");
}

TEST(SmtpAddress, MalformedUtf8Rejected) {
    for (const char* bad : {
             "<j\xC3@example.test>",              // truncated sequence
             "<j\xC3(@example.test>",             // bad continuation
             "<j\x80@example.test>",              // lone continuation byte
             "<j\xC0\xAF@example.test>",          // overlong '/'
             "<j\xC1\xBF@example.test>",          // overlong
             "<j\xE0\x80\xAF@example.test>",      // overlong 3-byte
             "<j\xED\xA0\x80@example.test>",      // UTF-16 surrogate
             "<j\xF4\x90\x80\x80@example.test>",  // above U+10FFFF
             "<j\xF5\x80\x80\x80@example.test>",  // invalid lead byte
             "<j\xFF@example.test>",
             "<joe@ex\xC3" "ample.test>",            // in the domain
             "<joe@ex\xED\xA0\x80.test>",
             "<\"j\xC3\"@example.test>",          // in a quoted string
         })
        EXPECT_EQ(parse_error(bad), PathError::syntax) << bad;
}

TEST(SmtpAddress, AsciiAddressHasNoUtf8Flag) {
    EXPECT_FALSE(parse_ok("<\"a b\"@example.test>").utf8);
    EXPECT_FALSE(parse_ok("<joe@[IPv6:::1]>").utf8);
}

// --- length limits (RFC 5321 4.5.3.1) ------------------------------------------------------------------

TEST(SmtpAddress, LocalPartLimit64) {
    const std::string l64(64, 'a');
    const Mailbox mb = parse_ok("<" + l64 + "@example.test>");
    EXPECT_EQ(mb.local, l64);
    EXPECT_EQ(parse_error("<" + l64 + "a@example.test>"), PathError::too_long);
}

TEST(SmtpAddress, QuotedLocalPartLimitCountsQuotes) {
    // The limit is on the Local-part as written, quotes included: 62 octets of content + 2 quotes = 64.
    const std::string c62(62, 'a'), c63(63, 'a');
    EXPECT_EQ(parse_error("<\"" + c62 + " \"@example.test>"), PathError::too_long);
    EXPECT_EQ(parse_error("<\"" + c62.substr(1) + " \"@example.test>"), PathError::none);
    EXPECT_EQ(parse_error("<\"" + c63 + "\"@example.test>"), PathError::too_long);
}

TEST(SmtpAddress, DomainLimit255) {
    // Labels of 63, 63, 63, 61 and 1 octets with their dots: 255 octets, every label within its own limit.
    const std::string l63(63, 'd');
    const std::string d255 = l63 + "." + l63 + "." + l63 + "." + std::string(61, 'd') + ".a";
    ASSERT_EQ(d255.size(), 255u);
    EXPECT_TRUE(is_valid_domain(d255));
    EXPECT_FALSE(is_valid_domain(d255 + "a"));
    EXPECT_TRUE(parse_mailbox("j@" + d255).has_value());
    EXPECT_FALSE(parse_mailbox("j@" + d255 + "a").has_value());
    // Within brackets, a 255-octet domain always makes the path longer than 256 octets.
    EXPECT_EQ(parse_error("<j@" + d255 + ">"), PathError::too_long);
}

TEST(SmtpAddress, PathLimit256IncludesBrackets) {
    // "<" + 64 + "@" + domain + ">" = 256 exactly.
    const std::string local(64, 'l');
    const std::string l63(63, 'd');
    std::string domain = l63 + "." + l63 + ".";
    domain += std::string(256 - 2 - 64 - 1 - domain.size(), 'e');
    const std::string path256 = "<" + local + "@" + domain + ">";
    ASSERT_EQ(path256.size(), 256u);
    const PathParse ok = parse_path(path256, false);
    EXPECT_EQ(ok.error, PathError::none);
    EXPECT_EQ(ok.consumed, 256u);

    const std::string path257 = "<" + local + "@" + domain + "e>";
    ASSERT_EQ(path257.size(), 257u);
    EXPECT_EQ(parse_error(path257), PathError::too_long);
}

TEST(SmtpAddress, PathLimitAppliesToSourceRoutesToo) {
    std::string route = "<";
    while (route.size() < 250) route += "@r.test,";
    route += "@r.test:joe@c.test>";
    ASSERT_GT(route.size(), 256u);
    EXPECT_EQ(parse_error(route), PathError::too_long);
}

// --- null path and Postmaster --------------------------------------------------------------------------

TEST(SmtpAddress, NullPathOnlyWhenAllowed) {
    const PathParse p = parse_path("<>", true);
    EXPECT_EQ(p.error, PathError::none);
    EXPECT_EQ(p.consumed, 2u);
    EXPECT_FALSE(p.path.mailbox.has_value());
    EXPECT_EQ(parse_error("<>", false), PathError::syntax);
    EXPECT_EQ(parse_error("< >", true), PathError::syntax);
}

TEST(SmtpAddress, PostmasterWithoutDomain) {
    for (const char* pm : {"<Postmaster>", "<postmaster>", "<POSTMASTER>"}) {
        const PathParse p = parse_whole(pm);
        ASSERT_EQ(p.error, PathError::none) << pm;
        ASSERT_TRUE(p.path.mailbox);
        EXPECT_EQ(p.path.mailbox->domain, "");
        EXPECT_FALSE(p.path.mailbox->utf8);
        EXPECT_EQ(p.path.mailbox->key(), "postmaster");
    }
    const Mailbox mb = parse_ok("<Postmaster>");
    EXPECT_EQ(mb.local, "Postmaster");
    EXPECT_EQ(mb.to_string(), "Postmaster");
    EXPECT_EQ(parse_error("<Postmistress>"), PathError::syntax);
    EXPECT_EQ(parse_error("<\"Postmaster\">"), PathError::syntax);
}

TEST(SmtpAddress, PostmasterWithDomainIsOrdinaryMailbox) {
    const Mailbox mb = parse_ok("<Postmaster@Example.TEST>");
    EXPECT_EQ(mb.local, "Postmaster");
    EXPECT_EQ(mb.domain, "Example.TEST");
    EXPECT_EQ(mb.key(), "Postmaster@example.test");
}

// --- key() and helpers ---------------------------------------------------------------------------------

TEST(SmtpAddress, KeyLowerCasesDomainOnly) {
    const Mailbox mb = parse_ok("<John.Doe@Example.TEST>");
    EXPECT_EQ(mb.local, "John.Doe");
    EXPECT_EQ(mb.domain, "Example.TEST");   // kept as written
    EXPECT_EQ(mb.key(), "John.Doe@example.test");
    EXPECT_EQ(mb.to_string(), "John.Doe@Example.TEST");
}

TEST(SmtpAddress, KeyLeavesNonAsciiAlone) {
    const Mailbox mb = parse_ok("<J\xC3\x96rg@B\xC3\x9C" "CHER.Test>");
    EXPECT_EQ(mb.key(), "J\xC3\x96rg@b\xC3\x9C" "cher.test");
}

TEST(SmtpAddress, KeyOfQuotedLocalIsUnquoted) {
    EXPECT_EQ(parse_ok("<\"A B\"@X.TEST>").key(), "A B@x.test");
}

TEST(SmtpAddress, AsciiLower) {
    EXPECT_EQ(ascii_lower("AbC-XyZ.09"), "abc-xyz.09");
    EXPECT_EQ(ascii_lower("\xC3\x96"), "\xC3\x96");
    EXPECT_EQ(ascii_lower(""), "");
}

TEST(SmtpAddress, ParseMailboxBare) {
    const auto mb = parse_mailbox("Alice@Example.test");
    ASSERT_TRUE(mb);
    EXPECT_EQ(mb->local, "Alice");
    EXPECT_EQ(mb->domain, "Example.test");
    EXPECT_EQ(mb->key(), "Alice@example.test");
    EXPECT_TRUE(parse_mailbox("\"a b\"@example.test").has_value());
    EXPECT_FALSE(parse_mailbox("<alice@example.test>").has_value());
    EXPECT_FALSE(parse_mailbox("alice").has_value());
    EXPECT_FALSE(parse_mailbox("Postmaster").has_value());
    EXPECT_FALSE(parse_mailbox("alice@example.test ").has_value());
    EXPECT_FALSE(parse_mailbox("").has_value());
    EXPECT_FALSE(parse_mailbox(std::string(65, 'a') + "@example.test").has_value());
}

TEST(SmtpAddress, IsValidDomain) {
    EXPECT_TRUE(is_valid_domain("example.test"));
    EXPECT_TRUE(is_valid_domain("localhost"));
    EXPECT_TRUE(is_valid_domain("a"));
    EXPECT_TRUE(is_valid_domain("xn--bcher-kva.test"));
    EXPECT_TRUE(is_valid_domain("b\xC3\xBC" "cher.test"));
    EXPECT_FALSE(is_valid_domain(""));
    EXPECT_FALSE(is_valid_domain("."));
    EXPECT_FALSE(is_valid_domain("a..b"));
    EXPECT_FALSE(is_valid_domain("a.b."));
    EXPECT_FALSE(is_valid_domain("-a.b"));
    EXPECT_FALSE(is_valid_domain("a-.b"));
    EXPECT_FALSE(is_valid_domain("a_b.test"));
    EXPECT_FALSE(is_valid_domain("[1.2.3.4]"));
    EXPECT_FALSE(is_valid_domain("b\xC3" "cher.test"));
}

// --- the plain addresses and domains of Ferry's own files (address_error, domain_error) ------------------------

TEST(MailSyntax, Addresses) {
    EXPECT_EQ(address_error("alice@example.test"), "");
    EXPECT_EQ(address_error("first.last+tag@sub.example.test"), "");
    EXPECT_EQ(address_error("j\xc3\xb6rg@b\xc3\xbc" "cher.example"), "");
    EXPECT_EQ(address_error("alice"), "expected localpart@domain");
    EXPECT_EQ(address_error("@example.test"), "empty local part");
    EXPECT_EQ(address_error("alice@"), "empty domain");
    EXPECT_EQ(address_error("al ice@example.test"), "space in the local part");
    EXPECT_EQ(address_error("<alice>@example.test"), "invalid character \"<\" in the local part");
    EXPECT_EQ(address_error("al\tice@example.test"), "control character in the local part");
    EXPECT_NE(address_error("alice:x@example.test"), "");
    EXPECT_EQ(address_error("alice@exa_mple.test"), "domain: invalid character \"_\"");
    EXPECT_NE(address_error("alice@[127.0.0.1]"), "");        // no address literals in our files
    EXPECT_NE(address_error("\"al ice\"@example.test"), "");   // nor quoted local parts
    EXPECT_EQ(address_error(std::string(65, 'a') + "@example.test"), "local part longer than 64 octets");
    EXPECT_EQ(address_error("a@\xc3("), "domain: not valid UTF-8");
}

TEST(MailSyntax, Domains) {
    EXPECT_EQ(domain_error("example.test"), "");
    EXPECT_EQ(domain_error("localhost"), "");
    EXPECT_EQ(domain_error("xn--bcher-kva.example"), "");
    EXPECT_EQ(domain_error(""), "empty domain");
    EXPECT_EQ(domain_error("example.test."), "empty label");
    EXPECT_EQ(domain_error(".example"), "empty label");
    EXPECT_EQ(domain_error("-a.example"), "label starts or ends with '-'");
    EXPECT_EQ(domain_error("a-.example"), "label starts or ends with '-'");
    EXPECT_EQ(domain_error(std::string(64, 'a') + ".example"), "label longer than 63 octets");
    EXPECT_EQ(domain_error(std::string(63, 'a') + ".example"), "");
    EXPECT_EQ(domain_error("a b.test"), "invalid character \" \"");
    EXPECT_EQ(domain_error(std::string_view("a\0b", 3)), "invalid character \"\\x00\"");
}

// The two grammars disagreed here: the configuration's address check took any mix of dots in a local part, but
// RFC 5321 4.1.2 Dot-string = Atom *("." Atom), and the session refuses <a..b@x> in MAIL and RCPT. An alias
// "a..b@x" could never be reached, and an account could never log in to send as itself.
TEST(MailSyntax, LocalPartDotsAsRfc5321DotString) {
    EXPECT_EQ(address_error("a..b@example.test"), "two dots in a row in the local part");
    EXPECT_EQ(address_error(".a@example.test"), "the local part starts or ends with '.'");
    EXPECT_EQ(address_error("a.@example.test"), "the local part starts or ends with '.'");
    EXPECT_EQ(address_error(".@example.test"), "the local part starts or ends with '.'");
    EXPECT_EQ(address_error("a.b.c@example.test"), "");
}

// And here: 64 + 1 + 255 octets passed the configuration's check, but a path holds 256 octets with its angle
// brackets (RFC 5321 4.5.3.1.3), so the session answers such a RCPT 501 and the address can never be used.
TEST(MailSyntax, WholeAddressFitsAPath) {
    const std::string l63(63, 'd');
    std::string domain = l63 + "." + l63 + ".";
    const std::string local(64, 'l');
    domain += std::string(254 - 64 - 1 - domain.size(), 'e');
    const std::string a254 = local + "@" + domain;
    ASSERT_EQ(a254.size(), 254u);
    EXPECT_EQ(address_error(a254), "");
    EXPECT_EQ(parse_path("<" + a254 + ">", false).error, PathError::none);
    const std::string a255 = a254 + "e";
    EXPECT_EQ(address_error(a255), "longer than 254 octets (RFC 5321 4.5.3.1.3)");
    EXPECT_EQ(parse_path("<" + a255 + ">", false).error, PathError::too_long);
}

// One grammar: an address Ferry's files accept is a mailbox the session accepts in a path, with the same parts;
// and a dot-string mailbox (no quotes, no literal) the session accepts is one the files accept.
TEST(MailSyntax, PlainAddressesAgreeWithTheSession) {
    const std::string inputs[] = {
        "a@b", "a.b@c.d", "a..b@c.d", ".a@c.d", "a.@c.d", "a b@c.d", "a@b@c.d", "a@-b.c", "a@b_c.d", "a@b..c",
        "a@b.c.", "\xc3\xa4@b.test", "a@\xc3\xa4.test", "\xc3@b.test", "a@b\xed\xa0\x80.test", "!#$%&'*+-/=?^_`{|}~@x.y",
        "a\x7f@b.c", "a(b)@c.d", "a,b@c.d", "a;b@c.d", "a\\b@c.d", "a[b]@c.d", std::string(64, 'a') + "@b.c",
        std::string(65, 'a') + "@b.c", "a@" + std::string(63, 'b') + ".c", "a@" + std::string(64, 'b') + ".c"};
    for (const std::string& a : inputs) {
        const PathParse p = parse_path("<" + a + ">", false);
        const bool session_ok = p.error == PathError::none && p.path.mailbox;
        EXPECT_EQ(address_error(a).empty(), session_ok) << a << ": " << address_error(a);
        if (session_ok && address_error(a).empty()) {
            EXPECT_EQ(p.path.mailbox->to_string(), a);
        }
    }
}

TEST(SmtpAddress, MailboxEquality) {
    EXPECT_EQ(parse_ok("<joe@example.test>"), parse_ok("<\"joe\"@example.test>"));
    EXPECT_NE(parse_ok("<joe@example.test>"), parse_ok("<joe@Example.test>"));
}

}  // namespace
}  // namespace ferry::smtp
