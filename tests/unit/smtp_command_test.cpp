#include "smtp/command.hpp"

#include <gtest/gtest.h>

#include <string>

namespace ferry::smtp {
namespace {

// --- command lines -------------------------------------------------------------------------------------

TEST(SmtpCommand, EveryVerbRecognised) {
    const std::pair<const char*, Verb> verbs[] = {
        {"HELO", Verb::helo}, {"EHLO", Verb::ehlo}, {"MAIL", Verb::mail}, {"RCPT", Verb::rcpt},
        {"DATA", Verb::data}, {"BDAT", Verb::bdat}, {"RSET", Verb::rset}, {"NOOP", Verb::noop},
        {"QUIT", Verb::quit}, {"VRFY", Verb::vrfy}, {"EXPN", Verb::expn}, {"HELP", Verb::help},
        {"STARTTLS", Verb::starttls}, {"AUTH", Verb::auth},
    };
    for (const auto& [name, verb] : verbs) {
        const Command c = parse_command(name);
        EXPECT_EQ(c.verb, verb) << name;
        EXPECT_EQ(c.name, name);
        EXPECT_EQ(c.argument, "");
    }
}

TEST(SmtpCommand, VerbsCaseInsensitive) {
    EXPECT_EQ(parse_command("ehlo client.test").verb, Verb::ehlo);
    EXPECT_EQ(parse_command("EhLo client.test").verb, Verb::ehlo);
    EXPECT_EQ(parse_command("mail FROM:<a@b.test>").verb, Verb::mail);
    EXPECT_EQ(parse_command("rCpT TO:<a@b.test>").verb, Verb::rcpt);
    EXPECT_EQ(parse_command("starttls").verb, Verb::starttls);
    EXPECT_EQ(parse_command("Quit").verb, Verb::quit);
}

TEST(SmtpCommand, NameKeptAsSent) {
    const Command c = parse_command("eHlO client.test");
    EXPECT_EQ(c.name, "eHlO");
    EXPECT_EQ(c.argument, "client.test");
}

TEST(SmtpCommand, ArgumentSplitting) {
    Command c = parse_command("MAIL FROM:<a@b.test> SIZE=10");
    EXPECT_EQ(c.verb, Verb::mail);
    EXPECT_EQ(c.name, "MAIL");
    EXPECT_EQ(c.argument, "FROM:<a@b.test> SIZE=10");

    c = parse_command("EHLO    client.test   ");
    EXPECT_EQ(c.verb, Verb::ehlo);
    EXPECT_EQ(c.argument, "client.test");

    c = parse_command("HELO ");
    EXPECT_EQ(c.verb, Verb::helo);
    EXPECT_EQ(c.argument, "");

    c = parse_command("VRFY  John  Smith ");
    EXPECT_EQ(c.argument, "John  Smith");
}

TEST(SmtpCommand, UnknownVerbs) {
    for (const char* line : {"", " ", "MAILX FROM:<a@b.test>", "MAI", "HELLO x", "XYZZY", " MAIL FROM:<a@b.test>",
                             "MAIL\tFROM:<a@b.test>", "DATA\r", "EHLO\xC3\xA9"})
        EXPECT_EQ(parse_command(line).verb, Verb::unknown) << line;
    const Command c = parse_command("XYZZY magic words");
    EXPECT_EQ(c.name, "XYZZY");
    EXPECT_EQ(c.argument, "magic words");
}

// --- MAIL FROM -----------------------------------------------------------------------------------------

TEST(SmtpCommand, MailFromSimple) {
    const MailArguments m = parse_mail_arguments("FROM:<alice@example.test>");
    ASSERT_EQ(m.error, ArgError::none);
    ASSERT_TRUE(m.path.mailbox);
    EXPECT_EQ(m.path.mailbox->local, "alice");
    EXPECT_EQ(m.path.mailbox->domain, "example.test");
    EXPECT_TRUE(m.params.empty());
}

TEST(SmtpCommand, MailFromPrefixCaseInsensitive) {
    EXPECT_EQ(parse_mail_arguments("from:<alice@example.test>").error, ArgError::none);
    EXPECT_EQ(parse_mail_arguments("FrOm:<alice@example.test>").error, ArgError::none);
}

TEST(SmtpCommand, MailFromWithSpacesAfterColon) {
    for (const char* arg : {"FROM: <alice@example.test>", "FROM:   <alice@example.test>"}) {
        const MailArguments m = parse_mail_arguments(arg);
        ASSERT_EQ(m.error, ArgError::none) << arg;
        ASSERT_TRUE(m.path.mailbox);
        EXPECT_EQ(m.path.mailbox->to_string(), "alice@example.test");
    }
}

TEST(SmtpCommand, MailFromNullPath) {
    const MailArguments m = parse_mail_arguments("FROM:<>");
    ASSERT_EQ(m.error, ArgError::none);
    EXPECT_FALSE(m.path.mailbox.has_value());
    EXPECT_EQ(parse_mail_arguments("FROM:<> SIZE=1").error, ArgError::none);
}

TEST(SmtpCommand, MailFromSyntaxErrors) {
    for (const char* arg : {"", "FROM", "FROM:", "FROM: ", "FROM <alice@example.test>", "FROM :<alice@example.test>",
                            "FROM:alice@example.test", "TO:<alice@example.test>", "FRO:<alice@example.test>",
                            "<alice@example.test>"})
        EXPECT_EQ(parse_mail_arguments(arg).error, ArgError::syntax) << arg;
}

TEST(SmtpCommand, MailFromBadAddress) {
    for (const char* arg : {"FROM:<alice>", "FROM:<alice@>", "FROM:<alice@example..test>", "FROM:<alice@example.test",
                            "FROM:<.alice@example.test>", "FROM:< >"})
        EXPECT_EQ(parse_mail_arguments(arg).error, ArgError::bad_address) << arg;
}

TEST(SmtpCommand, MailFromAddressTooLong) {
    const std::string arg = "FROM:<" + std::string(64, 'a') + "@" + std::string(63, 'b') + "." +
                            std::string(63, 'c') + "." + std::string(63, 'd') + ".test>";
    ASSERT_GT(arg.size() - 5, 256u);
    EXPECT_EQ(parse_mail_arguments(arg).error, ArgError::address_too_long);
    EXPECT_EQ(parse_mail_arguments("FROM:<" + std::string(65, 'a') + "@example.test>").error,
              ArgError::address_too_long);
}

TEST(SmtpCommand, MailParams) {
    const MailArguments m = parse_mail_arguments("FROM:<a@b.test> SIZE=12345 BODY=8BITMIME SMTPUTF8");
    ASSERT_EQ(m.error, ArgError::none);
    ASSERT_EQ(m.params.size(), 3u);
    EXPECT_EQ(m.params[0].keyword, "SIZE");
    EXPECT_EQ(m.params[0].value, "12345");
    EXPECT_EQ(m.params[1].keyword, "BODY");
    EXPECT_EQ(m.params[1].value, "8BITMIME");
    EXPECT_EQ(m.params[2].keyword, "SMTPUTF8");
    EXPECT_FALSE(m.params[2].value.has_value());
}

TEST(SmtpCommand, ParamKeywordUpperCasedValueKept) {
    const MailArguments m = parse_mail_arguments("FROM:<a@b.test> body=8bitMime x-Custom=MiXed");
    ASSERT_EQ(m.error, ArgError::none);
    ASSERT_EQ(m.params.size(), 2u);
    EXPECT_EQ(m.params[0].keyword, "BODY");
    EXPECT_EQ(m.params[0].value, "8bitMime");
    EXPECT_EQ(m.params[1].keyword, "X-CUSTOM");
    EXPECT_EQ(m.params[1].value, "MiXed");
}

TEST(SmtpCommand, ParamsSeparatedByManySpaces) {
    const MailArguments m = parse_mail_arguments("FROM: <a@b.test>   SIZE=1    SMTPUTF8   ");
    ASSERT_EQ(m.error, ArgError::none);
    ASSERT_EQ(m.params.size(), 2u);
    EXPECT_EQ(m.params[0].keyword, "SIZE");
    EXPECT_EQ(m.params[1].keyword, "SMTPUTF8");
}

TEST(SmtpCommand, ParamValueMayBeUtf8) {
    const MailArguments m = parse_mail_arguments("FROM:<a@b.test> ENVID=\xC3\xA9t\xC3\xA9");
    ASSERT_EQ(m.error, ArgError::none);
    ASSERT_EQ(m.params.size(), 1u);
    EXPECT_EQ(m.params[0].value, "\xC3\xA9t\xC3\xA9");
}

TEST(SmtpCommand, BadParamSyntax) {
    for (const char* arg : {
             "FROM:<a@b.test>SIZE=1",       // no space after the path
             "FROM:<a@b.test> SIZE=",       // empty value
             "FROM:<a@b.test> =1",          // empty keyword
             "FROM:<a@b.test> -SIZE=1",     // keyword starting with '-'
             "FROM:<a@b.test> SI_ZE=1",     // bad keyword character
             "FROM:<a@b.test> SI.ZE",
             "FROM:<a@b.test> SIZE=1=2",    // '=' in value
             "FROM:<a@b.test> X=a\x7f",     // DEL in value
             "FROM:<a@b.test> X=a\tb",      // control in value
             "FROM:<a@b.test> \xC3\xA9=1",  // non-ASCII keyword
         })
        EXPECT_EQ(parse_mail_arguments(arg).error, ArgError::bad_parameter) << arg;
}

TEST(SmtpCommand, KeywordWithDigitsAndHyphen) {
    const MailArguments m = parse_mail_arguments("FROM:<a@b.test> 8BIT-X2=v X-=1");
    ASSERT_EQ(m.error, ArgError::none);
    ASSERT_EQ(m.params.size(), 2u);
    EXPECT_EQ(m.params[0].keyword, "8BIT-X2");
    EXPECT_EQ(m.params[1].keyword, "X-");
}

TEST(SmtpCommand, MailFromWithSourceRoute) {
    const MailArguments m = parse_mail_arguments("FROM:<@relay.test:alice@example.test> BODY=7BIT");
    ASSERT_EQ(m.error, ArgError::none);
    EXPECT_EQ(m.path.to_string(), "<alice@example.test>");
    ASSERT_EQ(m.params.size(), 1u);
}

TEST(SmtpCommand, QuotedLocalPartWithSpacesIsNotSplit) {
    const MailArguments m = parse_mail_arguments("FROM:<\"a b> c\"@example.test> SIZE=5");
    ASSERT_EQ(m.error, ArgError::none);
    ASSERT_TRUE(m.path.mailbox);
    EXPECT_EQ(m.path.mailbox->local, "a b> c");
    ASSERT_EQ(m.params.size(), 1u);
    EXPECT_EQ(m.params[0].value, "5");
}

// --- RCPT TO -------------------------------------------------------------------------------------------

TEST(SmtpCommand, RcptTo) {
    const MailArguments r = parse_rcpt_arguments("TO:<bob@example.test>");
    ASSERT_EQ(r.error, ArgError::none);
    ASSERT_TRUE(r.path.mailbox);
    EXPECT_EQ(r.path.mailbox->to_string(), "bob@example.test");
    EXPECT_EQ(parse_rcpt_arguments("to: <bob@example.test>").error, ArgError::none);
}

TEST(SmtpCommand, RcptToPostmaster) {
    const MailArguments r = parse_rcpt_arguments("TO:<Postmaster>");
    ASSERT_EQ(r.error, ArgError::none);
    ASSERT_TRUE(r.path.mailbox);
    EXPECT_EQ(r.path.mailbox->local, "Postmaster");
    EXPECT_EQ(r.path.mailbox->domain, "");
}

TEST(SmtpCommand, RcptToErrors) {
    EXPECT_EQ(parse_rcpt_arguments("TO:<>").error, ArgError::bad_address);
    EXPECT_EQ(parse_rcpt_arguments("TO:<bob>").error, ArgError::bad_address);
    EXPECT_EQ(parse_rcpt_arguments("FROM:<bob@example.test>").error, ArgError::syntax);
    EXPECT_EQ(parse_rcpt_arguments("TO bob@example.test").error, ArgError::syntax);
    EXPECT_EQ(parse_rcpt_arguments("").error, ArgError::syntax);
    EXPECT_EQ(parse_rcpt_arguments("TO:<bob@example.test>NOTIFY=NEVER").error, ArgError::bad_parameter);
    EXPECT_EQ(parse_rcpt_arguments("TO:<" + std::string(65, 'b') + "@example.test>").error,
              ArgError::address_too_long);
}

TEST(SmtpCommand, RcptParamsParsed) {
    const MailArguments r = parse_rcpt_arguments("TO:<bob@example.test> NOTIFY=SUCCESS,FAILURE");
    ASSERT_EQ(r.error, ArgError::none);
    ASSERT_EQ(r.params.size(), 1u);
    EXPECT_EQ(r.params[0].keyword, "NOTIFY");
    EXPECT_EQ(r.params[0].value, "SUCCESS,FAILURE");
}

// --- BDAT ------------------------------------------------------------------------------------------------

TEST(SmtpCommand, BdatZeroLast) {
    const BdatArguments b = parse_bdat_arguments("0 LAST");
    EXPECT_TRUE(b.ok);
    EXPECT_EQ(b.size, 0u);
    EXPECT_TRUE(b.last);
}

TEST(SmtpCommand, BdatSizeOnly) {
    const BdatArguments b = parse_bdat_arguments("10");
    EXPECT_TRUE(b.ok);
    EXPECT_EQ(b.size, 10u);
    EXPECT_FALSE(b.last);
}

TEST(SmtpCommand, BdatLastCaseInsensitiveAndSpacing) {
    BdatArguments b = parse_bdat_arguments("42 last");
    EXPECT_TRUE(b.ok);
    EXPECT_EQ(b.size, 42u);
    EXPECT_TRUE(b.last);
    b = parse_bdat_arguments("42   LaSt");
    EXPECT_TRUE(b.ok);
    EXPECT_TRUE(b.last);
    b = parse_bdat_arguments("007");
    EXPECT_TRUE(b.ok);
    EXPECT_EQ(b.size, 7u);
}

TEST(SmtpCommand, BdatSyntaxErrors) {
    for (const char* arg : {"", "abc", "10 LASTX", "10 LAS", "10 FIRST", "10 LAST extra", "-1", "+1", "1.5", "0x10",
                            " 10", "10 ", "1 0", "LAST", "10LAST"})
        EXPECT_FALSE(parse_bdat_arguments(arg).ok) << "'" << arg << "'";
}

TEST(SmtpCommand, BdatHugeSizes) {
    const BdatArguments max18 = parse_bdat_arguments("999999999999999999");
    EXPECT_TRUE(max18.ok);
    EXPECT_EQ(max18.size, 999999999999999999ull);
    EXPECT_FALSE(parse_bdat_arguments("1000000000000000000").ok);        // 19 digits
    EXPECT_FALSE(parse_bdat_arguments("18446744073709551616").ok);       // 2^64
    EXPECT_FALSE(parse_bdat_arguments("99999999999999999999999999 LAST").ok);
}

}  // namespace
}  // namespace ferry::smtp
