#include "cli/sendmail_message.hpp"

#include <gtest/gtest.h>

using namespace ferry::cli;
using Rcpts = std::vector<std::string>;

namespace {

LocalMessage prepare(std::string_view input, std::vector<std::string> args) {
    return prepare_sendmail_message(input, parse_sendmail_args(args), "cron@host.example.test", 1800000000,
                                    "<id@host.example.test>");
}

}  // namespace

TEST(SendmailMessage, RecipientsFromHeadersWithoutBcc) {
    const auto m = prepare("From: a@example.test\nTo: B <b@example.test>, c@example.test\nCc: d@example.test\n"
                           "Bcc: secret@example.test\nSubject: s\n\nbody\n.\nmore\n",
                           {"-t", "-i", "extra@example.test"});
    ASSERT_EQ(m.error, "");
    EXPECT_EQ(m.envelope.recipients,
              (Rcpts{"extra@example.test", "b@example.test", "c@example.test", "d@example.test", "secret@example.test"}));
    EXPECT_EQ(m.envelope.sender, "cron@host.example.test");
    EXPECT_EQ(m.message.find("secret"), std::string::npos);   // no Bcc in what others see
    EXPECT_NE(m.message.find("\r\nbody\r\n.\r\nmore\r\n"), std::string::npos);   // -i: the dot is content
    EXPECT_EQ(m.message.find('\n', m.message.find("body") + 4), m.message.find("body") + 5);
}

TEST(SendmailMessage, ALoneDotEndsTheMessageWithoutI) {
    const auto m = prepare("Subject: s\r\n\r\none\r\n.\r\nnot this\r\n", {"x@example.test"});
    ASSERT_EQ(m.error, "");
    EXPECT_TRUE(m.message.ends_with("\r\n\r\none\r\n")) << m.message;
}

TEST(SendmailMessage, MissingFromDateAndMessageIdAreAdded) {
    const auto m = prepare("Subject: s\n\nhi\n", {"-F", "Cron \"Daemon\"", "-f", "root@example.test", "x@example.test"});
    ASSERT_EQ(m.error, "");
    EXPECT_TRUE(m.message.starts_with("From: \"Cron \\\"Daemon\\\"\" <root@example.test>\r\nDate: "));
    EXPECT_NE(m.message.find("\r\nMessage-ID: <id@host.example.test>\r\nSubject: s\r\n\r\nhi\r\n"), std::string::npos);
    EXPECT_EQ(m.envelope.sender, "root@example.test");
    const auto kept = prepare("From: me@example.test\nDate: x\nMessage-ID: <m@x>\n\nhi\n", {"x@example.test"});
    EXPECT_TRUE(kept.message.starts_with("From: me@example.test\r\nDate: x\r\nMessage-ID: <m@x>\r\n\r\n")) << kept.message;
}

TEST(SendmailMessage, NonAsciiFullNameIsEncodedAndControlCharactersRefused) {
    const auto m = prepare("Subject: s\n\nhi\n", {"-F", "J\xc3\xbc" "rgen", "-f", "root@example.test", "x@example.test"});
    ASSERT_EQ(m.error, "");
    EXPECT_TRUE(m.message.starts_with("From: =?utf-8?B?SsO8cmdlbg==?= <root@example.test>\r\n")) << m.message;
    const std::string error = prepare("hi\n", {"-F", "bad\x01name", "x@example.test"}).error;
    EXPECT_NE(error.find("the -F name"), std::string::npos) << error;
}

TEST(SendmailMessage, NoMoreRecipientsThanAPickupFileHolds) {
    std::vector<std::string> args;
    for (std::size_t i = 0; i <= ferry::spool::kMaxPickupRecipients; ++i) args.push_back("r" + std::to_string(i) + "@example.test");
    EXPECT_EQ(prepare("hi\n", args).error, "10001 recipients, more than the 10000 one message may have");
    args.pop_back();
    EXPECT_EQ(prepare("hi\n", args).error, "");
}

TEST(SendmailMessage, InputWithoutAHeaderIsAllBody) {
    const auto m = prepare("hello there\nsecond line\n", {"x@example.test"});
    ASSERT_EQ(m.error, "");
    EXPECT_TRUE(m.message.ends_with("\r\n\r\nhello there\r\nsecond line\r\n")) << m.message;
}

TEST(SendmailMessage, Refusals) {
    EXPECT_EQ(prepare("Subject: s\n\nx\n", {}).error, "no recipient given (use -t to take them from the message)");
    EXPECT_EQ(prepare("Subject: s\n\nx\n", {"-t"}).error, "no recipient: none given and no To, Cc or Bcc field");
    EXPECT_EQ(prepare("x\n", {"not an address"}).error.rfind("recipient <not an address>:", 0), 0u);
    EXPECT_EQ(prepare("x\n", {"-f", "bad sender", "a@example.test"}).error.rfind("sender <bad sender>:", 0), 0u);
    EXPECT_EQ(prepare("x\n", {"-f", "", "a@example.test"}).envelope.sender, "");   // the null sender
}
