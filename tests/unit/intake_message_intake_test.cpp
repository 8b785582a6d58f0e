#include "intake/message_intake.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <future>

#include "intake/message_envelope.hpp"
#include "temp_dir_test.hpp"

namespace fs = std::filesystem;
using namespace ferry;
using intake::MessageIntake;
using intake::Outcome;

namespace {

constexpr std::string_view kReceived = "Received: from client.test by mx.example.test; Thu, 1 Jan 2026 00:00:00 +0000\r\n";

// Alice may send as alice@ only.
class AliceOnly : public smtp::MailPolicy {
public:
    smtp::RecipientVerdict check_recipient(const smtp::Mailbox&, const std::string&) override {
        return smtp::RecipientVerdict::accept;
    }
    bool sender_allowed(const smtp::Path& sender, const std::string&) override {
        return sender.mailbox && sender.mailbox->local == "alice";
    }
};

class IntakeMessageIntake : public ferry::testing::TempDirTest {
protected:
    void SetUp() override {
        TempDirTest::SetUp();
        spool_ = std::make_unique<spool::Spool>(dir_ / "spool", config::SyncMode::filesystem);
    }

    static spool::Envelope envelope(const std::string& id) {
        return intake::make_envelope(spool::PickupEnvelope{"bob@elsewhere.test", {"alice@example.test"}}, "",
                                     intake::ArrivalFacts{id, 1795430789, "192.0.2.1", "example.test"});
    }

    static intake::IntakeSettings settings() {
        intake::IntakeSettings s;
        s.log_label = "client=[192.0.2.1]:4711";
        s.authserv_id = "mx.example.test";
        return s;
    }

    // Feeds `content` one octet at a time (the stages must not depend on how the door cuts it), then runs the
    // end of data, the seal and the commit as SmtpConnection does.
    Outcome receive(MessageIntake& in, const std::string& id, std::string_view content) {
        EXPECT_FALSE(in.begin(*spool_, envelope(id), kReceived));
        for (std::size_t i = 0; i < content.size(); ++i) in.feed(content.substr(i, 1));
        if (auto o = in.end_of_data()) return *o;
        if (auto o = in.seal(1795430789)) return *o;
        return commit(in);
    }

    Outcome commit(MessageIntake& in) {
        spool::Committer committer(*spool_);
        std::promise<std::error_code> done;
        in.submit(committer, [&](std::error_code ec) { done.set_value(ec); });
        return in.committed(done.get_future().get());
    }

    // The stored content (after the envelope, before the addendum) and the addendum of a committed message.
    std::pair<std::string, spool::Addendum> stored(const std::string& id) {
        const int fd = ::open(spool_->queue_file(id).c_str(), O_RDONLY);
        EXPECT_GE(fd, 0);
        const auto m = spool::read_stored_message(fd);
        EXPECT_TRUE(m);
        std::string content(m ? m->content_length : 0, '\0');
        if (m) {
            EXPECT_EQ(::pread(fd, content.data(), content.size(), m->content_offset),
                      static_cast<ssize_t>(content.size()));
        }
        ::close(fd);
        return {content, m ? m->addendum : spool::Addendum{}};
    }

    std::unique_ptr<spool::Spool> spool_;
};

TEST_F(IntakeMessageIntake, CommitsTheContentWithoutForgedResults) {
    MessageIntake in(settings());
    const Outcome o = receive(in, "1J0TT776IJT0001",
                              "From: bob@elsewhere.test\r\n"
                              "Authentication-Results: mx.example.test; spf=pass\r\n"
                              "Authentication-Results: other.test; spf=fail\r\n"
                              "Subject: hi\r\n\r\nbody\r\n.. stays\r\n");
    ASSERT_EQ(o.kind, Outcome::Kind::committed);
    EXPECT_EQ(o.queue_id, "1J0TT776IJT0001");
    const auto [content, addendum] = stored("1J0TT776IJT0001");
    EXPECT_EQ(content, std::string(kReceived) +
                           "From: bob@elsewhere.test\r\n"
                           "Authentication-Results: other.test; spf=fail\r\n"
                           "Subject: hi\r\n\r\nbody\r\n.. stays\r\n");
    EXPECT_EQ(addendum.headers, "");
}

TEST_F(IntakeMessageIntake, HeaderWithoutBodyIsStoredAsItCame) {
    MessageIntake in(settings());
    ASSERT_EQ(receive(in, "1J0TT776IJT0002", "Subject: only a header\r\n").kind, Outcome::Kind::committed);
    EXPECT_EQ(stored("1J0TT776IJT0002").first, std::string(kReceived) + "Subject: only a header\r\n");
}

TEST_F(IntakeMessageIntake, RefusesTwoFromFields) {
    MessageIntake in(settings());
    const Outcome o = receive(in, "1J0TT776IJT0003", "From: a@example.test\r\nfrom: b@example.test\r\n\r\nx\r\n");
    ASSERT_EQ(o.kind, Outcome::Kind::refused);
    EXPECT_EQ(o.reply.code, 550);
    EXPECT_EQ(o.reply.enhanced, "5.6.0");
    EXPECT_EQ(o.reason, "2 From: header fields, RFC 5322 3.6 allows one");
}

TEST_F(IntakeMessageIntake, RefusesAMailLoop) {
    std::string content;
    for (int i = 0; i < 51; ++i) content += "Received: from hop" + std::to_string(i) + ".test\r\n";
    content += "\r\nbody\r\n";
    MessageIntake in(settings());
    const Outcome o = receive(in, "1J0TT776IJT0004", content);
    ASSERT_EQ(o.kind, Outcome::Kind::refused);
    EXPECT_EQ(o.reply.code, 554);
    EXPECT_EQ(o.reply.enhanced, "5.4.6");
    EXPECT_EQ(in.hops(), 51u);
}

TEST_F(IntakeMessageIntake, RefusesAnOversizedHeaderAndKeepsNothing) {
    MessageIntake in(settings());
    const std::string line = "X-Filler: " + std::string(900, 'x') + "\r\n";
    std::string header;
    while (header.size() <= mime::kMaxHeaderSection) header += line;
    ASSERT_TRUE(!in.begin(*spool_, envelope("1J0TT776IJT0005"), kReceived));
    in.feed(header);
    EXPECT_FALSE(fs::exists(spool_->queue_file("1J0TT776IJT0005")));   // the space is given back at once
    in.feed("\r\nbody\r\n");
    const auto o = in.end_of_data();
    ASSERT_TRUE(o);
    EXPECT_EQ(o->kind, Outcome::Kind::refused);
    EXPECT_EQ(o->reply.code, 552);
    EXPECT_EQ(o->reply.enhanced, "5.3.4");
}

TEST_F(IntakeMessageIntake, EveryFromAddressMustBeTheUsers) {
    AliceOnly policy;
    intake::IntakeSettings s = settings();
    s.authenticated_user = "alice@example.test";
    s.from_owner = &policy;
    {
        MessageIntake in(s);
        const Outcome o = receive(in, "1J0TT776IJT0006", "From: alice@example.test, mallory@example.test\r\n\r\nx\r\n");
        ASSERT_EQ(o.kind, Outcome::Kind::refused);
        EXPECT_EQ(o.reply.code, 553);
        EXPECT_EQ(o.reply.enhanced, "5.7.1");
        EXPECT_NE(o.reason.find("mallory@example.test"), std::string::npos);
    }
    {
        MessageIntake in(s);
        EXPECT_EQ(receive(in, "1J0TT776IJT0007", "From: \"A\" <alice@example.test>\r\n\r\nx\r\n").kind,
                  Outcome::Kind::committed);
    }
    {
        MessageIntake in(s);   // no From: claims nothing
        EXPECT_EQ(receive(in, "1J0TT776IJT0008", "Subject: x\r\n\r\nx\r\n").kind, Outcome::Kind::committed);
    }
}

TEST_F(IntakeMessageIntake, InboundVerdictRefusesOrGoesIntoTheAddendum) {
    mailauth::InboundVerdict reject;
    reject.dmarc.disposition = mailauth::Disposition::reject;
    reject.dmarc.policy_domain = "reject.example.org";
    {
        MessageIntake in(settings());
        ASSERT_FALSE(in.begin(*spool_, envelope("1J0TT776IJT0009"), kReceived));
        in.feed("From: a@reject.example.org\r\n\r\nx\r\n");
        ASSERT_FALSE(in.end_of_data());
        const auto o = in.apply_inbound_verdict(reject);
        ASSERT_TRUE(o);
        EXPECT_EQ(o->kind, Outcome::Kind::refused);
        EXPECT_EQ(o->reply.code, 550);
        EXPECT_EQ(o->reply.enhanced, "5.7.1");
    }
    EXPECT_FALSE(fs::exists(spool_->queue_file("1J0TT776IJT0009")));   // refused: nothing left behind

    mailauth::InboundVerdict quarantine;
    quarantine.dmarc.disposition = mailauth::Disposition::quarantine;
    quarantine.field = "Authentication-Results: mx.example.test; dmarc=fail\r\n";
    MessageIntake in(settings());
    ASSERT_FALSE(in.begin(*spool_, envelope("1J0TT776IJT000A"), kReceived));
    in.feed("From: a@quarantine.example.org\r\n\r\nx\r\n");
    ASSERT_FALSE(in.end_of_data());
    ASSERT_FALSE(in.apply_inbound_verdict(quarantine));
    ASSERT_FALSE(in.seal(1795430789));
    ASSERT_EQ(commit(in).kind, Outcome::Kind::committed);
    const auto addendum = stored("1J0TT776IJT000A").second;
    EXPECT_EQ(addendum.headers, quarantine.field);
    EXPECT_EQ(addendum.folder, "Junk");
}

TEST_F(IntakeMessageIntake, ASpoolThatCannotTakeTheFileIsAFailureValue) {
    fs::remove_all(spool_->queue_dir());
    MessageIntake in(settings());
    EXPECT_EQ(in.begin(*spool_, envelope("1J0TT776IJT000B"), kReceived), std::errc::no_such_file_or_directory);
    in.feed("Subject: x\r\n\r\nbody\r\n");   // taken and dropped
    const auto o = in.end_of_data();
    ASSERT_TRUE(o);
    EXPECT_EQ(o->kind, Outcome::Kind::failed);
    EXPECT_EQ(o->error, std::errc::no_such_file_or_directory);
}

}  // namespace
