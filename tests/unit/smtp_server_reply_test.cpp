#include "smtp/server_reply.hpp"

#include <gtest/gtest.h>

using namespace ferry::smtp;
using Status = ServerReplyParse::Status;

namespace {

TEST(ServerReply, SingleLineWithEnhancedCode) {
    const auto p = parse_server_reply("250 2.1.0 Ok\r\nrest");
    ASSERT_EQ(p.status, Status::reply);
    EXPECT_EQ(p.consumed, 14u);
    EXPECT_EQ(p.reply.code, 250);
    EXPECT_EQ(p.reply.enhanced, "2.1.0");
    EXPECT_EQ(p.reply.lines, (std::vector<std::string>{"Ok"}));
}

TEST(ServerReply, MultilineAndBareCode) {
    const auto p = parse_server_reply("250-mx.example.org Hello\r\n250-PIPELINING\r\n250 SIZE 1000\r\n");
    ASSERT_EQ(p.status, Status::reply);
    EXPECT_EQ(p.reply.code, 250);
    EXPECT_EQ(p.reply.enhanced, "");
    EXPECT_EQ(p.reply.lines, (std::vector<std::string>{"mx.example.org Hello", "PIPELINING", "SIZE 1000"}));
    const auto bare = parse_server_reply("354\r\n");
    ASSERT_EQ(bare.status, Status::reply);
    EXPECT_EQ(bare.reply.code, 354);
    EXPECT_EQ(bare.reply.lines, (std::vector<std::string>{""}));
    // A bare LF ends a line too.
    EXPECT_EQ(parse_server_reply("220 ready\n").status, Status::reply);
}

TEST(ServerReply, EnhancedCodeOnlyWhenEveryLineHasTheSameOneOfTheRightClass) {
    auto p = parse_server_reply("550-5.1.1 No such user\r\n550 5.1.1 here\r\n");
    EXPECT_EQ(p.reply.enhanced, "5.1.1");
    EXPECT_EQ(p.reply.lines, (std::vector<std::string>{"No such user", "here"}));
    p = parse_server_reply("550-5.1.1 a\r\n550 b\r\n");
    EXPECT_EQ(p.reply.enhanced, "");
    EXPECT_EQ(p.reply.lines, (std::vector<std::string>{"5.1.1 a", "b"}));
    p = parse_server_reply("450 5.1.1 class mismatch\r\n");
    EXPECT_EQ(p.reply.enhanced, "");
    p = parse_server_reply("250 2.0.0\r\n");
    EXPECT_EQ(p.reply.enhanced, "2.0.0");
    p = parse_server_reply("250 2.0.0000 too long a detail\r\n");
    EXPECT_EQ(p.reply.enhanced, "");
}

TEST(ServerReply, IncompleteUntilTheLastLine) {
    EXPECT_EQ(parse_server_reply("").status, Status::incomplete);
    EXPECT_EQ(parse_server_reply("250 Ok").status, Status::incomplete);
    EXPECT_EQ(parse_server_reply("250-a\r\n250-b\r\n").status, Status::incomplete);
}

TEST(ServerReply, ProtocolErrors) {
    for (const char* bad : {"hello\r\n", "25\r\n", "2x0 no\r\n", "150 no\r\n", "650 no\r\n", "250_x\r\n",
                            "250-a\r\n251 b\r\n"})
        EXPECT_EQ(parse_server_reply(bad).status, Status::protocol_error) << bad;
    EXPECT_EQ(parse_server_reply("250 " + std::string(kMaxServerReplyLine, 'x')).status, Status::protocol_error);
    std::string many;
    for (std::size_t i = 0; i <= kMaxServerReplyLines; ++i) many += "250-x\r\n";
    EXPECT_EQ(parse_server_reply(many).status, Status::protocol_error);
}

TEST(ServerCapabilities, KeywordsParametersAndCase) {
    Reply ehlo;
    ehlo.lines = {"mx.example.org greets you", "pipelining", "SIZE 35882577", "8BITMIME", "SmtpUtf8", "STARTTLS",
                  "CHUNKING", "DSN", "ENHANCEDSTATUSCODES", "AUTH plain LOGIN  CRAM-MD5", "X-UNKNOWN 1"};
    const auto caps = parse_capabilities(ehlo);
    EXPECT_TRUE(caps.pipelining && caps.eight_bit_mime && caps.smtputf8 && caps.starttls && caps.chunking &&
                caps.dsn && caps.enhanced_status_codes);
    EXPECT_EQ(caps.size, 35882577u);
    EXPECT_EQ(caps.auth, (std::vector<std::string>{"PLAIN", "LOGIN", "CRAM-MD5"}));
}

TEST(ServerCapabilities, GreetingLineIsNotAKeywordAndSizeZeroMeansNoLimit) {
    Reply ehlo;
    ehlo.lines = {"PIPELINING"};   // only the greeting: nothing offered
    EXPECT_FALSE(parse_capabilities(ehlo).pipelining);
    ehlo.lines = {"mx", "SIZE", "SIZE 0"};
    EXPECT_FALSE(parse_capabilities(ehlo).size.has_value());
    ehlo.lines = {"mx", "SIZE 12k"};
    EXPECT_FALSE(parse_capabilities(ehlo).size.has_value());
}

}  // namespace
