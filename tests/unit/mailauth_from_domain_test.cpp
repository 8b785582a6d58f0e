#include "mailauth/from_domain.hpp"

#include <gtest/gtest.h>

using namespace ferry::mailauth;

namespace {

std::optional<std::string> domain_of(const std::string& header, std::string* problem_out = nullptr) {
    std::string problem;
    auto d = from_domain(header, problem);
    if (problem_out) *problem_out = problem;
    if (d) {
        EXPECT_EQ(problem, "");
    }
    return d;
}

std::string problem_of(const std::string& header) {
    std::string problem;
    EXPECT_FALSE(domain_of(header, &problem)) << header;
    EXPECT_FALSE(problem.empty());
    return problem;
}

}  // namespace

TEST(FromDomain, PlainAddress) {
    EXPECT_EQ(domain_of("From: alice@example.com\r\nTo: bob@example.net\r\n"), "example.com");
    EXPECT_EQ(domain_of("from:alice@Example.COM\n"), "example.com");
    EXPECT_EQ(domain_of("Subject: x\r\nFROM : alice@example.com\r\n"), "example.com");
}

TEST(FromDomain, DisplayNames) {
    EXPECT_EQ(domain_of("From: Alice <alice@example.com>\r\n"), "example.com");
    EXPECT_EQ(domain_of("From: \"Alice, the <first>\" <alice@Mail.Example.com>\r\n"), "mail.example.com");
    EXPECT_EQ(domain_of("From: John Q. Public <jqp@example.com>\r\n"), "example.com");   // obs-phrase
    EXPECT_EQ(domain_of("From: \"evil@attacker.test\" <alice@example.com>\r\n"), "example.com");
    EXPECT_EQ(domain_of("From: =?utf-8?q?J=C3=B6rg?= <j@example.com>\r\n"), "example.com");
}

TEST(FromDomain, Comments) {
    EXPECT_EQ(domain_of("From: alice@example.com (Alice (the (first)) \\) one)\r\n"), "example.com");
    EXPECT_EQ(domain_of("From: (x@evil.test) alice (c) @ (c) example.com (c)\r\n"), "example.com");
    EXPECT_EQ(domain_of("From: Alice <alice@example.com (evil.test)>\r\n"), "example.com");
}

TEST(FromDomain, QuotedLocalPartsRoutesAndUtf8) {
    EXPECT_EQ(domain_of("From: \"a b@c\"@example.com\r\n"), "example.com");
    EXPECT_EQ(domain_of("From: <@relay.test,@other.test:alice@example.com>\r\n"), "example.com");
    EXPECT_EQ(domain_of("From: Jörg <jörg@Bücher.example>\r\n"), "bücher.example");
}

TEST(FromDomain, Groups) {
    EXPECT_EQ(domain_of("From: Team: a@example.com, Bob <b@example.com>;\r\n"), "example.com");
    EXPECT_EQ(problem_of("From: undisclosed-recipients:;\r\n"), "From field holds no address");
    EXPECT_NE(problem_of("From: A: B: c@example.com;;\r\n").find("group"), std::string::npos);
    EXPECT_NE(problem_of("From: Team: a@example.com\r\n").find("';'"), std::string::npos);
}

TEST(FromDomain, SeveralAddresses) {
    EXPECT_EQ(domain_of("From: a@example.com, B <b@EXAMPLE.com>, , c@example.com\r\n"), "example.com");
    EXPECT_EQ(problem_of("From: a@example.com, b@example.net\r\n"), "From addresses have different domains");
    EXPECT_EQ(problem_of("From: a@example.com, b@sub.example.com\r\n"), "From addresses have different domains");
}

TEST(FromDomain, NoneOrTwoFromFields) {
    EXPECT_EQ(problem_of("To: bob@example.net\r\nSubject: hi\r\n"), "no From field");
    EXPECT_EQ(problem_of(""), "no From field");
    EXPECT_EQ(problem_of("From: a@example.com\r\nTo: b@example.net\r\nFrom: a@example.com\r\n"), "2 From fields");
    EXPECT_EQ(problem_of("From: a@example.com\r\nfrom: x@evil.test\r\n"), "2 From fields");
    // A field whose name merely starts with From is another field.
    EXPECT_EQ(domain_of("From: a@example.com\r\nFrom-Evil: x@evil.test\r\n"), "example.com");
}

TEST(FromDomain, FoldedField) {
    EXPECT_EQ(domain_of("From: Alice\r\n <alice@example.com>\r\nTo: b@example.net\r\n"), "example.com");
    EXPECT_EQ(domain_of("From:\r\n\talice@\r\n example.com\r\n"), "example.com");
    EXPECT_EQ(domain_of("From: a@example.com,\n b@example.com\n"), "example.com");
}

TEST(FromDomain, Unreadable) {
    EXPECT_NE(problem_of("From: alice\r\n").find("does not parse"), std::string::npos);
    EXPECT_NE(problem_of("From: <alice@example.com\r\n").find("does not parse"), std::string::npos);
    EXPECT_NE(problem_of("From: alice@\r\n").find("does not parse"), std::string::npos);
    EXPECT_NE(problem_of("From: alice@example..com\r\n").find("does not parse"), std::string::npos);
    EXPECT_NE(problem_of("From: alice@example.com.\r\n").find("does not parse"), std::string::npos);
    EXPECT_NE(problem_of("From: \"alice@example.com\r\n").find("quoted"), std::string::npos);
    EXPECT_NE(problem_of("From: alice@example.com (x\r\n").find("comment"), std::string::npos);
    EXPECT_NE(problem_of("From: <>\r\n").find("empty"), std::string::npos);
    EXPECT_NE(problem_of("From: Alice Smith@example.com\r\n").find("does not parse"), std::string::npos);
    EXPECT_NE(problem_of("From: a@b.example x@evil.test\r\n").find("does not parse"), std::string::npos);
    EXPECT_NE(problem_of("From: a@example.com\rx\r\n").find("control"), std::string::npos);
    EXPECT_EQ(problem_of("From: a@[192.0.2.1]\r\n"), "From address has a domain literal");
    EXPECT_EQ(problem_of("From: a@exa!mple.com\r\n"), "From domain is not a DNS name");
    EXPECT_EQ(problem_of("From: a@" + std::string(64, 'x') + ".example\r\n"), "From domain is not a DNS name");
}

TEST(FromDomain, AddressList) {
    std::string problem;
    const auto list = parse_address_list("\"A\" <a@x.example>, b.c@[10.0.0.1] (B), G: d@y.example;", problem);
    ASSERT_TRUE(list) << problem;
    ASSERT_EQ(list->size(), 3u);
    EXPECT_EQ((*list)[0].local_part, "a");
    EXPECT_EQ((*list)[0].domain, "x.example");
    EXPECT_EQ((*list)[1].local_part, "b.c");
    EXPECT_EQ((*list)[1].domain, "[10.0.0.1]");
    EXPECT_EQ((*list)[2].domain, "y.example");
    EXPECT_TRUE(parse_address_list("", problem)->empty());
}
