// DeliveryQueue with held (quarantined) messages: a real spool, the real router and Maildir delivery, no outbound.
// A message whose addendum says "Hold" is parked, not delivered, retried, bounced or expired, until released.
#include "queue/delivery_queue.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <future>
#include <optional>
#include <sstream>
#include <thread>

#include "delivery/router.hpp"
#include "policy/local_directory.hpp"
#include "queue/delivery_record.hpp"
#include "spool/spool.hpp"
#include "temp_dir_test.hpp"

namespace fs = std::filesystem;
using namespace ferry;
using queue::DeliveryQueue;

namespace {

constexpr auto kPatience = std::chrono::seconds(10);

class DeliveryQueueHold : public ferry::testing::TempDirTest {
protected:
    void SetUp() override {
        TempDirTest::SetUp();
        spool_ = std::make_unique<spool::Spool>(dir_ / "spool", config::SyncMode::filesystem);
        directory_ = std::make_unique<policy::LocalDirectory>(std::vector<std::string>{"example.test"},
                                                              std::map<std::string, std::vector<std::string>>{},
                                                              dir_ / "accounts");
        router_ = std::make_unique<delivery::Router>(*directory_);
    }

    std::unique_ptr<DeliveryQueue> make_queue(bool start = true) {
        queue::QueueSettings settings;
        settings.mail_root = dir_ / "mail";
        settings.hostname = "mx.example.test";
        settings.workers = 1;
        settings.min_retry = std::chrono::seconds(1);
        settings.max_retry = std::chrono::seconds(1);
        settings.lifetime = std::chrono::seconds(1);   // every message here arrived long ago: held ones must not expire
        auto q = std::make_unique<DeliveryQueue>(*spool_, *router_, nullptr, settings);
        if (start) q->start();
        return q;
    }

    // Commits a message for postmaster@example.test (a local mailbox without an account), held when `hold` is set
    // (as the intake stores a filter's quarantine: through hold_reason(), "" becoming "quarantined").
    void commit(const std::string& id, const std::string& subject, std::optional<std::string> hold) {
        spool::Envelope e;
        e.queue_id = id;
        e.arrival = 1700000000;   // years ago: far beyond the lifetime
        e.client = "192.0.2.1";
        e.sender = "sender@example.test";
        e.recipients = {"postmaster@example.test"};
        e.addendum = true;
        spool::Committer committer(*spool_);
        auto opened = spool::MessageWriter::open(*spool_, e);
        ASSERT_FALSE(opened.error);
        ASSERT_FALSE(opened.writer->append("Subject: " + subject + "\r\n\r\nbody\r\n"));
        spool::Addendum a;
        if (hold) a.hold = spool::hold_reason(*hold);
        opened.writer->set_addendum(a);
        std::promise<std::error_code> done;
        committer.submit(*opened.writer, [&](std::error_code ec) { done.set_value(ec); });
        ASSERT_FALSE(done.get_future().get());
    }

    fs::path inbox() const { return dir_ / "mail" / "example.test" / "postmaster" / "new"; }

    // The subjects of the copies in the inbox.
    std::vector<std::string> delivered() const {
        std::vector<std::string> out;
        std::error_code ec;
        for (const auto& entry : fs::directory_iterator(inbox(), ec)) {
            std::ifstream in(entry.path(), std::ios::binary);
            std::stringstream s;
            s << in.rdbuf();
            const std::string text = s.str();
            const auto at = text.find("Subject: ");
            out.push_back(at == std::string::npos ? "?" : text.substr(at + 9, text.find('\r', at) - at - 9));
        }
        std::sort(out.begin(), out.end());
        return out;
    }

    // Files in queue/ other than the spool files and records of `ids` (a DSN bounce would be one).
    std::size_t other_spool_files(const std::set<std::string>& ids) const {
        std::size_t n = 0;
        for (const auto& entry : fs::directory_iterator(spool_->queue_dir())) {
            std::string name = entry.path().filename().string();
            if (name.ends_with(".done")) name.resize(name.size() - 5);
            if (!ids.count(name)) ++n;
        }
        return n;
    }

    static bool eventually(const std::function<bool()>& condition) {
        const auto until = std::chrono::steady_clock::now() + kPatience;
        while (std::chrono::steady_clock::now() < until) {
            if (condition()) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        return condition();
    }

    static bool parked(DeliveryQueue& q, const std::string& id) {
        const auto m = q.find(id);
        return m && m->held && q.held_count() >= 1;
    }

    std::unique_ptr<spool::Spool> spool_;
    std::unique_ptr<policy::LocalDirectory> directory_;
    std::unique_ptr<delivery::Router> router_;
};

const std::string kHeld = "AAAAAAAAAAAAAH1";
const std::string kFree = "AAAAAAAAAAAAAF1";

TEST_F(DeliveryQueueHold, HeldMessageIsParkedUntilReleasedThenDelivered) {
    commit(kHeld, "held one", "milter clamav: Eicar-Signature");
    commit(kFree, "free one", std::nullopt);
    auto q = make_queue();
    q->submit(kHeld);
    q->submit(kFree);

    ASSERT_TRUE(eventually([&] { return !fs::exists(spool_->queue_file(kFree)) && parked(*q, kHeld); }));
    EXPECT_EQ(delivered(), std::vector<std::string>{"free one"});
    const auto m = q->find(kHeld);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->hold_reason, "milter clamav: Eicar-Signature");
    ASSERT_EQ(m->recipients.size(), 1u);
    EXPECT_EQ(m->recipients[0].attempts, 0);   // parking is not an attempt
    EXPECT_EQ(q->list().size(), 1u);
    EXPECT_EQ(q->held_count(), 1u);

    // A flush does not release it; nothing retries, bounces or expires it (the lifetime is long past).
    EXPECT_EQ(q->flush(""), 0u);
    EXPECT_EQ(q->flush(kHeld), 0u);
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));   // beyond min_retry and the lifetime
    EXPECT_TRUE(parked(*q, kHeld));
    EXPECT_TRUE(fs::exists(spool_->queue_file(kHeld)));
    EXPECT_EQ(delivered(), std::vector<std::string>{"free one"});
    EXPECT_EQ(other_spool_files({kHeld}), 0u);   // no bounce
    EXPECT_FALSE(queue::read_delivery_record(queue::delivery_record_path(spool_->queue_file(kHeld))).released);

    EXPECT_EQ(q->release("AAAAAAAAAAAAAX9"), DeliveryQueue::Release::not_found);
    EXPECT_EQ(q->release(kHeld), DeliveryQueue::Release::released);
    ASSERT_TRUE(eventually([&] { return !fs::exists(spool_->queue_file(kHeld)); }));
    EXPECT_EQ(delivered(), (std::vector<std::string>{"free one", "held one"}));
    EXPECT_FALSE(fs::exists(queue::delivery_record_path(spool_->queue_file(kHeld))));   // finished: record gone
    EXPECT_EQ(q->release(kHeld), DeliveryQueue::Release::not_found);
    EXPECT_EQ(q->held_count(), 0u);
}

// The hold is in the spool file and the release in the delivery record: both survive a restart.
TEST_F(DeliveryQueueHold, HoldSurvivesRestartAndARecordedReleaseDelivers) {
    commit(kHeld, "held one", "spam");
    {
        auto q = make_queue();
        q->submit(kHeld, true);
        ASSERT_TRUE(eventually([&] { return parked(*q, kHeld); }));
    }
    {
        auto q = make_queue();
        q->submit(kHeld, true);   // recovery at start-up
        ASSERT_TRUE(eventually([&] { return parked(*q, kHeld); }));
        EXPECT_EQ(q->find(kHeld)->hold_reason, "spam");
        EXPECT_TRUE(delivered().empty());
    }
    // A release recorded just before a crash: the next start delivers it.
    queue::DeliveryRecordUpdate release;
    release.released = std::time(nullptr);
    ASSERT_FALSE(queue::append_delivery_record(queue::delivery_record_path(spool_->queue_file(kHeld)), release));
    auto q = make_queue();
    q->submit(kHeld, true);
    ASSERT_TRUE(eventually([&] { return !fs::exists(spool_->queue_file(kHeld)); }));
    EXPECT_EQ(delivered(), std::vector<std::string>{"held one"});
}

TEST_F(DeliveryQueueHold, ReleaseOfAMessageNotHeldIsRefusedAndDeleteRemovesAHeldOne) {
    commit(kHeld, "held one", "x");
    auto q = make_queue();
    q->submit(kHeld);
    ASSERT_TRUE(eventually([&] { return parked(*q, kHeld); }));
    EXPECT_TRUE(q->remove(kHeld));
    EXPECT_FALSE(fs::exists(spool_->queue_file(kHeld)));
    EXPECT_EQ(q->held_count(), 0u);
    EXPECT_EQ(q->release(kHeld), DeliveryQueue::Release::not_found);
    EXPECT_TRUE(delivered().empty());

    // A message that is not held, still in the queue: its remote recipient is deferred (no outbound configured).
    spool::Envelope e;
    e.queue_id = kFree;
    e.arrival = std::time(nullptr);
    e.client = "192.0.2.1";
    e.sender = "sender@example.test";
    e.recipients = {"someone@remote.test"};
    {
        spool::Committer committer(*spool_);
        auto opened = spool::MessageWriter::open(*spool_, e);
        ASSERT_FALSE(opened.error);
        ASSERT_FALSE(opened.writer->append("Subject: x\r\n\r\nbody\r\n"));
        std::promise<std::error_code> done;
        committer.submit(*opened.writer, [&](std::error_code ec) { done.set_value(ec); });
        ASSERT_FALSE(done.get_future().get());
    }
    q->submit(kFree);
    ASSERT_TRUE(eventually([&] {
        const auto m = q->find(kFree);
        return m && !m->recipients.empty() && m->recipients[0].attempts >= 1;
    }));
    EXPECT_EQ(q->release(kFree), DeliveryQueue::Release::not_held);
    EXPECT_FALSE(q->find(kFree)->held);
}

// Released before a worker has parked it (just taken in, or just recovered): the file says held, the release is
// recorded, and the worker delivers it without parking it.
TEST_F(DeliveryQueueHold, ReleaseBeforeTheWorkerParksItDelivers) {
    commit(kHeld, "held one", "early");
    auto q = make_queue(false);   // no worker yet: the message waits in the due list
    q->submit(kHeld, true);
    const auto before = q->find(kHeld);
    ASSERT_TRUE(before);
    EXPECT_TRUE(before->held);   // shown as the file says
    EXPECT_EQ(before->hold_reason, "early");
    EXPECT_EQ(q->held_count(), 0u);   // not parked yet
    EXPECT_EQ(q->release(kHeld), DeliveryQueue::Release::released);
    EXPECT_FALSE(q->find(kHeld)->held);
    EXPECT_EQ(q->release(kHeld), DeliveryQueue::Release::not_held);   // released already
    EXPECT_TRUE(queue::read_delivery_record(queue::delivery_record_path(spool_->queue_file(kHeld))).released);
    q->start();
    ASSERT_TRUE(eventually([&] { return !fs::exists(spool_->queue_file(kHeld)); }));
    EXPECT_EQ(delivered(), std::vector<std::string>{"held one"});
}

TEST_F(DeliveryQueueHold, ReleaseAllReleasesEveryParkedMessage) {
    commit(kHeld, "held one", "a");
    commit("AAAAAAAAAAAAAH2", "held two", "");
    auto q = make_queue();
    q->submit(kHeld);
    q->submit("AAAAAAAAAAAAAH2");
    ASSERT_TRUE(eventually([&] { return q->held_count() == 2; }));
    EXPECT_EQ(q->find("AAAAAAAAAAAAAH2")->hold_reason, "quarantined");
    EXPECT_TRUE(delivered().empty());
    EXPECT_EQ(q->release_all(), 2u);
    ASSERT_TRUE(eventually([&] { return delivered().size() == 2; }));
    EXPECT_EQ(delivered(), (std::vector<std::string>{"held one", "held two"}));
    EXPECT_EQ(q->release_all(), 0u);
}

}  // namespace
