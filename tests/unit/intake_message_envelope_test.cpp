#include "intake/message_envelope.hpp"

#include <gtest/gtest.h>

#include "smtp/session.hpp"

namespace ferry::intake {
namespace {

// A transaction as smtp::Session accepts it (the session's own tests cover the parsing), through a policy that
// takes every recipient.
class AcceptAll : public smtp::MailPolicy {
public:
    smtp::RecipientVerdict check_recipient(const smtp::Mailbox&, const std::string&) override {
        return smtp::RecipientVerdict::accept;
    }
    bool sender_allowed(const smtp::Path&, const std::string&) override { return true; }
};

smtp::Transaction transaction(const std::vector<std::string>& commands) {
    AcceptAll policy;
    smtp::SessionSettings settings;
    settings.hostname = "mx.example.test";
    smtp::Session session(settings, policy);
    EXPECT_EQ(session.on_command("EHLO client.test").replies.at(0).code, 250);
    for (const auto& c : commands) {
        const auto step = session.on_command(c);
        EXPECT_EQ(step.replies.at(0).code / 100, 2) << c;
    }
    return session.transaction();
}

const ArrivalFacts kFacts{"1J0TT776IJT0000", 1795430789, "192.0.2.1", "example.test"};

TEST(IntakeMessageEnvelope, CarriesEveryParameterOfMailAndRcpt) {
    const smtp::Transaction tx = transaction({
        "MAIL FROM:<bob@elsewhere.test> SIZE=100 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=abc+2Bdef",
        "RCPT TO:<alice@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;alice@example.test",
        "RCPT TO:<Postmaster>",
        "RCPT TO:<j\xC3\xB6rg@example.test> NOTIFY=NEVER",
    });
    const spool::Envelope e = make_envelope(tx, kFacts);
    EXPECT_EQ(e.queue_id, "1J0TT776IJT0000");
    EXPECT_EQ(e.arrival, 1795430789);
    EXPECT_EQ(e.client, "192.0.2.1");
    EXPECT_EQ(e.sender, "bob@elsewhere.test");
    EXPECT_EQ(e.recipients, (std::vector<std::string>{"alice@example.test", "postmaster@example.test",
                                                      "j\xC3\xB6rg@example.test"}));
    EXPECT_TRUE(e.smtputf8);
    EXPECT_TRUE(e.body_8bit);
    EXPECT_EQ(e.ret, dsn::Ret::hdrs);
    EXPECT_EQ(e.envid, "abc+2Bdef");
    EXPECT_TRUE(e.addendum);
    ASSERT_EQ(e.recipient_dsn.size(), 3u);
    EXPECT_EQ(e.recipient_dsn[0], (dsn::RecipientDsn{dsn::kNotifySuccess | dsn::kNotifyFailure, "rfc822;alice@example.test"}));
    EXPECT_EQ(e.recipient_dsn[1], dsn::RecipientDsn{});
    EXPECT_EQ(e.recipient_dsn[2], (dsn::RecipientDsn{dsn::kNotifyNever, ""}));

    // What the spool writes reads back the same.
    const auto parsed = spool::parse_envelope(spool::serialize_envelope(e));
    ASSERT_TRUE(parsed);
    EXPECT_EQ(parsed->envelope.ret, e.ret);
    EXPECT_EQ(parsed->envelope.recipient_dsn, e.recipient_dsn);
    EXPECT_EQ(parsed->envelope.recipients, e.recipients);
}

TEST(IntakeMessageEnvelope, NullSenderAndNoParameters) {
    const spool::Envelope e = make_envelope(transaction({"MAIL FROM:<>", "RCPT TO:<alice@example.test>"}), kFacts);
    EXPECT_EQ(e.sender, "");
    EXPECT_FALSE(e.smtputf8 || e.body_8bit);
    EXPECT_EQ(e.ret, dsn::Ret::unspecified);
    EXPECT_EQ(e.envid, "");
    EXPECT_EQ(e.recipient_dsn, std::vector<dsn::RecipientDsn>(1));
}

TEST(IntakeMessageEnvelope, PickupIsMarkedAsSmtpWouldMarkIt) {
    const ArrivalFacts local{"1J0TT776IJT0001", 1795430790, "127.0.0.1", ""};
    spool::Envelope e = make_envelope(spool::PickupEnvelope{"root@mx.example.test", {"alice@example.test"}},
                                      "Subject: x\r\n\r\nplain\r\n", local);
    EXPECT_EQ(e.client, "127.0.0.1");
    EXPECT_EQ(e.sender, "root@mx.example.test");
    EXPECT_FALSE(e.body_8bit);
    EXPECT_FALSE(e.smtputf8);
    EXPECT_TRUE(e.addendum);
    EXPECT_EQ(e.recipient_dsn, std::vector<dsn::RecipientDsn>(1));

    e = make_envelope(spool::PickupEnvelope{"", {"alice@example.test", "j\xC3\xB6rg@example.test"}},
                      "Subject: caf\xC3\xA9\r\n\r\n", local);
    EXPECT_TRUE(e.body_8bit);
    EXPECT_TRUE(e.smtputf8);   // RFC 6531 3.4: a UTF-8 address goes on only with SMTPUTF8
    EXPECT_EQ(e.recipient_dsn.size(), 2u);
}

}  // namespace
}  // namespace ferry::intake
