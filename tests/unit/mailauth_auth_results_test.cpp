#include "mailauth/auth_results.hpp"

#include <gtest/gtest.h>

using namespace ferry::mailauth;

namespace {

SpfOutcome spf(SpfResult r, std::string identity, std::string sender, std::string domain, std::string reason = "") {
    SpfOutcome o;
    o.result = r;
    o.identity = std::move(identity);
    o.sender = std::move(sender);
    o.domain = std::move(domain);
    o.reason = std::move(reason);
    return o;
}

DkimOutcome dkim(DkimResult r, std::string d, std::string b = "AbCdEfGh1234+/==", std::string reason = "") {
    DkimOutcome o;
    o.result = r;
    o.domain = d;
    o.selector = "sel";
    o.identity = "@" + d;
    o.algorithm = "rsa-sha256";
    o.signature_b = std::move(b);
    o.reason = std::move(reason);
    return o;
}

DmarcOutcome dmarc(DmarcResult r, Disposition policy, Disposition disposition, std::string from = "example.com") {
    DmarcOutcome o;
    o.result = r;
    o.from_domain = std::move(from);
    o.policy = policy;
    o.disposition = disposition;
    return o;
}

std::vector<std::string> lines_of(const std::string& field) {
    std::vector<std::string> lines;
    std::size_t at = 0;
    while (at < field.size()) {
        const auto end = field.find("\r\n", at);
        if (end == std::string::npos) {
            lines.push_back(field.substr(at));
            break;
        }
        lines.push_back(field.substr(at, end - at));
        at = end + 2;
    }
    return lines;
}

// The field is one header field: it ends in CRLF, every other CRLF is followed by WSP, no bare CR or LF, and
// everything else is printable ASCII.
void expect_one_safe_field(const std::string& field) {
    ASSERT_GE(field.size(), 2u);
    EXPECT_EQ(field.substr(field.size() - 2), "\r\n");
    for (std::size_t i = 0; i < field.size(); ++i) {
        const char c = field[i];
        if (c == '\r') {
            ASSERT_LT(i + 1, field.size());
            EXPECT_EQ(field[i + 1], '\n') << field;
            if (i + 2 < field.size()) {
                EXPECT_TRUE(field[i + 2] == '\t' || field[i + 2] == ' ') << field;
            }
        } else if (c == '\n') {
            EXPECT_EQ(field[i - 1], '\r') << field;
        } else {
            EXPECT_TRUE((c >= 0x20 && c <= 0x7e) || c == '\t') << "octet " << int(static_cast<unsigned char>(c));
        }
    }
}

}  // namespace

TEST(AuthResults, NothingToReport) {
    EXPECT_EQ(authentication_results_field({"mx.example.net", {}, {}, std::nullopt}),
              "Authentication-Results: mx.example.net; none\r\n");
}

TEST(AuthResults, AllMethods) {
    AuthResultsInput in;
    in.authserv_id = "mx.example.net";
    in.spf = {spf(SpfResult::pass, "mailfrom", "bounce@example.com", "example.com", "matched ip4:192.0.2.0/24"),
              spf(SpfResult::none, "helo", "postmaster@mail.example.com", "mail.example.com", "no SPF record")};
    in.dkim = {dkim(DkimResult::pass, "example.com")};
    in.dmarc = dmarc(DmarcResult::pass, Disposition::reject, Disposition::none);
    EXPECT_EQ(authentication_results_field(in),
              "Authentication-Results: mx.example.net;\r\n"
              "\tspf=pass (matched ip4:192.0.2.0/24) smtp.mailfrom=bounce@example.com;\r\n"
              "\tspf=none (no SPF record) smtp.helo=mail.example.com;\r\n"
              "\tdkim=pass header.d=example.com header.i=@example.com header.s=sel\r\n"
              "\theader.a=rsa-sha256 header.b=AbCdEfGh;\r\n"
              "\tdmarc=pass (p=reject dis=none) header.from=example.com\r\n");
}

TEST(AuthResults, EveryResultWord) {
    for (const auto r : {SpfResult::none, SpfResult::neutral, SpfResult::pass, SpfResult::fail, SpfResult::softfail,
                         SpfResult::temperror, SpfResult::permerror}) {
        const auto f = authentication_results_field({"mx", {spf(r, "mailfrom", "a@example.com", "example.com")}, {}, {}});
        EXPECT_EQ(f, "Authentication-Results: mx;\r\n\tspf=" + std::string(to_string(r)) +
                         " smtp.mailfrom=a@example.com\r\n");
    }
    for (const auto r : {DkimResult::none, DkimResult::pass, DkimResult::fail, DkimResult::policy, DkimResult::neutral,
                         DkimResult::temperror, DkimResult::permerror}) {
        const auto f = authentication_results_field({"mx", {}, {dkim(r, "example.com", "AAAAAAAA")}, {}});
        EXPECT_EQ(f.find("\r\n\tdkim=" + std::string(to_string(r)) + " header.d=example.com"), 27u) << f;
    }
    for (const auto r : {DmarcResult::none, DmarcResult::pass, DmarcResult::fail, DmarcResult::temperror,
                         DmarcResult::permerror}) {
        auto d = dmarc(r, Disposition::quarantine, Disposition::quarantine);
        d.reason = "why";
        const auto f = authentication_results_field({"mx", {}, {}, d});
        const bool evaluated = r == DmarcResult::pass || r == DmarcResult::fail;
        EXPECT_EQ(f, "Authentication-Results: mx;\r\n\tdmarc=" + std::string(to_string(r)) +
                         (evaluated ? " (p=quarantine dis=quarantine)" : " (why)") + " header.from=example.com\r\n");
    }
}

TEST(AuthResults, DkimDetails) {
    auto test_key = dkim(DkimResult::fail, "example.com", "ab/cd+ef=", "body hash mismatch");
    test_key.testing = true;
    const auto f = authentication_results_field({"mx", {}, {test_key}, {}});
    EXPECT_NE(f.find("dkim=fail (body hash mismatch; key in test mode)"), std::string::npos) << f;
    EXPECT_NE(f.find("header.b=\"ab/cd+ef\""), std::string::npos) << f;   // '/' is a tspecial: quoted

    // RFC 6008: enough of b= to tell two signatures apart.
    const auto two = authentication_results_field(
        {"mx", {}, {dkim(DkimResult::pass, "a.example", "ABCDEFGHIJ1"), dkim(DkimResult::pass, "b.example", "ABCDEFGHIK2")}, {}});
    EXPECT_NE(two.find("header.b=ABCDEFGHIJ;"), std::string::npos) << two;
    EXPECT_NE(two.find("header.b=ABCDEFGHIK\r\n"), std::string::npos) << two;

    // Empty properties are left out.
    DkimOutcome none;
    none.reason = "no signature";
    EXPECT_EQ(authentication_results_field({"mx", {}, {none}, {}}),
              "Authentication-Results: mx;\r\n\tdkim=none (no signature)\r\n");
}

TEST(AuthResults, FoldsLongLines) {
    AuthResultsInput in;
    in.authserv_id = "mx.example.net";
    std::string reason;
    for (int i = 0; i < 30; ++i) reason += "word" + std::to_string(i) + " ";
    in.spf = {spf(SpfResult::fail, "mailfrom", "someone.with.a.long.name@subdomain.of.a.long.example.com",
                  "subdomain.of.a.long.example.com", reason)};
    in.dkim = {dkim(DkimResult::pass, "example.com"), dkim(DkimResult::fail, "example.org", "Zm9vYmFy", reason)};
    in.dmarc = dmarc(DmarcResult::fail, Disposition::reject, Disposition::reject);
    const auto field = authentication_results_field(in);
    expect_one_safe_field(field);
    const auto lines = lines_of(field);
    EXPECT_GT(lines.size(), 6u);
    for (const auto& line : lines) EXPECT_LE(line.size(), kFoldLineOctets) << line;
    // The long comment was cut to kMaxCommentOctets.
    EXPECT_NE(field.find("...)"), std::string::npos);
}

TEST(AuthResults, PropertyValues) {
    EXPECT_EQ(property_value("example.com"), "example.com");
    EXPECT_EQ(property_value("a.b@example.com"), "a.b@example.com");
    EXPECT_EQ(property_value("@example.com"), "@example.com");
    EXPECT_EQ(property_value("\"a b\"@example.com"), "\"a b\"@example.com");
    EXPECT_EQ(property_value("a b@example.com"), "\"a b@example.com\"");
    EXPECT_EQ(property_value("user@localhost"), "\"user@localhost\"");   // domain-name has two labels or more
    EXPECT_EQ(property_value("x@[192.0.2.1]"), "\"x@[192.0.2.1]\"");
    EXPECT_EQ(property_value("a\"b\\c"), "\"a\\\"b\\\\c\"");
    EXPECT_EQ(property_value("a;b"), "\"a;b\"");
    EXPECT_EQ(property_value("(x)"), "\"(x)\"");
    EXPECT_FALSE(property_value(""));
    EXPECT_FALSE(property_value("j\xc3\xb6rg@example.com"));
    EXPECT_FALSE(property_value("a\r\nb"));
    EXPECT_FALSE(property_value("a\tb"));
    EXPECT_FALSE(property_value(std::string(kMaxPropertyValueOctets + 1, 'a')));
    EXPECT_EQ(property_value(std::string(kMaxPropertyValueOctets, 'a')), std::string(kMaxPropertyValueOctets, 'a'));
}

TEST(AuthResults, CommentText) {
    EXPECT_EQ(comment_text("  plain  text\t"), "plain text");
    EXPECT_EQ(comment_text("(unbalanced ( ) \\ )"), "[unbalanced [ ] / ]");
    EXPECT_EQ(comment_text("line\r\nX-Injected: yes"), "line X-Injected: yes");
    EXPECT_EQ(comment_text("caf\xc3\xa9\x01"), "caf???");
    EXPECT_EQ(comment_text(std::string(500, 'x')).size(), kMaxCommentOctets);
}

TEST(AuthResults, NothingFromOutsideCanAddALine) {
    AuthResultsInput in;
    in.authserv_id = "mx.example.net";
    in.spf = {spf(SpfResult::fail, "mailfrom", "a@evil.test\r\nBcc: victim@example.com", "evil.test",
                  "exp text\r\nX-Spam: no\n\rSubject: (hi")};
    in.dkim = {dkim(DkimResult::fail, "evil.test\r\nX-Evil: 1", "b\r\nX: 1", "bad\nX-Evil: 2")};
    in.dkim[0].selector = "s\rX";
    in.dkim[0].algorithm = "rsa-sha256\r\n";
    auto d = dmarc(DmarcResult::none, Disposition::none, Disposition::none, "evil.test\r\n\r\nbody");
    d.reason = ")) ; dmarc=pass";
    in.dmarc = d;
    const auto field = authentication_results_field(in);
    expect_one_safe_field(field);
    EXPECT_EQ(field.find("\r\nBcc"), std::string::npos);
    EXPECT_EQ(field.find("\r\nX"), std::string::npos);
    EXPECT_EQ(field.find("header.d="), std::string::npos);   // not writable: dropped
    EXPECT_EQ(field.find("smtp.mailfrom="), std::string::npos);
    EXPECT_EQ(field.find("header.from="), std::string::npos);
    EXPECT_NE(field.find("(exp text X-Spam: no Subject: [hi)"), std::string::npos) << field;
    EXPECT_NE(field.find("(]] ; dmarc=pass)"), std::string::npos) << field;
}

TEST(AuthResults, AuthservIdIsAlwaysAValue) {
    EXPECT_EQ(authentication_results_field({"mx example", {}, {}, {}}), "Authentication-Results: \"mx example\"; none\r\n");
    EXPECT_EQ(authentication_results_field({"mx\r\nX: y", {}, {}, {}}), "Authentication-Results: \"mx??X: y\"; none\r\n");
    EXPECT_EQ(authentication_results_field({"", {}, {}, {}}), "Authentication-Results: \"\"; none\r\n");
}

TEST(AuthResults, AuthservIdOf) {
    EXPECT_EQ(authserv_id_of("mx.example.net; spf=pass smtp.mailfrom=a@example.com"), "mx.example.net");
    EXPECT_EQ(authserv_id_of(" MX.Example.NET;none"), "mx.example.net");
    EXPECT_EQ(authserv_id_of("(comment (nested; with \\) semicolon)) mx.example.net (c) 1 (c); none"),
              "mx.example.net");
    EXPECT_EQ(authserv_id_of("mx.example.net 1; none"), "mx.example.net");
    EXPECT_EQ(authserv_id_of("mx.example.net\r\n\t1\r\n ;"), "mx.example.net");
    EXPECT_EQ(authserv_id_of("\"MX.example.net\"; none"), "mx.example.net");
    EXPECT_EQ(authserv_id_of("\"mx;\\\"odd\\\"\" ; none"), "mx;\"odd\"");
    EXPECT_EQ(authserv_id_of("mx.example.net"), "mx.example.net");   // no ';': still a claim
    EXPECT_EQ(authserv_id_of("mx.example.net (c)"), "mx.example.net");
    // Our own field reads back as our id.
    const auto ours = authentication_results_field({"Mx.Example.Net", {}, {dkim(DkimResult::pass, "example.com")}, {}});
    EXPECT_EQ(authserv_id_of(ours.substr(ours.find(':') + 1)), "mx.example.net");
}

TEST(AuthResults, AuthservIdOfGarbage) {
    EXPECT_FALSE(authserv_id_of(""));
    EXPECT_FALSE(authserv_id_of("   "));
    EXPECT_FALSE(authserv_id_of("; spf=pass"));
    EXPECT_FALSE(authserv_id_of("(unterminated mx.example.net; spf=pass"));
    EXPECT_FALSE(authserv_id_of("\"unterminated; spf=pass"));
    EXPECT_FALSE(authserv_id_of("mx.example.net extra; spf=pass"));
    EXPECT_FALSE(authserv_id_of("mx.example.net 1 2; spf=pass"));
    EXPECT_FALSE(authserv_id_of("mx.example.net 1x; spf=pass"));
    EXPECT_FALSE(authserv_id_of("\"mx\"1; spf=pass"));
    EXPECT_FALSE(authserv_id_of("@; none"));
    EXPECT_FALSE(authserv_id_of("mx@example.net; none"));
    EXPECT_FALSE(authserv_id_of("m\xc3\xa9x; none"));
    EXPECT_FALSE(authserv_id_of("mx\r\nX: y; none"));   // a bare line break is not folding
}
