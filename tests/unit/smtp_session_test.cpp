#include "smtp/session.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <regex>
#include <string>
#include <vector>

namespace ferry::smtp {
namespace {

constexpr const char* kHost = "mx.example.test";

// Verdict by local part: unknown@ / relay@ / tempfail@ fail, everything else is accepted.
class FakePolicy : public MailPolicy {
public:
    bool sender_allowed(const Path& sender, const std::string&) override {
        return !sender.mailbox || sender.mailbox->local != "notmine";
    }
    RecipientVerdict check_recipient(const Mailbox& recipient, const std::string& user) override {
        last_user = user;
        asked.push_back(recipient);
        if (recipient.local == "unknown") return RecipientVerdict::unknown_user;
        if (recipient.local == "relay") return RecipientVerdict::relay_denied;
        if (recipient.local == "tempfail") return RecipientVerdict::temporary_failure;
        return RecipientVerdict::accept;
    }
    bool spool_has_room(std::uint64_t octets) override {
        room_asked.push_back(octets);
        return !free_octets || *free_octets >= octets;
    }
    std::vector<Mailbox> asked;
    std::string last_user;
    std::optional<std::uint64_t> free_octets;   // nullopt: unknown
    std::vector<std::uint64_t> room_asked;
};

SessionSettings test_settings() {
    SessionSettings s;
    s.hostname = kHost;
    s.max_message_size = 10000;
    s.max_recipients = 3;
    s.max_errors = 10;
    s.max_text_line = 1000;
    return s;
}

// Every reply but the greeting, the EHLO/HELO answer and 354 carries an RFC 3463 code in the RFC 2034 form,
// with the same class as the reply code, on every rendered line.
void check_reply_form(const Reply& r) {
    const std::string wire = r.render();
    SCOPED_TRACE(wire);
    // 334 carries a base64 SASL challenge and nothing else (RFC 4954 4).
    const bool plain_allowed = r.code == 220 || r.code == 334 || r.code == 354 || (r.code == 250 && !r.lines.empty() && r.lines[0] == kHost);
    if (r.enhanced.empty()) {
        EXPECT_TRUE(plain_allowed) << "reply without enhanced status code";
        return;
    }
    EXPECT_TRUE(std::regex_match(r.enhanced, std::regex(R"([245]\.\d{1,3}\.\d{1,3})"))) << r.enhanced;
    EXPECT_EQ(r.enhanced[0], static_cast<char>('0' + r.code / 100)) << "class of " << r.enhanced;
    const std::regex line(std::to_string(r.code) + "[ -]" + std::regex_replace(r.enhanced, std::regex(R"(\.)"), R"(\.)") +
                          " [^\r\n]*\r\n");
    std::size_t pos = 0, count = 0;
    while (pos < wire.size()) {
        const std::size_t end = wire.find("\r\n", pos);
        ASSERT_NE(end, std::string::npos);
        EXPECT_TRUE(std::regex_match(wire.substr(pos, end + 2 - pos), line)) << wire.substr(pos, end + 2 - pos);
        pos = end + 2;
        ++count;
    }
    EXPECT_EQ(count, std::max<std::size_t>(1, r.lines.size()));
}

class SmtpSession : public ::testing::Test {
protected:
    explicit SmtpSession(SessionSettings settings = test_settings()) : settings_(settings), session(settings_, policy) {}

    Step send(std::string_view line) { return checked(session.on_command(line)); }

    Step checked(Step s) {
        for (const Reply& r : s.replies) check_reply_form(r);
        all_replies.insert(all_replies.end(), s.replies.begin(), s.replies.end());
        return s;
    }

    // Exactly one reply with this code and enhanced code; the I/O layer reads the next command.
    void expect_one(const Step& s, int code, const std::string& enhanced, Next next = Next::command) {
        ASSERT_EQ(s.replies.size(), 1u) << wire(s);
        EXPECT_EQ(s.replies[0].code, code) << wire(s);
        EXPECT_EQ(s.replies[0].enhanced, enhanced) << wire(s);
        EXPECT_EQ(s.next, next) << wire(s);
    }

    static std::string wire(const Step& s) {
        std::string out;
        for (const Reply& r : s.replies) r.render_to(out);
        return out;
    }

    void ehlo() { expect_one(send("EHLO client.test"), 250, ""); }
    void mail(std::string_view from = "MAIL FROM:<alice@sender.test>") { expect_one(send(from), 250, "2.1.0"); }
    void rcpt(std::string_view to = "RCPT TO:<bob@example.test>") { expect_one(send(to), 250, "2.1.5"); }
    void to_rcpt() {
        ehlo();
        mail();
        rcpt();
    }
    void to_data() {
        to_rcpt();
        expect_one(send("DATA"), 354, "", Next::data);
    }

    SessionSettings settings_;
    FakePolicy policy;
    Session session;
    std::vector<Reply> all_replies;
};

class SmtpSessionStrict : public SmtpSession {
protected:
    static SessionSettings strict() {
        SessionSettings s = test_settings();
        s.max_errors = 3;
        return s;
    }
    SmtpSessionStrict() : SmtpSession(strict()) {}
};

class SmtpSessionLenient : public SmtpSession {
protected:
    static SessionSettings lenient() {
        SessionSettings s = test_settings();
        s.max_errors = 1000;
        return s;
    }
    SmtpSessionLenient() : SmtpSession(lenient()) {}
};

// --- greeting, EHLO, HELO ------------------------------------------------------------------------------

TEST_F(SmtpSession, Greeting) {
    const Reply g = session.greeting();
    check_reply_form(g);
    EXPECT_EQ(g.code, 220);
    EXPECT_EQ(g.enhanced, "");
    EXPECT_EQ(g.render(), "220 mx.example.test ESMTP Ferry\r\n");
    EXPECT_EQ(session.state(), SessionState::greeted);
    EXPECT_EQ(session.error_count(), 0u);
}

TEST_F(SmtpSession, EhloAdvertisesExtensions) {
    const Step s = send("EHLO client.test");
    expect_one(s, 250, "");
    EXPECT_EQ(wire(s),
              "250-mx.example.test\r\n"
              "250-PIPELINING\r\n"
              "250-SIZE 10000\r\n"
              "250-ENHANCEDSTATUSCODES\r\n"
              "250-8BITMIME\r\n"
              "250-SMTPUTF8\r\n"
              "250-CHUNKING\r\n"
              "250 DSN\r\n");
    EXPECT_EQ(session.state(), SessionState::ready);
    EXPECT_EQ(session.helo_name(), "client.test");
    EXPECT_EQ(session.protocol(), "ESMTP");
}

TEST_F(SmtpSession, EhloSizeFollowsSettings) {
    FakePolicy p;
    SessionSettings st = test_settings();
    st.max_message_size = 52428800;
    Session s(st, p);
    const Step step = s.on_command("EHLO c.test");
    ASSERT_EQ(step.replies.size(), 1u);
    EXPECT_NE(step.replies[0].render().find("250-SIZE 52428800\r\n"), std::string::npos);
}

TEST_F(SmtpSession, Helo) {
    const Step s = send("HELO client.test");
    expect_one(s, 250, "");
    EXPECT_EQ(wire(s), "250 mx.example.test\r\n");
    EXPECT_EQ(session.state(), SessionState::ready);
    EXPECT_EQ(session.helo_name(), "client.test");
    EXPECT_EQ(session.protocol(), "SMTP");
}

TEST_F(SmtpSession, HeloEhloCaseInsensitive) {
    expect_one(send("ehlo client.test"), 250, "");
    expect_one(send("mail from:<alice@sender.test>"), 250, "2.1.0");
    expect_one(send("rcpt to:<bob@example.test>"), 250, "2.1.5");
    expect_one(send("data"), 354, "", Next::data);
}

TEST_F(SmtpSession, HeloEhloWithoutArgument) {
    for (const char* line : {"HELO", "EHLO", "HELO ", "EHLO   "}) {
        const Step s = send(line);
        expect_one(s, 501, "5.5.4");
        EXPECT_EQ(session.state(), SessionState::greeted) << line;
    }
    EXPECT_EQ(wire(send("EHLO")), "501 5.5.4 Syntax: EHLO hostname\r\n");
    EXPECT_EQ(wire(send("HELO")), "501 5.5.4 Syntax: HELO hostname\r\n");
}

TEST_F(SmtpSession, HeloWithTwoWordsRejected) {
    expect_one(send("EHLO client test"), 501, "5.5.4");
    expect_one(send("HELO client test"), 501, "5.5.4");
    EXPECT_EQ(session.state(), SessionState::greeted);
}

TEST_F(SmtpSession, EhloResetsTransaction) {
    to_rcpt();
    EXPECT_EQ(session.state(), SessionState::rcpt);
    ehlo();
    EXPECT_EQ(session.state(), SessionState::ready);
    EXPECT_TRUE(session.transaction().recipients.empty());
    EXPECT_FALSE(session.transaction().sender.mailbox.has_value());
    mail();   // not "nested MAIL"
}

TEST_F(SmtpSession, HeloAfterEhloSwitchesToSmtp) {
    ehlo();
    EXPECT_EQ(session.protocol(), "ESMTP");
    expect_one(send("HELO other.test"), 250, "");
    EXPECT_EQ(session.protocol(), "SMTP");
    EXPECT_EQ(session.helo_name(), "other.test");
}

// --- command order ---------------------------------------------------------------------------------------

TEST_F(SmtpSession, MailBeforeEhlo) {
    const Step s = send("MAIL FROM:<alice@sender.test>");
    expect_one(s, 503, "5.5.1");
    EXPECT_EQ(wire(s), "503 5.5.1 Error: send HELO/EHLO first\r\n");
    EXPECT_EQ(session.state(), SessionState::greeted);
}

TEST_F(SmtpSession, NestedMail) {
    ehlo();
    mail();
    expect_one(send("MAIL FROM:<carol@sender.test>"), 503, "5.5.1");
    EXPECT_EQ(session.state(), SessionState::mail);
    EXPECT_EQ(session.transaction().sender.to_string(), "<alice@sender.test>");
    rcpt();
    expect_one(send("MAIL FROM:<carol@sender.test>"), 503, "5.5.1");
    EXPECT_EQ(session.state(), SessionState::rcpt);
}

TEST_F(SmtpSession, RcptBeforeMail) {
    expect_one(send("RCPT TO:<bob@example.test>"), 503, "5.5.1");
    ehlo();
    const Step s = send("RCPT TO:<bob@example.test>");
    expect_one(s, 503, "5.5.1");
    EXPECT_EQ(wire(s), "503 5.5.1 Error: need MAIL command\r\n");
    EXPECT_TRUE(policy.asked.empty());
}

TEST_F(SmtpSession, DataBeforeRcpt) {
    expect_one(send("DATA"), 503, "5.5.1");
    ehlo();
    expect_one(send("DATA"), 503, "5.5.1");
    mail();
    const Step s = send("DATA");
    expect_one(s, 503, "5.5.1");
    EXPECT_EQ(wire(s), "503 5.5.1 Error: need RCPT command\r\n");
    EXPECT_EQ(session.state(), SessionState::mail);
}

TEST_F(SmtpSession, DataAfterOnlyRejectedRecipients) {
    ehlo();
    mail();
    expect_one(send("RCPT TO:<unknown@example.test>"), 550, "5.1.1");
    expect_one(send("DATA"), 503, "5.5.1");
}

TEST_F(SmtpSession, UnknownCommand) {
    for (const char* line : {"XYZZY", "", "MAILFROM:<a@b.test>", "HELLO client.test"}) {
        const Step s = send(line);
        expect_one(s, 500, "5.5.2");
        EXPECT_EQ(wire(s), "500 5.5.2 Error: command not recognized\r\n");
    }
    EXPECT_EQ(session.error_count(), 4u);
    EXPECT_EQ(session.state(), SessionState::greeted);
}

// --- MAIL ----------------------------------------------------------------------------------------------

TEST_F(SmtpSession, MailAccepted) {
    ehlo();
    const Step s = send("MAIL FROM:<alice@sender.test>");
    expect_one(s, 250, "2.1.0");
    EXPECT_EQ(wire(s), "250 2.1.0 Ok\r\n");
    EXPECT_EQ(session.state(), SessionState::mail);
    EXPECT_EQ(session.transaction().sender.to_string(), "<alice@sender.test>");
}

TEST_F(SmtpSession, MailWithSpaceAfterColonAndNullSender) {
    ehlo();
    mail("MAIL FROM: <>");
    EXPECT_FALSE(session.transaction().sender.mailbox.has_value());
}

TEST_F(SmtpSession, BadMailSyntax) {
    ehlo();
    for (const char* line : {"MAIL", "MAIL FROM", "MAIL FROM <alice@sender.test>", "MAIL TO:<alice@sender.test>",
                             "MAIL FROM:alice@sender.test"}) {
        const Step s = send(line);
        expect_one(s, 501, "5.5.4");
    }
    EXPECT_EQ(session.state(), SessionState::ready);
}

TEST_F(SmtpSession, BadSender) {
    ehlo();
    for (const char* line : {"MAIL FROM:<alice>", "MAIL FROM:<alice@@sender.test>", "MAIL FROM:<alice@sender..test>",
                             "MAIL FROM:<Postmaster>", "MAIL FROM:<alice@sender.test"}) {
        const Step s = send(line);
        expect_one(s, 501, "5.1.7");
    }
    EXPECT_EQ(session.state(), SessionState::ready);
}

TEST_F(SmtpSession, SenderTooLong) {
    ehlo();
    const Step s = send("MAIL FROM:<" + std::string(65, 'a') + "@sender.test>");
    expect_one(s, 501, "5.1.7");
    EXPECT_EQ(wire(s), "501 5.1.7 Sender address too long\r\n");
    const std::string l63(63, 'd');
    expect_one(send("MAIL FROM:<a@" + l63 + "." + l63 + "." + l63 + "." + l63 + ">"), 501, "5.1.7");
}

TEST_F(SmtpSession, BadMailParameterSyntax) {
    ehlo();
    expect_one(send("MAIL FROM:<alice@sender.test> SIZE="), 501, "5.5.4");
    expect_one(send("MAIL FROM:<alice@sender.test>SIZE=10"), 501, "5.5.4");
    expect_one(send("MAIL FROM:<alice@sender.test> SI_ZE=10"), 501, "5.5.4");
    EXPECT_EQ(session.state(), SessionState::ready);
}

TEST_F(SmtpSession, UnknownMailParameter) {
    ehlo();
    for (const char* line : {"MAIL FROM:<alice@sender.test> FOO=bar", "MAIL FROM:<alice@sender.test> SIZE",
                             "MAIL FROM:<alice@sender.test> BODY", "MAIL FROM:<alice@sender.test> BODY=BINARYMIME",
                             "MAIL FROM:<alice@sender.test> SMTPUTF8=yes",
                             "MAIL FROM:<alice@sender.test> SIZE=10 AUTH=<>"}) {
        const Step s = send(line);
        expect_one(s, 555, "5.5.4");
    }
    EXPECT_EQ(wire(send("MAIL FROM:<alice@sender.test> foo=bar")), "555 5.5.4 Unsupported option: FOO\r\n");
    EXPECT_EQ(session.state(), SessionState::ready);
}

// Found by fuzz_session's reply check: a 485-octet keyword in a 512-octet MAIL line came back in a 518-octet
// "555 5.5.4 Unsupported option: ..." line, over the 512 of RFC 5321 4.5.3.1.5 (longer still with a larger
// limits.command_line_length). The quote is cut to 64 octets and kept to printable ASCII.
TEST_F(SmtpSession, LongOrNonAsciiParameterQuotedShort) {
    ehlo();
    const std::string keyword(485, 'A');
    const Step s = send("MAIL FROM:<a@b.c> " + keyword);
    expect_one(s, 555, "5.5.4");
    EXPECT_EQ(wire(s), "555 5.5.4 Unsupported option: " + std::string(64, 'A') + "...\r\n");
    EXPECT_EQ(wire(send("MAIL FROM:<a@b.c> BODY=\xC3\xA9t\xC3\xA9")), "555 5.5.4 Unsupported option: BODY=??t??\r\n");
    EXPECT_EQ(wire(send("MAIL FROM:<a@b.c>")), "250 2.1.0 Ok\r\n");
    const Step r = send("RCPT TO:<bob@example.test> " + std::string(300, 'x') + "=1");
    EXPECT_EQ(wire(r), "555 5.5.4 Unsupported option: " + std::string(64, 'X') + "...\r\n");
}

TEST_F(SmtpSession, ParamsAfterHeloRejected) {
    expect_one(send("HELO client.test"), 250, "");
    expect_one(send("MAIL FROM:<alice@sender.test> SIZE=10"), 555, "5.5.4");
    expect_one(send("MAIL FROM:<alice@sender.test> BODY=8BITMIME"), 555, "5.5.4");
    expect_one(send("MAIL FROM:<alice@sender.test> SMTPUTF8"), 555, "5.5.4");
    EXPECT_EQ(session.state(), SessionState::ready);
    mail();   // without parameters plain SMTP works
}

TEST_F(SmtpSession, SizeParameter) {
    ehlo();
    mail("MAIL FROM:<alice@sender.test> SIZE=10000");
    EXPECT_EQ(session.transaction().declared_size, 10000u);
}

// RFC 1870 6.1: a disk that cannot take the declared SIZE plus the reserve says 452 4.3.1 at MAIL, before the
// client sends the message (it used to get 250 and learn at the end of data).
class SmtpSessionSpool : public SmtpSession {
protected:
    static SessionSettings reserved() {
        SessionSettings s = test_settings();
        s.spool_reserve = 1000;
        return s;
    }
    SmtpSessionSpool() : SmtpSession(reserved()) {}
};

TEST_F(SmtpSessionSpool, MailRefusedWhenTheSpoolCannotTakeTheDeclaredSize) {
    ehlo();
    policy.free_octets = 5000;
    expect_one(send("MAIL FROM:<alice@sender.test> SIZE=4001"), 452, "4.3.1");   // 4001 + 1000 > 5000
    EXPECT_EQ(session.state(), SessionState::ready);
    EXPECT_EQ(session.error_count(), 0u);   // a passing condition, not a client error
    mail("MAIL FROM:<alice@sender.test> SIZE=4000");                              // exactly fits
    send("RSET");
    mail("MAIL FROM:<alice@sender.test>");                                        // no SIZE: the reserve alone
    send("RSET");
    policy.free_octets = 999;                                                     // under the reserve
    expect_one(send("MAIL FROM:<alice@sender.test>"), 452, "4.3.1");
    policy.free_octets = 0;
    expect_one(send("MAIL FROM:<>"), 452, "4.3.1");
    policy.free_octets = std::nullopt;                                            // unknown: not refused
    mail("MAIL FROM:<alice@sender.test> SIZE=9000");
    EXPECT_EQ(policy.room_asked, (std::vector<std::uint64_t>{5001, 5000, 1000, 1000, 1000, 10000}));
}

TEST_F(SmtpSessionSpool, SizeOverTheLimitIsStill552) {
    ehlo();
    policy.free_octets = 0;
    expect_one(send("MAIL FROM:<alice@sender.test> SIZE=10001"), 552, "5.3.4");   // permanent wins
}

TEST_F(SmtpSession, SizeOverLimit) {
    ehlo();
    const Step s = send("MAIL FROM:<alice@sender.test> SIZE=10001");
    expect_one(s, 552, "5.3.4");
    EXPECT_EQ(wire(s), "552 5.3.4 Message size exceeds fixed limit\r\n");
    EXPECT_EQ(session.state(), SessionState::ready);
    EXPECT_EQ(session.error_count(), 0u);
    expect_one(send("MAIL FROM:<alice@sender.test> SIZE=9999999999999999999"), 552, "5.3.4");
}

TEST_F(SmtpSession, BadSizeValue) {
    ehlo();
    for (const char* line : {"MAIL FROM:<alice@sender.test> SIZE=abc", "MAIL FROM:<alice@sender.test> SIZE=-1",
                             "MAIL FROM:<alice@sender.test> SIZE=1e3",
                             "MAIL FROM:<alice@sender.test> SIZE=99999999999999999999"})
        expect_one(send(line), 501, "5.5.4");
    EXPECT_EQ(session.state(), SessionState::ready);
}

TEST_F(SmtpSession, BodyParameter) {
    ehlo();
    mail("MAIL FROM:<alice@sender.test> BODY=8BITMIME");
    EXPECT_TRUE(session.transaction().body_8bit);
    expect_one(send("RSET"), 250, "2.0.0");
    mail("MAIL FROM:<alice@sender.test> body=7bit");
    EXPECT_FALSE(session.transaction().body_8bit);
}

TEST_F(SmtpSession, Smtputf8Required) {
    ehlo();
    const Step s = send("MAIL FROM:<j\xC3\xB6rg@sender.test>");
    expect_one(s, 553, "5.6.7");
    EXPECT_EQ(session.state(), SessionState::ready);
    expect_one(send("MAIL FROM:<joe@b\xC3\xBC" "cher.test>"), 553, "5.6.7");
    mail("MAIL FROM:<j\xC3\xB6rg@sender.test> SMTPUTF8");
    EXPECT_TRUE(session.transaction().smtputf8);
    EXPECT_EQ(session.protocol(), "UTF8SMTP");
    rcpt("RCPT TO:<m\xC3\xBCller@example.test>");
}

TEST_F(SmtpSession, Utf8RecipientNeedsSmtputf8) {
    ehlo();
    mail();
    expect_one(send("RCPT TO:<m\xC3\xBCller@example.test>"), 553, "5.6.7");
    EXPECT_TRUE(policy.asked.empty());
    EXPECT_TRUE(session.transaction().recipients.empty());
}

// --- RCPT ----------------------------------------------------------------------------------------------

TEST_F(SmtpSession, RecipientAccepted) {
    ehlo();
    mail();
    const Step s = send("RCPT TO:<Bob@Example.TEST>");
    expect_one(s, 250, "2.1.5");
    EXPECT_EQ(wire(s), "250 2.1.5 Ok\r\n");
    EXPECT_EQ(session.state(), SessionState::rcpt);
    ASSERT_EQ(policy.asked.size(), 1u);
    EXPECT_EQ(policy.asked[0].local, "Bob");
    EXPECT_EQ(policy.asked[0].domain, "Example.TEST");
    ASSERT_EQ(session.transaction().recipients.size(), 1u);
    EXPECT_EQ(session.transaction().recipients[0].to_string(), "Bob@Example.TEST");
}

TEST_F(SmtpSession, RecipientUnknown) {
    ehlo();
    mail();
    const Step s = send("RCPT TO:<unknown@example.test>");
    expect_one(s, 550, "5.1.1");
    EXPECT_EQ(wire(s),
              "550 5.1.1 <unknown@example.test>: Recipient address rejected: User unknown in local recipient table\r\n");
    EXPECT_EQ(session.state(), SessionState::mail);
    EXPECT_TRUE(session.transaction().recipients.empty());
    EXPECT_EQ(session.error_count(), 1u);
}

TEST_F(SmtpSession, RecipientRelayDenied) {
    ehlo();
    mail();
    const Step s = send("RCPT TO:<relay@elsewhere.test>");
    expect_one(s, 554, "5.7.1");
    EXPECT_EQ(wire(s), "554 5.7.1 <relay@elsewhere.test>: Relay access denied\r\n");
    EXPECT_TRUE(session.transaction().recipients.empty());
    EXPECT_EQ(session.error_count(), 1u);
}

TEST_F(SmtpSession, RecipientTemporaryFailure) {
    ehlo();
    mail();
    const Step s = send("RCPT TO:<tempfail@example.test>");
    expect_one(s, 451, "4.3.0");
    EXPECT_EQ(wire(s), "451 4.3.0 <tempfail@example.test>: Temporary lookup failure\r\n");
    EXPECT_TRUE(session.transaction().recipients.empty());
    EXPECT_EQ(session.error_count(), 0u);
}

TEST_F(SmtpSession, MixedRecipientVerdicts) {
    ehlo();
    mail();
    rcpt("RCPT TO:<a@example.test>");
    expect_one(send("RCPT TO:<unknown@example.test>"), 550, "5.1.1");
    expect_one(send("RCPT TO:<tempfail@example.test>"), 451, "4.3.0");
    rcpt("RCPT TO:<b@example.test>");
    EXPECT_EQ(session.state(), SessionState::rcpt);
    ASSERT_EQ(session.transaction().recipients.size(), 2u);
    EXPECT_EQ(session.transaction().recipients[1].local, "b");
}

TEST_F(SmtpSession, RecipientShownInCanonicalForm) {
    ehlo();
    mail();
    EXPECT_EQ(wire(send("RCPT TO:<\"unknown\"@example.test>")).substr(0, 34), "550 5.1.1 <unknown@example.test>: ");
}

TEST_F(SmtpSession, PostmasterRecipient) {
    ehlo();
    mail();
    rcpt("RCPT TO:<Postmaster>");
    ASSERT_EQ(policy.asked.size(), 1u);
    EXPECT_EQ(policy.asked[0].local, "Postmaster");
    EXPECT_EQ(policy.asked[0].domain, "");
}

TEST_F(SmtpSession, BadRecipient) {
    ehlo();
    mail();
    for (const char* line : {"RCPT TO:<>", "RCPT TO:<bob>", "RCPT TO:<bob@@example.test>", "RCPT TO:<bob@example.test"})
        expect_one(send(line), 501, "5.1.3");
    expect_one(send("RCPT TO:<" + std::string(65, 'b') + "@example.test>"), 501, "5.1.3");
    EXPECT_TRUE(policy.asked.empty());
    EXPECT_EQ(session.state(), SessionState::mail);
}

TEST_F(SmtpSession, BadRcptSyntax) {
    ehlo();
    mail();
    for (const char* line : {"RCPT", "RCPT TO", "RCPT TO bob@example.test", "RCPT FROM:<bob@example.test>"})
        expect_one(send(line), 501, "5.5.4");
    expect_one(send("RCPT TO:<bob@example.test> NOTIFY="), 501, "5.5.4");
}

TEST_F(SmtpSession, RcptParameterUnsupported) {
    ehlo();
    mail();
    const Step s = send("RCPT TO:<bob@example.test> XYZZY=NEVER");
    expect_one(s, 555, "5.5.4");
    EXPECT_EQ(wire(s), "555 5.5.4 Unsupported option: XYZZY\r\n");
    expect_one(send("RCPT TO:<bob@example.test> NOTIFY=NEVER BODY=8BITMIME"), 555, "5.5.4");
    EXPECT_TRUE(policy.asked.empty());
}

// --- DSN parameters (RFC 3461) ---------------------------------------------------------------------------

TEST_F(SmtpSession, MailDsnParameters) {
    ehlo();
    mail("MAIL FROM:<alice@sender.test> RET=HDRS ENVID=abc+2Bdef");
    EXPECT_EQ(session.transaction().ret, Ret::hdrs);
    EXPECT_EQ(session.transaction().envid, "abc+2Bdef");   // kept encoded, as it travels on
    expect_one(send("RSET"), 250, "2.0.0");
    EXPECT_EQ(session.transaction().ret, Ret::unspecified);
    EXPECT_EQ(session.transaction().envid, "");
    mail("MAIL FROM:<> ret=full SIZE=100");
    EXPECT_EQ(session.transaction().ret, Ret::full);
}

TEST_F(SmtpSessionLenient, MailDsnParameterErrors) {
    ehlo();
    EXPECT_EQ(wire(send("MAIL FROM:<a@b.test> RET=BOGUS")), "501 5.5.4 Bad RET parameter syntax\r\n");
    EXPECT_EQ(wire(send("MAIL FROM:<a@b.test> RET=FULL RET=FULL")), "501 5.5.4 Duplicate RET parameter\r\n");
    EXPECT_EQ(wire(send("MAIL FROM:<a@b.test> ENVID=a+2")), "501 5.5.4 Bad ENVID parameter syntax\r\n");
    EXPECT_EQ(wire(send("MAIL FROM:<a@b.test> ENVID=x ENVID=x")), "501 5.5.4 Duplicate ENVID parameter\r\n");
    const std::vector<std::string> bad{"MAIL FROM:<a@b.test> RET", "MAIL FROM:<a@b.test> ENVID",
                                       "MAIL FROM:<a@b.test> ENVID=" + std::string(101, 'e'),
                                       "MAIL FROM:<a@b.test> ENVID=a+0Ab", "MAIL FROM:<a@b.test> ENVID=\xC3\xA9"};
    for (const std::string& line : bad)
        expect_one(send(line), 501, "5.5.4");
    EXPECT_EQ(session.state(), SessionState::ready);
    mail("MAIL FROM:<a@b.test> ENVID=" + std::string(100, 'e'));
}

TEST_F(SmtpSession, DsnParametersNeedEhlo) {
    expect_one(send("HELO client.test"), 250, "");
    expect_one(send("MAIL FROM:<alice@sender.test> RET=FULL"), 555, "5.5.4");
    mail();
    expect_one(send("RCPT TO:<bob@example.test> NOTIFY=FAILURE"), 555, "5.5.4");
    EXPECT_TRUE(policy.asked.empty());
}

TEST_F(SmtpSession, RcptDsnParameters) {
    ehlo();
    mail();
    rcpt("RCPT TO:<bob@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;alice@example.test");
    rcpt("RCPT TO:<carol@example.test>");
    rcpt("RCPT TO:<dave@example.test> orcpt=RFC822;d+2Bx@example.test notify=never");
    const Transaction& tx = session.transaction();
    ASSERT_EQ(tx.recipient_dsn.size(), tx.recipients.size());
    EXPECT_EQ(tx.recipient_dsn[0], (RecipientDsn{kNotifySuccess | kNotifyFailure, "rfc822;alice@example.test"}));
    EXPECT_EQ(tx.recipient_dsn[1], RecipientDsn{});
    EXPECT_EQ(tx.recipient_dsn[2], (RecipientDsn{kNotifyNever, "RFC822;d+2Bx@example.test"}));
}

TEST_F(SmtpSession, RejectedRecipientsKeepTheListsParallel) {
    ehlo();
    mail();
    expect_one(send("RCPT TO:<unknown@example.test> NOTIFY=DELAY"), 550, "5.1.1");
    rcpt("RCPT TO:<b@example.test> NOTIFY=DELAY");
    ASSERT_EQ(session.transaction().recipient_dsn.size(), 1u);
    EXPECT_EQ(session.transaction().recipient_dsn[0].notify, kNotifyDelay);
}

TEST_F(SmtpSessionLenient, RcptDsnParameterErrors) {
    ehlo();
    mail();
    EXPECT_EQ(wire(send("RCPT TO:<b@example.test> NOTIFY=NEVER,SUCCESS")), "501 5.5.4 Bad NOTIFY parameter syntax\r\n");
    EXPECT_EQ(wire(send("RCPT TO:<b@example.test> NOTIFY=DELAY NOTIFY=DELAY")),
              "501 5.5.4 Duplicate NOTIFY parameter\r\n");
    EXPECT_EQ(wire(send("RCPT TO:<b@example.test> ORCPT=alice@example.test")), "501 5.5.4 Bad ORCPT parameter syntax\r\n");
    EXPECT_EQ(wire(send("RCPT TO:<b@example.test> ORCPT=rfc822;a@x ORCPT=rfc822;a@x")),
              "501 5.5.4 Duplicate ORCPT parameter\r\n");
    for (const char* line : {"RCPT TO:<b@example.test> NOTIFY", "RCPT TO:<b@example.test> NOTIFY=SUCCESS,,DELAY",
                             "RCPT TO:<b@example.test> NOTIFY=ALWAYS", "RCPT TO:<b@example.test> ORCPT",
                             "RCPT TO:<b@example.test> ORCPT=rfc822;a+2", "RCPT TO:<b@example.test> ORCPT=rfc822;",
                             // raw UTF-8 (RFC 6533 unitext) only with SMTPUTF8
                             "RCPT TO:<b@example.test> ORCPT=utf-8;j\xC3\xB6rg@example.test"})
        expect_one(send(line), 501, "5.5.4");
    EXPECT_TRUE(policy.asked.empty());
    EXPECT_TRUE(session.transaction().recipients.empty());
    EXPECT_TRUE(session.transaction().recipient_dsn.empty());
    EXPECT_EQ(session.state(), SessionState::mail);
}

TEST_F(SmtpSession, Utf8OrcptWithSmtputf8) {
    ehlo();
    mail("MAIL FROM:<alice@sender.test> SMTPUTF8");
    rcpt("RCPT TO:<m\xC3\xBCller@example.test> ORCPT=utf-8;j\xC3\xB6rg@example.test");
    rcpt("RCPT TO:<b@example.test> ORCPT=utf-8;j\\x{F6}rg@example.test");
    EXPECT_EQ(session.transaction().recipient_dsn[0].orcpt, "utf-8;j\xC3\xB6rg@example.test");
    EXPECT_EQ(session.transaction().recipient_dsn[1].orcpt, "utf-8;j\\x{F6}rg@example.test");
}

TEST_F(SmtpSession, TooManyRecipients) {
    ehlo();
    mail();
    rcpt("RCPT TO:<a@example.test>");
    rcpt("RCPT TO:<b@example.test>");
    rcpt("RCPT TO:<c@example.test>");
    for (int i = 0; i < 20; ++i) {   // well past max_errors: none of these count
        const Step s = send("RCPT TO:<d@example.test>");
        expect_one(s, 452, "4.5.3");
        EXPECT_EQ(wire(s), "452 4.5.3 Error: too many recipients\r\n");
    }
    EXPECT_EQ(session.error_count(), 0u);
    EXPECT_EQ(policy.asked.size(), 3u);
    EXPECT_EQ(session.transaction().recipients.size(), 3u);
    expect_one(send("DATA"), 354, "", Next::data);
}

// --- error limit ---------------------------------------------------------------------------------------

TEST_F(SmtpSessionStrict, ErrorLimitCloses) {
    expect_one(send("XYZZY"), 500, "5.5.2");
    expect_one(send("MAIL FROM:<a@b.test>"), 503, "5.5.1");
    EXPECT_EQ(session.error_count(), 2u);
    const Step s = send("XYZZY");
    ASSERT_EQ(s.replies.size(), 2u);
    EXPECT_EQ(s.replies[0].code, 500);
    EXPECT_EQ(s.replies[0].enhanced, "5.5.2");
    EXPECT_EQ(s.replies[1].code, 421);
    EXPECT_EQ(s.replies[1].enhanced, "4.7.0");
    EXPECT_EQ(wire(s), "500 5.5.2 Error: command not recognized\r\n421 4.7.0 mx.example.test Error: too many errors\r\n");
    EXPECT_EQ(s.next, Next::close);
    EXPECT_EQ(session.state(), SessionState::closed);
    EXPECT_EQ(session.error_count(), 3u);
}

TEST_F(SmtpSessionStrict, RecipientRejectionsCountTowardLimit) {
    ehlo();
    mail();
    expect_one(send("RCPT TO:<unknown@example.test>"), 550, "5.1.1");
    expect_one(send("RCPT TO:<relay@elsewhere.test>"), 554, "5.7.1");
    const Step s = send("RCPT TO:<unknown@example.test>");
    ASSERT_EQ(s.replies.size(), 2u);
    EXPECT_EQ(s.replies[0].code, 550);
    EXPECT_EQ(s.replies[1].code, 421);
    EXPECT_EQ(s.replies[1].enhanced, "4.7.0");
    EXPECT_EQ(s.next, Next::close);
}

TEST_F(SmtpSessionStrict, NonErrorRepliesDoNotCount) {
    ehlo();
    for (int i = 0; i < 5; ++i) expect_one(send("MAIL FROM:<a@b.test> SIZE=99999"), 552, "5.3.4");
    mail();
    for (int i = 0; i < 5; ++i) expect_one(send("RCPT TO:<tempfail@example.test>"), 451, "4.3.0");
    for (int i = 0; i < 5; ++i) expect_one(send("NOOP"), 250, "2.0.0");
    for (int i = 0; i < 5; ++i) expect_one(send("VRFY bob"), 252, "2.0.0");
    EXPECT_EQ(session.error_count(), 0u);
    EXPECT_NE(session.state(), SessionState::closed);
}

TEST_F(SmtpSessionStrict, LineTooLongAndBareLfCount) {
    expect_one(checked(session.on_line_too_long()), 500, "5.5.2");
    expect_one(checked(session.on_bare_lf_command()), 500, "5.5.2");
    const Step s = checked(session.on_line_too_long());
    ASSERT_EQ(s.replies.size(), 2u);
    EXPECT_EQ(s.replies[1].code, 421);
    EXPECT_EQ(s.next, Next::close);
}

TEST_F(SmtpSession, LineTooLongAndBareLfReplies) {
    EXPECT_EQ(wire(checked(session.on_line_too_long())), "500 5.5.2 Error: line too long\r\n");
    const Step s = checked(session.on_bare_lf_command());
    expect_one(s, 500, "5.5.2");
    EXPECT_EQ(session.error_count(), 2u);
}

// --- DATA ------------------------------------------------------------------------------------------------

TEST_F(SmtpSession, DataStarts) {
    to_rcpt();
    const Step s = send("DATA");
    expect_one(s, 354, "", Next::data);
    EXPECT_EQ(wire(s), "354 End data with <CR><LF>.<CR><LF>\r\n");
    EXPECT_EQ(session.state(), SessionState::data);
}

TEST_F(SmtpSession, DataWithArgument) {
    to_rcpt();
    expect_one(send("DATA now"), 501, "5.5.4");
    EXPECT_EQ(session.state(), SessionState::rcpt);
}

TEST_F(SmtpSession, DataEndTooBig) {
    to_data();
    ContentFlaws f;
    f.too_big = true;
    f.bare_lf = true;   // size wins
    const Step s = checked(session.on_data_end(f));
    expect_one(s, 552, "5.3.4");
    EXPECT_EQ(wire(s), "552 5.3.4 Message size exceeds fixed limit\r\n");
    EXPECT_EQ(session.state(), SessionState::ready);
    EXPECT_TRUE(session.transaction().recipients.empty());
    EXPECT_FALSE(session.transaction().sender.mailbox.has_value());
    EXPECT_EQ(session.error_count(), 0u);
    mail();
}

TEST_F(SmtpSession, DataEndBareLf) {
    to_data();
    ContentFlaws f;
    f.bare_lf = true;
    const Step s = checked(session.on_data_end(f));
    expect_one(s, 550, "5.5.2");
    EXPECT_EQ(session.state(), SessionState::ready);
    EXPECT_TRUE(session.transaction().recipients.empty());
    EXPECT_EQ(session.error_count(), 1u);
    mail();
}

TEST_F(SmtpSession, DataEndBareCr) {
    to_data();
    ContentFlaws f;
    f.bare_cr = true;
    f.line_too_long = true;   // bare CR wins
    expect_one(checked(session.on_data_end(f)), 550, "5.5.2");
    EXPECT_EQ(session.state(), SessionState::ready);
    EXPECT_TRUE(session.transaction().recipients.empty());
}

TEST_F(SmtpSession, DataEndNul) {
    to_data();
    ContentFlaws f;
    f.nul = true;
    f.line_too_long = true;   // NUL wins
    const Step s = checked(session.on_data_end(f));
    expect_one(s, 550, "5.6.1");
    EXPECT_NE(wire(s).find("NUL"), std::string::npos);
    EXPECT_EQ(session.state(), SessionState::ready);
    EXPECT_TRUE(session.transaction().recipients.empty());
    EXPECT_EQ(session.error_count(), 1u);
    mail();
}

TEST_F(SmtpSession, BdatLastWithNul) {
    to_rcpt();
    send("BDAT 10 LAST");
    ContentFlaws f;
    f.nul = true;
    expect_one(checked(session.on_chunk_end(f)), 550, "5.6.1");
    EXPECT_EQ(session.state(), SessionState::ready);
}

TEST_F(SmtpSession, DataEndLineTooLong) {
    to_data();
    ContentFlaws f;
    f.line_too_long = true;
    const Step s = checked(session.on_data_end(f));
    expect_one(s, 550, "5.6.0");
    EXPECT_NE(wire(s).find("1000"), std::string::npos);
    EXPECT_EQ(session.state(), SessionState::ready);
    EXPECT_TRUE(session.transaction().recipients.empty());
}

TEST_F(SmtpSession, DataEndCleanCommits) {
    to_data();
    const Step s = checked(session.on_data_end(ContentFlaws{}));
    EXPECT_TRUE(s.replies.empty());
    EXPECT_EQ(s.next, Next::commit);
    EXPECT_EQ(session.state(), SessionState::committing);
    // The transaction is still there for the spool writer.
    ASSERT_EQ(session.transaction().recipients.size(), 1u);
    EXPECT_EQ(session.transaction().sender.to_string(), "<alice@sender.test>");

    const Step done = checked(session.on_committed("ABC"));
    expect_one(done, 250, "2.0.0");
    EXPECT_EQ(wire(done), "250 2.0.0 Ok: queued as ABC\r\n");
    EXPECT_EQ(session.state(), SessionState::ready);
    EXPECT_TRUE(session.transaction().recipients.empty());
    EXPECT_FALSE(session.transaction().sender.mailbox.has_value());
    // A second transaction on the same session.
    mail();
    rcpt();
}

TEST_F(SmtpSession, CommitFailed) {
    to_data();
    EXPECT_EQ(checked(session.on_data_end(ContentFlaws{})).next, Next::commit);
    const Step s = checked(session.on_commit_failed());
    expect_one(s, 451, "4.3.0");
    EXPECT_EQ(session.state(), SessionState::ready);
    EXPECT_TRUE(session.transaction().recipients.empty());
    mail();
}

TEST_F(SmtpSession, CommitFailedForLackOfSpace) {
    to_data();
    EXPECT_EQ(checked(session.on_data_end(ContentFlaws{})).next, Next::commit);
    expect_one(checked(session.on_commit_failed(true)), 452, "4.3.1");
    EXPECT_EQ(session.state(), SessionState::ready);
    EXPECT_TRUE(session.transaction().recipients.empty());
    mail();
}

// --- BDAT (RFC 3030) -------------------------------------------------------------------------------------

TEST_F(SmtpSession, BdatChunksThenLast) {
    to_rcpt();
    Step s = send("BDAT 10");
    EXPECT_TRUE(s.replies.empty());
    EXPECT_EQ(s.next, Next::bdat_chunk);
    EXPECT_EQ(s.chunk_size, 10u);
    EXPECT_FALSE(s.chunk_last);
    EXPECT_FALSE(s.discard_chunk);
    EXPECT_EQ(session.state(), SessionState::bdat);

    s = checked(session.on_chunk_end(ContentFlaws{}));
    expect_one(s, 250, "2.0.0");
    EXPECT_EQ(wire(s), "250 2.0.0 Ok: 10 octets received\r\n");
    EXPECT_EQ(session.state(), SessionState::bdat);

    s = send("BDAT 5 LAST");
    EXPECT_TRUE(s.replies.empty());
    EXPECT_EQ(s.next, Next::bdat_chunk);
    EXPECT_EQ(s.chunk_size, 5u);
    EXPECT_TRUE(s.chunk_last);
    EXPECT_FALSE(s.discard_chunk);
    EXPECT_EQ(session.transaction().bdat_octets, 15u);

    s = checked(session.on_chunk_end(ContentFlaws{}));
    EXPECT_TRUE(s.replies.empty());
    EXPECT_EQ(s.next, Next::commit);
    EXPECT_EQ(session.state(), SessionState::committing);

    expect_one(checked(session.on_committed("Q1")), 250, "2.0.0");
    EXPECT_EQ(session.state(), SessionState::ready);
    EXPECT_EQ(session.transaction().bdat_octets, 0u);
}

TEST_F(SmtpSession, BdatZeroLast) {
    to_rcpt();
    const Step s = send("BDAT 0 LAST");
    EXPECT_EQ(s.next, Next::bdat_chunk);
    EXPECT_EQ(s.chunk_size, 0u);
    EXPECT_TRUE(s.chunk_last);
    EXPECT_EQ(checked(session.on_chunk_end(ContentFlaws{})).next, Next::commit);
}

TEST_F(SmtpSession, BdatLastWithFlaws) {
    to_rcpt();
    send("BDAT 100");
    expect_one(checked(session.on_chunk_end(ContentFlaws{})), 250, "2.0.0");
    send("BDAT 100 LAST");
    ContentFlaws f;
    f.bare_lf = true;
    expect_one(checked(session.on_chunk_end(f)), 550, "5.5.2");
    EXPECT_EQ(session.state(), SessionState::ready);

    mail();
    rcpt();
    send("BDAT 100 LAST");
    ContentFlaws big;
    big.too_big = true;
    expect_one(checked(session.on_chunk_end(big)), 552, "5.3.4");
    EXPECT_EQ(session.state(), SessionState::ready);
}

TEST_F(SmtpSession, BdatBeforeMailDiscardsChunk) {
    ehlo();
    const Step s = send("BDAT 20 LAST");
    EXPECT_EQ(s.next, Next::bdat_chunk);
    EXPECT_TRUE(s.discard_chunk);
    EXPECT_EQ(s.chunk_size, 20u);
    EXPECT_TRUE(s.chunk_last);
    ASSERT_EQ(s.replies.size(), 1u);   // sent once the chunk has been read and dropped
    EXPECT_EQ(s.replies[0].code, 503);
    EXPECT_EQ(s.replies[0].enhanced, "5.5.1");
    EXPECT_EQ(wire(s), "503 5.5.1 Error: need MAIL command\r\n");
    EXPECT_EQ(session.state(), SessionState::ready);
    EXPECT_EQ(session.error_count(), 1u);
}

TEST_F(SmtpSession, BdatBeforeHeloDiscardsChunk) {
    const Step s = send("BDAT 7");
    EXPECT_EQ(s.next, Next::bdat_chunk);
    EXPECT_TRUE(s.discard_chunk);
    EXPECT_EQ(s.chunk_size, 7u);
    ASSERT_EQ(s.replies.size(), 1u);
    EXPECT_EQ(s.replies[0].code, 503);
    EXPECT_EQ(session.state(), SessionState::greeted);
}

TEST_F(SmtpSession, BdatBeforeRcptDiscardsChunk) {
    ehlo();
    mail();
    const Step s = send("BDAT 5");
    EXPECT_EQ(s.next, Next::bdat_chunk);
    EXPECT_TRUE(s.discard_chunk);
    EXPECT_EQ(wire(s), "503 5.5.1 Error: need RCPT command\r\n");
    EXPECT_EQ(session.state(), SessionState::mail);
    EXPECT_EQ(session.transaction().bdat_octets, 0u);
}

TEST_F(SmtpSessionStrict, BdatBeforeMailAtErrorLimitCloses) {
    send("XYZZY");
    send("XYZZY");
    const Step s = send("BDAT 20");
    ASSERT_EQ(s.replies.size(), 2u);
    EXPECT_EQ(s.replies[0].code, 503);
    EXPECT_EQ(s.replies[1].code, 421);
    EXPECT_EQ(s.next, Next::close);
    EXPECT_FALSE(s.discard_chunk);
}

TEST_F(SmtpSession, CommandsInsideBdatSequence) {
    to_rcpt();
    send("BDAT 3");
    expect_one(checked(session.on_chunk_end(ContentFlaws{})), 250, "2.0.0");
    const Step d = send("DATA");
    expect_one(d, 503, "5.5.1");
    EXPECT_EQ(wire(d), "503 5.5.1 Error: DATA not allowed after BDAT\r\n");
    for (const char* line : {"MAIL FROM:<a@b.test>", "RCPT TO:<c@example.test>", "EHLO client.test", "VRFY bob",
                             "XYZZY"}) {
        const Step s = send(line);
        expect_one(s, 503, "5.5.1");
        EXPECT_EQ(wire(s), "503 5.5.1 Error: BDAT LAST expected\r\n");
    }
    EXPECT_EQ(session.state(), SessionState::bdat);
    expect_one(send("NOOP"), 250, "2.0.0");
    expect_one(send("HELP"), 214, "2.0.0");
    EXPECT_EQ(session.state(), SessionState::bdat);
    // The sequence can still be completed.
    const Step last = send("BDAT 2 LAST");
    EXPECT_EQ(last.next, Next::bdat_chunk);
    EXPECT_EQ(checked(session.on_chunk_end(ContentFlaws{})).next, Next::commit);
}

TEST_F(SmtpSession, RsetInsideBdatSequence) {
    to_rcpt();
    send("BDAT 3");
    checked(session.on_chunk_end(ContentFlaws{}));
    expect_one(send("RSET"), 250, "2.0.0");
    EXPECT_EQ(session.state(), SessionState::ready);
    EXPECT_EQ(session.transaction().bdat_octets, 0u);
    mail();
}

TEST_F(SmtpSession, QuitInsideBdatSequence) {
    to_rcpt();
    send("BDAT 3");
    checked(session.on_chunk_end(ContentFlaws{}));
    expect_one(send("QUIT"), 221, "2.0.0", Next::close);
}

TEST_F(SmtpSession, DataAfterBdatLastIsNewTransaction) {
    to_rcpt();
    send("BDAT 1 LAST");
    checked(session.on_chunk_end(ContentFlaws{}));
    checked(session.on_committed("X"));
    expect_one(send("DATA"), 503, "5.5.1");
}

TEST_F(SmtpSession, BadBdatSyntax) {
    // Like Postfix: an unreadable size is a syntax error; nothing is read as a chunk and the session goes on
    // (any chunk octets then read as bad commands and run into the error limit).
    to_rcpt();
    std::size_t errors = session.error_count();
    for (const char* arg : {"BDAT", "BDAT abc", "BDAT 10 LASTX", "BDAT -1", "BDAT 99999999999999999999"}) {
        const Step s = send(arg);
        expect_one(s, 501, "5.5.4");
        EXPECT_EQ(wire(s), "501 5.5.4 Syntax: BDAT size [LAST]\r\n");
        EXPECT_EQ(s.chunk_size, 0u);
        EXPECT_FALSE(s.discard_chunk);
        EXPECT_EQ(session.state(), SessionState::rcpt) << arg;
        EXPECT_EQ(session.error_count(), ++errors);
    }
    EXPECT_EQ(session.transaction().bdat_octets, 0u);
    // A good BDAT afterwards works.
    const Step ok = send("BDAT 3");
    EXPECT_TRUE(ok.replies.empty());
    EXPECT_EQ(ok.next, Next::bdat_chunk);
    EXPECT_EQ(ok.chunk_size, 3u);
}

TEST_F(SmtpSession, BadBdatSyntaxInsideSequence) {
    to_rcpt();
    send("BDAT 3");
    checked(session.on_chunk_end(ContentFlaws{}));
    expect_one(send("BDAT x"), 501, "5.5.4");
    EXPECT_EQ(session.state(), SessionState::bdat);
    const Step last = send("BDAT 1 LAST");
    EXPECT_EQ(last.next, Next::bdat_chunk);
    EXPECT_EQ(checked(session.on_chunk_end(ContentFlaws{})).next, Next::commit);
}

TEST_F(SmtpSessionStrict, BadBdatAtErrorLimitSaysGoodbyeOnce) {
    send("XYZZY");
    send("XYZZY");
    const Step s = send("BDAT abc");
    EXPECT_EQ(s.next, Next::close);
    ASSERT_EQ(s.replies.size(), 2u) << wire(s);
    EXPECT_EQ(s.replies[0].code, 501);
    EXPECT_EQ(s.replies[1].code, 421);
    EXPECT_EQ(session.state(), SessionState::closed);
}

// --- RSET, NOOP, QUIT, VRFY, HELP, EXPN, STARTTLS, AUTH -----------------------------------------------------

TEST_F(SmtpSession, Rset) {
    to_rcpt();
    const Step s = send("RSET");
    expect_one(s, 250, "2.0.0");
    EXPECT_EQ(wire(s), "250 2.0.0 Ok\r\n");
    EXPECT_EQ(session.state(), SessionState::ready);
    EXPECT_TRUE(session.transaction().recipients.empty());
    EXPECT_EQ(session.helo_name(), "client.test");   // RSET keeps the EHLO
    EXPECT_EQ(session.protocol(), "ESMTP");
    mail();
}

TEST_F(SmtpSession, RsetBeforeHeloKeepsGreetedState) {
    expect_one(send("RSET"), 250, "2.0.0");
    EXPECT_EQ(session.state(), SessionState::greeted);
    expect_one(send("MAIL FROM:<a@b.test>"), 503, "5.5.1");
}

TEST_F(SmtpSession, RsetWithArgument) {
    to_rcpt();
    expect_one(send("RSET now"), 501, "5.5.4");
    EXPECT_EQ(session.state(), SessionState::rcpt);
}

TEST_F(SmtpSession, Noop) {
    for (int i = 0; i < 2; ++i) {
        const Step s = send("NOOP");
        expect_one(s, 250, "2.0.0");
        EXPECT_EQ(wire(s), "250 2.0.0 Ok\r\n");
        ehlo();
        mail();
        expect_one(send("NOOP with argument"), 250, "2.0.0");
        EXPECT_EQ(session.state(), SessionState::mail);
        send("RSET");
    }
}

TEST_F(SmtpSession, Quit) {
    to_rcpt();
    const Step s = send("QUIT");
    expect_one(s, 221, "2.0.0", Next::close);
    EXPECT_EQ(wire(s), "221 2.0.0 Bye\r\n");
    EXPECT_EQ(session.state(), SessionState::closed);
}

TEST_F(SmtpSession, QuitWithArgument) {
    expect_one(send("QUIT now"), 501, "5.5.4");
    EXPECT_EQ(session.state(), SessionState::greeted);
}

TEST_F(SmtpSession, VrfySameReplyForAnyUser) {
    ehlo();
    const Step known = send("VRFY bob@example.test");
    expect_one(known, 252, "2.0.0");
    const std::string expected = wire(known);
    for (const char* line : {"VRFY unknown@example.test", "VRFY root", "VRFY relay@elsewhere.test", "VRFY <x@y.test>",
                             "vrfy Bob Smith"}) {
        const Step s = send(line);
        expect_one(s, 252, "2.0.0");
        EXPECT_EQ(wire(s), expected) << line;
    }
    EXPECT_TRUE(policy.asked.empty()) << "VRFY must not look anything up";
    expect_one(send("VRFY"), 501, "5.5.4");
}

TEST_F(SmtpSession, Help) {
    const Step s = send("HELP");
    expect_one(s, 214, "2.0.0");
    EXPECT_NE(wire(s).find("MAIL"), std::string::npos);
    expect_one(send("HELP DATA"), 214, "2.0.0");
}

TEST_F(SmtpSession, ExpnStarttlsAuth) {
    ehlo();
    expect_one(send("EXPN staff"), 502, "5.5.1");
    expect_one(send("STARTTLS"), 502, "5.5.1");
    expect_one(send("AUTH PLAIN AGJvYgBzZWNyZXQ="), 503, "5.5.1");
    EXPECT_EQ(session.state(), SessionState::ready);
    EXPECT_EQ(session.error_count(), 3u);
}

// --- protocol name, timeouts, shutdown -----------------------------------------------------------------------

TEST_F(SmtpSession, ProtocolNames) {
    EXPECT_EQ(session.protocol(), "SMTP");
    expect_one(send("HELO client.test"), 250, "");
    EXPECT_EQ(session.protocol(), "SMTP");
    ehlo();
    EXPECT_EQ(session.protocol(), "ESMTP");
    mail("MAIL FROM:<alice@sender.test> SMTPUTF8");
    EXPECT_EQ(session.protocol(), "UTF8SMTP");
    rcpt();
    expect_one(send("DATA"), 354, "", Next::data);
    EXPECT_EQ(checked(session.on_data_end(ContentFlaws{})).next, Next::commit);
    EXPECT_EQ(session.protocol(), "UTF8SMTP");   // still right while the Received header is written
    checked(session.on_committed("Q"));
    EXPECT_EQ(session.protocol(), "ESMTP");
}

TEST_F(SmtpSession, Timeout) {
    to_rcpt();
    const Reply r = session.on_timeout();
    check_reply_form(r);
    EXPECT_EQ(r.code, 421);
    EXPECT_EQ(r.enhanced, "4.4.2");
    EXPECT_EQ(r.render(), "421 4.4.2 mx.example.test Error: timeout exceeded\r\n");
    EXPECT_EQ(session.state(), SessionState::closed);
}

TEST_F(SmtpSession, Shutdown) {
    const Reply r = session.on_shutdown();
    check_reply_form(r);
    EXPECT_EQ(r.code, 421);
    EXPECT_EQ(r.enhanced, "4.3.2");
    EXPECT_EQ(r.render().substr(0, 26), "421 4.3.2 mx.example.test ");
}

TEST_F(SmtpSession, StateNames) {
    EXPECT_EQ(to_string(SessionState::greeted), "greeted");
    EXPECT_EQ(to_string(SessionState::ready), "ready");
    EXPECT_EQ(to_string(SessionState::mail), "mail");
    EXPECT_EQ(to_string(SessionState::rcpt), "rcpt");
    EXPECT_EQ(to_string(SessionState::data), "data");
    EXPECT_EQ(to_string(SessionState::bdat), "bdat");
    EXPECT_EQ(to_string(SessionState::committing), "committing");
    EXPECT_EQ(to_string(SessionState::closed), "closed");
}

// --- replies -----------------------------------------------------------------------------------------------

TEST(SmtpReply, RenderSingleAndMultiLine) {
    EXPECT_EQ(Reply(250, "2.0.0", "Ok").render(), "250 2.0.0 Ok\r\n");
    EXPECT_EQ(Reply(220, "", "host ESMTP").render(), "220 host ESMTP\r\n");
    Reply multi;
    multi.code = 550;
    multi.enhanced = "5.7.1";
    multi.lines = {"first", "second", "third"};
    EXPECT_EQ(multi.render(), "550-5.7.1 first\r\n550-5.7.1 second\r\n550 5.7.1 third\r\n");
    Reply empty;
    empty.code = 250;
    EXPECT_EQ(empty.render(), "250 \r\n");
    std::string out = "x";
    Reply(221, "2.0.0", "Bye").render_to(out);
    EXPECT_EQ(out, "x221 2.0.0 Bye\r\n");
}

TEST(SmtpReply, Classification) {
    EXPECT_TRUE(Reply(250, "2.0.0", "").is_positive());
    EXPECT_TRUE(Reply(354, "", "").is_positive());
    EXPECT_FALSE(Reply(354, "", "").is_error());
    EXPECT_TRUE(Reply(421, "4.7.0", "").is_error());
    EXPECT_TRUE(Reply(550, "5.1.1", "").is_error());
    EXPECT_FALSE(Reply(550, "5.1.1", "").is_positive());
}

// Walks a session through every path once more and checks the form of every reply it produced.
TEST_F(SmtpSessionLenient, EveryReplyHasEnhancedCodeExceptGreetingEhloAnd354) {
    check_reply_form(session.greeting());
    send("NOOP");
    send("MAIL FROM:<a@b.test>");
    send("HELO client.test");
    send("MAIL FROM:<a@b.test> SIZE=1");
    ehlo();
    send("VRFY x");
    send("VRFY");
    send("HELP");
    send("EXPN x");
    send("STARTTLS");
    send("AUTH LOGIN");
    send("RCPT TO:<a@b.test>");
    send("DATA");
    send("MAIL FROM:<a@b.test> SIZE=100000");
    send("MAIL FROM:<j\xC3\xB6rg@b.test>");
    send("MAIL FROM:<a@b.test> X=1");
    send("RSET x");
    send("QUIT x");
    mail();
    send("RCPT TO:<unknown@example.test>");
    send("RCPT TO:<relay@example.test>");
    send("RCPT TO:<tempfail@example.test>");
    send("RCPT TO:<bad>");
    send("BDAT 3");
    rcpt();
    send("DATA");
    ContentFlaws lf;
    lf.bare_lf = true;
    checked(session.on_data_end(lf));
    to_data();
    checked(session.on_data_end(ContentFlaws{}));
    checked(session.on_commit_failed());
    mail();
    rcpt();
    send("BDAT 4");
    checked(session.on_chunk_end(ContentFlaws{}));
    send("DATA");
    send("BDAT 4 LAST");
    checked(session.on_chunk_end(ContentFlaws{}));
    checked(session.on_committed("Z"));
    checked(session.on_line_too_long());
    checked(session.on_bare_lf_command());
    EXPECT_EQ(session.state(), SessionState::ready);
    mail();
    for (const char* to : {"RCPT TO:<r1@example.test>", "RCPT TO:<r2@example.test>", "RCPT TO:<r3@example.test>"}) rcpt(to);
    expect_one(send("RCPT TO:<r4@example.test>"), 452, "4.5.3");
    send("RSET");
    Step last;
    for (int i = 0; i < 1000 && last.next != Next::close; ++i) last = send("XYZZY");
    ASSERT_EQ(last.next, Next::close);
    EXPECT_EQ(last.replies.back().code, 421);
    send("BDAT nonsense");
    check_reply_form(session.on_timeout());
    check_reply_form(session.on_shutdown());
    EXPECT_GE(all_replies.size(), 40u);
    for (int code : {214, 250, 252, 354, 421, 451, 452, 500, 501, 502, 503, 550, 552, 553, 554, 555}) {
        bool seen = false;
        for (const Reply& r : all_replies) seen |= r.code == code;
        EXPECT_TRUE(seen) << code;
    }
}

// Content filters (milters) are asked about HELO, MAIL, RCPT and DATA after the session accepted them; a refusal
// undoes the command.
TEST_F(SmtpSession, AcceptedCommandsCarryTheirFilterStage) {
    EXPECT_EQ(send("EHLO client.test").filter_stage, ferry::smtp::FilterStage::helo);
    EXPECT_EQ(send("MAIL FROM:<alice@sender.test>").filter_stage, ferry::smtp::FilterStage::mail);
    EXPECT_EQ(send("RCPT TO:<bob@example.test>").filter_stage, ferry::smtp::FilterStage::rcpt);
    EXPECT_EQ(send("NOOP").filter_stage, ferry::smtp::FilterStage::none);
    EXPECT_EQ(send("RCPT TO:<unknown@example.test>").filter_stage, ferry::smtp::FilterStage::none);   // refused
    EXPECT_EQ(send("DATA").filter_stage, ferry::smtp::FilterStage::data);
}

TEST_F(SmtpSession, FilterRefusedRcptDropsOnlyThatRecipient) {
    to_rcpt();
    rcpt("RCPT TO:<carol@example.test>");
    expect_one(checked(session.on_filter_refused(Reply(550, "5.7.1", "no carol"))), 550, "5.7.1");
    ASSERT_EQ(session.transaction().recipients.size(), 1u);
    EXPECT_EQ(session.transaction().recipients[0].to_string(), "bob@example.test");
    EXPECT_EQ(session.transaction().recipient_dsn.size(), 1u);
    expect_one(send("DATA"), 354, "", Next::data);
}

TEST_F(SmtpSession, FilterRefusedOnlyRecipientNeedsAnotherBeforeData) {
    ehlo();
    mail();
    rcpt();
    expect_one(checked(session.on_filter_refused(Reply(451, "4.7.1", "later"))), 451, "4.7.1");
    EXPECT_TRUE(session.transaction().recipients.empty());
    expect_one(send("DATA"), 503, "5.5.1");
}

TEST_F(SmtpSession, FilterRefusedMailStartsNoTransaction) {
    ehlo();
    mail();
    expect_one(checked(session.on_filter_refused(Reply(550, "5.7.1", "no"))), 550, "5.7.1");
    expect_one(send("RCPT TO:<bob@example.test>"), 503, "5.5.1");
    mail();   // a new MAIL is not "nested"
}

TEST_F(SmtpSession, FilterRefusedHeloMustBeGivenAgain) {
    expect_one(send("EHLO client.test"), 250, "");
    expect_one(checked(session.on_filter_refused(Reply(550, "5.7.1", "bad helo"))), 550, "5.7.1");
    expect_one(send("MAIL FROM:<alice@sender.test>"), 503, "5.5.1");
    EXPECT_EQ(session.helo_name(), "");
    ehlo();
    mail();
}

TEST_F(SmtpSession, FilterRefusedDataKeepsTheTransaction) {
    to_rcpt();
    expect_one(send("DATA"), 354, "", Next::data);
    expect_one(checked(session.on_filter_refused(Reply(554, "5.7.1", "no data"))), 554, "5.7.1");
    EXPECT_EQ(session.transaction().recipients.size(), 1u);
    expect_one(send("DATA"), 354, "", Next::data);
}

TEST_F(SmtpSession, RefusedSessionAnswersEveryCommandButQuitRsetNoop) {
    session.refuse_session(Reply(554, "5.7.1", "go away"));
    expect_one(send("EHLO client.test"), 554, "5.7.1");
    expect_one(send("MAIL FROM:<alice@sender.test>"), 554, "5.7.1");
    expect_one(send("NOOP"), 250, "2.0.0");
    expect_one(send("RSET"), 250, "2.0.0");
    expect_one(send("QUIT"), 221, "2.0.0", Next::close);
}

}  // namespace
// --- STARTTLS (RFC 3207) ------------------------------------------------------------------------------------

class SmtpSessionTls : public SmtpSession {
protected:
    static SessionSettings with_tls() {
        SessionSettings s = test_settings();
        s.tls_offered = true;
        return s;
    }
    SmtpSessionTls() : SmtpSession(with_tls()) {}

    bool advertises_starttls() {
        const Step s = send("EHLO client.test");
        return wire(s).find("STARTTLS") != std::string::npos;
    }
};

TEST_F(SmtpSessionTls, OfferedThenSessionStartsOverWithoutStarttls) {
    EXPECT_TRUE(advertises_starttls());
    expect_one(send("STARTTLS"), 220, "2.0.0", Next::starttls);
    session.on_tls_started();
    EXPECT_TRUE(session.tls_active());
    EXPECT_EQ(session.state(), SessionState::greeted);
    EXPECT_EQ(session.helo_name(), "");
    // RFC 3207 4.2: the client must EHLO again; what it said before TLS counts for nothing.
    expect_one(send("MAIL FROM:<alice@sender.test>"), 503, "5.5.1");
    EXPECT_FALSE(advertises_starttls());
    EXPECT_EQ(session.protocol(), "ESMTPS");
    expect_one(send("STARTTLS"), 503, "5.5.1");
    mail("MAIL FROM:<alice@sender.test> SMTPUTF8");
    EXPECT_EQ(session.protocol(), "UTF8SMTPS");
}

TEST_F(SmtpSessionTls, AllowedBeforeEhloRefusedInsideATransactionOrWithArguments) {
    expect_one(send("STARTTLS now"), 501, "5.5.4");
    ehlo();
    mail();
    expect_one(send("STARTTLS"), 503, "5.5.1");
    expect_one(send("RSET"), 250, "2.0.0");
    expect_one(send("STARTTLS"), 220, "2.0.0", Next::starttls);
}

TEST_F(SmtpSession, StarttlsNotOfferedWithoutCertificate) {
    const Step s = send("EHLO client.test");
    EXPECT_EQ(wire(s).find("STARTTLS"), std::string::npos);
    expect_one(send("STARTTLS"), 502, "5.5.1");
}

// --- AUTH (RFC 4954) -------------------------------------------------------------------------------------

class SmtpSessionAuth : public SmtpSession {
protected:
    static SessionSettings with_auth() {
        SessionSettings s = test_settings();
        s.tls_offered = true;
        s.auth_offered = true;
        s.auth_required = true;
        return s;
    }
    SmtpSessionAuth() : SmtpSession(with_auth()) {}

    void tls_and_ehlo() {
        expect_one(send("STARTTLS"), 220, "2.0.0", Next::starttls);
        session.on_tls_started();
        ehlo();
    }
    // "\0alice\0pw" in base64
    static constexpr std::string_view kPlain = "AGFsaWNlAHB3";
};

TEST_F(SmtpSessionAuth, NeedsTlsThenPlainSucceeds) {
    const Step e = send("EHLO client.test");
    EXPECT_EQ(wire(e).find("AUTH"), std::string::npos);
    expect_one(send("AUTH PLAIN AGFsaWNlAHB3"), 530, "5.7.0");
    expect_one(send("MAIL FROM:<alice@sender.test>"), 530, "5.7.0");
    tls_and_ehlo();
    const Step auth = send("AUTH PLAIN AGFsaWNlAHB3");
    ASSERT_TRUE(auth.replies.empty());
    EXPECT_EQ(auth.next, Next::authenticate);
    EXPECT_EQ(session.pending_credentials().authcid, "alice");
    EXPECT_EQ(session.pending_credentials().password, "pw");
    expect_one(checked(session.on_auth_result(std::string("alice@example.test"))), 235, "2.7.0");
    EXPECT_EQ(session.authenticated_user(), "alice@example.test");
    EXPECT_EQ(session.pending_credentials().password, "");   // not kept after the check
    EXPECT_EQ(session.protocol(), "ESMTPSA");
    mail();
    rcpt("RCPT TO:<bob@example.test>");
    EXPECT_EQ(policy.last_user, "alice@example.test");
    expect_one(send("RSET"), 250, "2.0.0");
    expect_one(send("MAIL FROM:<notmine@sender.test>"), 553, "5.7.1");
    expect_one(send("AUTH PLAIN AGFsaWNlAHB3"), 503, "5.5.1");
}

TEST_F(SmtpSessionAuth, ChallengeFormsCancelAndFailures) {
    tls_and_ehlo();
    expect_one(send("AUTH PLAIN"), 334, "", Next::auth_response);
    EXPECT_EQ(checked(session.on_auth_response("AGFsaWNlAHB3")).next, Next::authenticate);
    expect_one(checked(session.on_auth_result(std::nullopt)), 535, "5.7.8");
    EXPECT_EQ(session.authenticated_user(), "");
    expect_one(send("AUTH LOGIN"), 334, "", Next::auth_response);
    expect_one(checked(session.on_auth_response("*")), 501, "5.7.0");
    expect_one(send("AUTH LOGIN"), 334, "", Next::auth_response);
    expect_one(checked(session.on_auth_response("YWxpY2U=")), 334, "", Next::auth_response);
    expect_one(checked(session.on_auth_response("not base64")), 501, "5.5.2");
    expect_one(send("AUTH DIGEST-MD5"), 504, "5.5.4");
    expect_one(send("AUTH PLAIN a b"), 501, "5.5.4");
    expect_one(send("AUTH"), 501, "5.5.4");
}

TEST_F(SmtpSessionAuth, NotDuringATransactionNorBeforeEhlo) {
    expect_one(send("STARTTLS"), 220, "2.0.0", Next::starttls);
    session.on_tls_started();
    expect_one(send("AUTH PLAIN AGFsaWNlAHB3"), 503, "5.5.1");
}

TEST_F(SmtpSession, AuthNotOfferedAnswers503) {
    ehlo();
    expect_one(send("AUTH PLAIN AGFsaWNlAHB3"), 503, "5.5.1");
}

}  // namespace ferry::smtp

// Header injection: the EHLO name lands in Received:, so control characters never get that far.
TEST(SmtpSessionInjection, BareCrOrNulInCommandIsRefused) {
    struct AcceptAll : ferry::smtp::MailPolicy {
        bool sender_allowed(const ferry::smtp::Path&, const std::string&) override { return true; }
        ferry::smtp::RecipientVerdict check_recipient(const ferry::smtp::Mailbox&, const std::string&) override {
            return ferry::smtp::RecipientVerdict::accept;
        }
    } policy;
    ferry::smtp::Session s(ferry::smtp::SessionSettings{"mx.example.test"}, policy);
    auto r = s.on_command("EHLO evil\rX-Injected: yes");
    ASSERT_EQ(r.replies.size(), 1u);
    EXPECT_EQ(r.replies[0].code, 500);
    EXPECT_EQ(r.replies[0].enhanced, "5.5.2");
    r = s.on_command(std::string("NOOP\0x", 6));
    EXPECT_EQ(r.replies[0].code, 500);
    r = s.on_command("EHLO bad\tname");
    EXPECT_EQ(r.replies[0].code, 501);
    EXPECT_EQ(r.replies[0].enhanced, "5.5.4");
    r = s.on_command("EHLO client.test");
    EXPECT_EQ(r.replies[0].code, 250);
    EXPECT_EQ(s.helo_name(), "client.test");
}

