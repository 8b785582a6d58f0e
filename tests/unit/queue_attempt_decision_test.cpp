#include "queue/attempt_decision.hpp"

#include <gtest/gtest.h>

using namespace std::chrono_literals;
using namespace ferry;
using namespace ferry::queue;
using delivery::DeliveryResult;

namespace {

constexpr std::time_t kArrival = 1795430000;
const RetryPolicy kPolicy{300s, 3600s, 5 * 24h};

Leg leg(std::size_t rcpt, std::string destination, DeliveryResult result, Leg::Kind kind = Leg::Kind::remote) {
    Leg l;
    l.recipient = rcpt;
    l.destination = std::move(destination);
    l.kind = kind;
    l.result = std::move(result);
    return l;
}

DeliveryResult sent() { return DeliveryResult{DeliveryResult::Kind::sent, "2.0.0", "250 ok", true, "mx", "mx", false}; }

TEST(AttemptDecision, EverythingDeliveredIsDone) {
    const std::vector<std::string> rcpts{"a@example.test", "b@remote.test"};
    const auto d = decide_attempt(rcpts, {}, {leg(0, "a@example.test", sent(), Leg::Kind::local), leg(1, "b@remote.test", sent())},
                                  kArrival, kArrival + 10, 0, kPolicy, 0);
    EXPECT_TRUE(d.done);
    EXPECT_EQ(d.legs[0].kind, LegVerdict::Kind::delivered);
    EXPECT_EQ(d.legs[1].kind, LegVerdict::Kind::delivered);
    EXPECT_EQ(d.final, (std::vector<std::string>{"a@example.test>a@example.test", "b@remote.test>b@remote.test",
                                                 "a@example.test", "b@remote.test"}));
    EXPECT_TRUE(d.deferred.empty());
}

TEST(AttemptDecision, PermanentFailureIsABounceLegAndFinal) {
    const std::vector<std::string> rcpts{"x@remote.test"};
    const auto d = decide_attempt(rcpts, {}, {leg(0, "x@remote.test", delivery::permanent_result("5.1.1", "no such user"))},
                                  kArrival, kArrival + 10, 0, kPolicy, 0);
    EXPECT_TRUE(d.done);
    ASSERT_EQ(d.legs.size(), 1u);
    EXPECT_EQ(d.legs[0].kind, LegVerdict::Kind::bounced);
    EXPECT_EQ(d.legs[0].result.status, "5.1.1");
    EXPECT_EQ(d.final, (std::vector<std::string>{"x@remote.test>x@remote.test", "x@remote.test"}));
}

TEST(AttemptDecision, MixedResultsDeferOnlyWhatFailedForNow) {
    // sales@ is an alias of alice (delivered) and carol (deferred); bob bounced; dave deferred.
    const std::vector<std::string> rcpts{"sales@example.test", "bob@remote.test", "dave@remote.test"};
    const std::vector<Leg> legs{leg(0, "alice@example.test", sent(), Leg::Kind::local),
                                leg(0, "carol@partner.test", delivery::temporary_result("4.4.1", "connect refused")),
                                leg(1, "bob@remote.test", delivery::permanent_result("5.1.1", "unknown")),
                                leg(2, "dave@remote.test", delivery::temporary_result("4.2.2", "mailbox\nfull"))};
    const auto d = decide_attempt(rcpts, {}, legs, kArrival, kArrival + 60, 0, kPolicy, 0);
    EXPECT_FALSE(d.done);
    EXPECT_EQ(d.legs[0].kind, LegVerdict::Kind::delivered);
    EXPECT_EQ(d.legs[1].kind, LegVerdict::Kind::deferred);
    EXPECT_EQ(d.legs[2].kind, LegVerdict::Kind::bounced);
    EXPECT_EQ(d.legs[3].kind, LegVerdict::Kind::deferred);
    // The copies that are final, and bob as a whole; sales and dave still have a leg open.
    EXPECT_EQ(d.final, (std::vector<std::string>{"sales@example.test>alice@example.test",
                                                 "bob@remote.test>bob@remote.test", "bob@remote.test"}));
    EXPECT_EQ(d.deferred, (std::map<std::string, std::string>{{"sales@example.test", "connect refused"},
                                                              {"dave@remote.test", "mailbox full"}}));
    EXPECT_EQ(d.attempt, 1);
    EXPECT_EQ(d.delay, 300s);
    EXPECT_EQ(d.next_attempt, kArrival + 60 + 300);
}

TEST(AttemptDecision, NextTimeFollowsTheBackoffAndTheRecordedAttempts) {
    const std::vector<std::string> rcpts{"d@remote.test"};
    const std::vector<Leg> legs{leg(0, "d@remote.test", delivery::temporary_result("4.4.1", "down"))};
    const std::time_t now = kArrival + 3600;
    auto d = decide_attempt(rcpts, {}, legs, kArrival, now, 2, kPolicy, 0);
    EXPECT_EQ(d.attempt, 3);
    EXPECT_EQ(d.delay, 1200s);   // 300 s doubled twice
    EXPECT_EQ(d.next_attempt, now + 1200);
    // After a restart the scheduler knows nothing; the record says 4 attempts were made.
    DeliveryRecord record;
    record.attempts = 4;
    d = decide_attempt(rcpts, record, legs, kArrival, now, 0, kPolicy, 0);
    EXPECT_EQ(d.attempt, 5);
    EXPECT_EQ(d.delay, 3600s);   // capped at max_retry
    // The spread adds up to a quarter, rounded up to whole seconds on the wall clock.
    d = decide_attempt(rcpts, {}, legs, kArrival, now, 0, kPolicy, 0.5);
    EXPECT_EQ(d.delay, 337500ms);
    EXPECT_EQ(d.next_attempt, now + 338);
}

TEST(AttemptDecision, TemporaryFailureAfterTheLifetimeBounces) {
    const std::vector<std::string> rcpts{"d@remote.test", "e@remote.test"};
    const std::vector<Leg> legs{leg(0, "d@remote.test", delivery::temporary_result("4.4.1", "connect refused")),
                                leg(1, "e@remote.test", sent())};
    const std::time_t now = kArrival + 5 * 24 * 3600 + 1;
    const auto d = decide_attempt(rcpts, {}, legs, kArrival, now, 40, kPolicy, 0);
    EXPECT_TRUE(d.expired);
    EXPECT_TRUE(d.done);
    EXPECT_EQ(d.legs[0].kind, LegVerdict::Kind::bounced);
    EXPECT_EQ(d.legs[0].result.kind, DeliveryResult::Kind::permanent);
    EXPECT_EQ(d.legs[0].result.status, "4.4.1");   // the last error's code stays in the report
    EXPECT_FALSE(d.legs[0].result.from_server);
    EXPECT_EQ(d.legs[0].result.diagnostic, "message expired after 432001s in the queue; last error: connect refused");
    EXPECT_EQ(d.legs[1].kind, LegVerdict::Kind::delivered);
    // One second younger: still deferred.
    EXPECT_FALSE(decide_attempt(rcpts, {}, legs, kArrival, now - 1, 40, kPolicy, 0).done);
}

TEST(AttemptDecision, RecipientsAlreadyFinalAreNotRecordedAgain) {
    DeliveryRecord record;
    record.final = {"a@example.test"};
    const std::vector<std::string> rcpts{"a@example.test", "b@remote.test"};
    const auto d = decide_attempt(rcpts, record, {leg(1, "b@remote.test", sent())}, kArrival, kArrival, 1, kPolicy, 0);
    EXPECT_TRUE(d.done);
    EXPECT_EQ(d.final, (std::vector<std::string>{"b@remote.test>b@remote.test", "b@remote.test"}));
}

TEST(AttemptDecision, BounceThatCouldNotBeStoredStaysOpen) {
    const std::vector<std::string> rcpts{"a@example.test", "b@remote.test"};
    const std::vector<Leg> legs{leg(0, "a@example.test", sent(), Leg::Kind::local),
                                leg(1, "b@remote.test", delivery::permanent_result("5.1.1", "unknown"))};
    auto d = decide_attempt(rcpts, {}, legs, kArrival, kArrival, 0, kPolicy, 0);
    ASSERT_TRUE(d.done);
    keep_bounces_open(d, rcpts, legs, {1});
    EXPECT_FALSE(d.done);
    EXPECT_EQ(d.final, (std::vector<std::string>{"a@example.test>a@example.test", "a@example.test"}));
    EXPECT_EQ(d.next_attempt, kArrival + 300);
}

}  // namespace
