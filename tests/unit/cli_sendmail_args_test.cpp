#include "cli/sendmail_args.hpp"

#include <gtest/gtest.h>

using ferry::cli::parse_sendmail_args;
using Args = std::vector<std::string>;

TEST(SendmailArgs, WhatCronPhpAndGitSay) {
    auto a = parse_sendmail_args({"-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"});   // cron
    EXPECT_EQ(a.error, "");
    EXPECT_EQ(a.full_name, "CronDaemon");
    EXPECT_TRUE(a.ignore_dots);
    EXPECT_EQ(a.recipients, Args{"root"});
    a = parse_sendmail_args({"-t", "-i"});   // PHP mail()
    EXPECT_TRUE(a.extract_recipients && a.ignore_dots);
    EXPECT_TRUE(a.recipients.empty());
    a = parse_sendmail_args({"-i", "-f", "dev@example.org", "--", "a@example.test", "-b@example.test"});   // git send-email
    EXPECT_EQ(a.sender, "dev@example.org");
    EXPECT_EQ(a.recipients, (Args{"a@example.test", "-b@example.test"}));
    a = parse_sendmail_args({"-oi", "-f<>", "-F", "Full Name", "x@example.test", "--config=/etc/f.toml"});
    EXPECT_EQ(a.sender, "");
    EXPECT_EQ(a.full_name, "Full Name");
    EXPECT_EQ(a.config, "/etc/f.toml");
    EXPECT_EQ(parse_sendmail_args({"-r", "bounce@example.org", "-odi", "-v", "-N", "never", "y"}).sender, "bounce@example.org");
}

TEST(SendmailArgs, Refusals) {
    EXPECT_EQ(parse_sendmail_args({"-f"}).error, "-f needs a value");
    EXPECT_EQ(parse_sendmail_args({"-bp"}).error.rfind("-bp is not supported", 0), 0u);
    EXPECT_EQ(parse_sendmail_args({"-q"}).error, "unknown option -q");
    EXPECT_EQ(parse_sendmail_args({"--config"}).error, "--config needs a file");
}
