#include "spool/envelope.hpp"

#include <gtest/gtest.h>

#include "smtp/dsn.hpp"

namespace ferry::spool {
namespace {

// The spool keeps RFC 3461's NOTIFY bits without depending on smtp/: both must mean the same.
static_assert(smtp::kNotifyNever == 1 && smtp::kNotifySuccess == 2 && smtp::kNotifyFailure == 4 &&
              smtp::kNotifyDelay == 8);

const std::string kOldFormat =
    "Ferry-Spool: 1\n"
    "Queue-Id: 1J0TT776IJT0000\n"
    "Arrival: 1795430789\n"
    "Client: 127.0.0.1\n"
    "Sender: \n"
    "Recipient: alice@example.test\n"
    "Recipient: bob@example.test\n"
    "\n"
    "Subject: hi\r\n";

Envelope dsn_envelope() {
    Envelope e;
    e.queue_id = "1J0TT776IJT0000";
    e.arrival = 1795430789;
    e.client = "192.0.2.1";
    e.sender = "s\xC3\xA9nder@client.test";
    e.recipients = {"alice@example.test", "bob@example.test", "carol@example.test"};
    e.smtputf8 = true;
    e.body_8bit = true;
    e.ret = dsn::Ret::hdrs;
    e.envid = "abc+2Bdef";
    e.recipient_dsn = {{smtp::kNotifySuccess | smtp::kNotifyFailure, "rfc822;alice+40old@example.test"},
                       {},
                       {smtp::kNotifyNever, "utf-8;j\xC3\xB6rg@example.test"}};
    return e;
}

TEST(SpoolEnvelope, DsnFieldsAreWrittenAsOptionalLines) {
    EXPECT_EQ(serialize_envelope(dsn_envelope()),
              "Ferry-Spool: 1\n"
              "Queue-Id: 1J0TT776IJT0000\n"
              "Arrival: 1795430789\n"
              "Client: 192.0.2.1\n"
              "Sender: s\xC3\xA9nder@client.test\n"
              "Smtputf8: yes\n"
              "Body: 8BITMIME\n"
              "Ret: HDRS\n"
              "Envid: abc+2Bdef\n"
              "Recipient: alice@example.test\n"
              "Notify: SUCCESS,FAILURE\n"
              "Orcpt: rfc822;alice+40old@example.test\n"
              "Recipient: bob@example.test\n"
              "Recipient: carol@example.test\n"
              "Notify: NEVER\n"
              "Orcpt: utf-8;j\xC3\xB6rg@example.test\n"
              "\n");
}

TEST(SpoolEnvelope, RoundTrip) {
    const Envelope e = dsn_envelope();
    const std::string head = serialize_envelope(e);
    const auto parsed = parse_envelope(head + "content");
    ASSERT_TRUE(parsed);
    EXPECT_EQ(parsed->content_offset, head.size());
    const Envelope& p = parsed->envelope;
    EXPECT_EQ(p.queue_id, e.queue_id);
    EXPECT_EQ(p.arrival, e.arrival);
    EXPECT_EQ(p.client, e.client);
    EXPECT_EQ(p.sender, e.sender);
    EXPECT_EQ(p.recipients, e.recipients);
    EXPECT_TRUE(p.smtputf8);
    EXPECT_TRUE(p.body_8bit);
    EXPECT_EQ(p.ret, dsn::Ret::hdrs);
    EXPECT_EQ(p.envid, "abc+2Bdef");
    EXPECT_EQ(p.recipient_dsn, e.recipient_dsn);
    EXPECT_EQ(serialize_envelope(p), head);
}

TEST(SpoolEnvelope, OldFormatStillParses) {
    const auto parsed = parse_envelope(kOldFormat);
    ASSERT_TRUE(parsed);
    const Envelope& e = parsed->envelope;
    EXPECT_EQ(e.recipients, (std::vector<std::string>{"alice@example.test", "bob@example.test"}));
    EXPECT_EQ(e.sender, "");
    EXPECT_FALSE(e.smtputf8);
    EXPECT_FALSE(e.body_8bit);
    EXPECT_EQ(e.ret, dsn::Ret::unspecified);
    EXPECT_EQ(e.envid, "");
    EXPECT_EQ(e.recipient_dsn, std::vector<RecipientDsn>(2));   // always as many as recipients
    EXPECT_EQ(kOldFormat.substr(parsed->content_offset), "Subject: hi\r\n");
    EXPECT_EQ(serialize_envelope(e) + "Subject: hi\r\n", kOldFormat);
}

TEST(SpoolEnvelope, MissingDsnEntriesWriteNothing) {
    Envelope e = dsn_envelope();
    e.recipient_dsn.resize(1);
    const auto parsed = parse_envelope(serialize_envelope(e));
    ASSERT_TRUE(parsed);
    ASSERT_EQ(parsed->envelope.recipient_dsn.size(), 3u);
    EXPECT_EQ(parsed->envelope.recipient_dsn[0], e.recipient_dsn[0]);
    EXPECT_EQ(parsed->envelope.recipient_dsn[2], RecipientDsn{});
}

TEST(SpoolEnvelope, MalformedDsnLinesAreRejected) {
    const std::string start = "Ferry-Spool: 1\nQueue-Id: Q\nArrival: 1\nClient: c\nSender: \n";
    const std::string rcpt = "Recipient: a@b.test\n";
    ASSERT_TRUE(parse_envelope(start + rcpt + "Notify: DELAY\nOrcpt: rfc822;x@y\n\n"));
    for (const std::string& bad : {
             "Notify: SUCCESS\n" + rcpt,              // before any recipient
             "Orcpt: rfc822;x@y\n" + rcpt,
             rcpt + "Notify: SUCCESS\nNotify: DELAY\n",   // twice for one recipient
             rcpt + "Orcpt: rfc822;x@y\nOrcpt: rfc822;x@y\n",
             rcpt + "Notify: success\n",              // only the canonical text we write
             rcpt + "Notify: FAILURE,SUCCESS\n",
             rcpt + "Notify: NEVER,SUCCESS\n",
             rcpt + "Notify: \n",
             rcpt + "Orcpt: \n",
             rcpt + "Orcpt: rfc822;a b\n",
             rcpt + "Smtputf8: no\n",
             rcpt + "Smtputf8: yes\nSmtputf8: yes\n",
             rcpt + "Body: 7BIT\n",
             rcpt + "Ret: FULL\nRet: HDRS\n",
             rcpt + "Ret: full\n",
             rcpt + "Envid: \n",
             rcpt + "Envid: a\tb\n",
             rcpt + "Envid: a\nEnvid: b\n",
         })
        EXPECT_FALSE(parse_envelope(start + bad + "\n")) << bad;
}

}  // namespace
}  // namespace ferry::spool
