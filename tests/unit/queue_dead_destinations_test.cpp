#include "queue/dead_destinations.hpp"

#include <gtest/gtest.h>

using namespace std::chrono_literals;
using namespace ferry;
using namespace ferry::queue;
using delivery::DeliveryResult;

namespace {

DeliveryResult reply(DeliveryResult::Kind kind, std::string status, std::string text) {
    DeliveryResult r{kind, std::move(status), std::move(text), true, "mx.remote.test", {}, false};
    return r;
}
const DeliveryResult kRefused = delivery::temporary_result("4.4.1", "connect to mx[127.0.0.1]:25: Connection refused");
const DeliveryResult kLost = delivery::temporary_result("4.4.2", "connection to mx[127.0.0.1]:25 lost: End of file");

TEST(DeadDestinations, WhatCountsAsTheDestinationFailing) {
    EXPECT_TRUE(is_destination_failure(kRefused));
    EXPECT_TRUE(is_destination_failure(kLost));
    EXPECT_TRUE(is_destination_failure(delivery::temporary_result("4.4.3", "MX lookup timed out")));
    // The server answered: its 421 is about this session, not an unreachable host.
    EXPECT_FALSE(is_destination_failure(reply(DeliveryResult::Kind::temporary, "4.4.2", "421 4.4.2 closing")));
    EXPECT_FALSE(is_destination_failure(reply(DeliveryResult::Kind::temporary, "4.2.2", "452 mailbox full")));
    EXPECT_FALSE(is_destination_failure(delivery::temporary_result("4.7.5", "TLS handshake failed")));
    EXPECT_FALSE(is_destination_failure(delivery::temporary_result("4.3.0", "remote delivery is not configured")));
    EXPECT_FALSE(is_destination_failure(delivery::permanent_result("5.4.4", "no route")));
}

TEST(DeadDestinations, AFailedJobHoldsItsDomainUntilTheHoldEnds) {
    DeadDestinations dead;
    const auto t0 = DeadDestinations::Clock::time_point{} + 1000h;
    EXPECT_TRUE(dead.record("remote.test", {kRefused, kRefused}, t0, 300s));
    const auto found = dead.find("remote.test", t0 + 299s);
    ASSERT_TRUE(found.has_value());
    EXPECT_EQ(found->until, t0 + 300s);
    EXPECT_EQ(found->reason, kRefused.diagnostic);
    EXPECT_FALSE(dead.find("other.test", t0).has_value());
    // Another failure while held extends the hold, without counting as newly dead.
    EXPECT_FALSE(dead.record("remote.test", {kLost}, t0 + 100s, 300s));
    EXPECT_TRUE(dead.find("remote.test", t0 + 399s).has_value());
    EXPECT_FALSE(dead.find("remote.test", t0 + 400s).has_value());
    EXPECT_EQ(dead.size(), 0u);   // the expired mark is gone
}

TEST(DeadDestinations, AnAnswerOrADeliveryClearsTheMark) {
    DeadDestinations dead;
    const auto t0 = DeadDestinations::Clock::time_point{} + 1000h;
    dead.record("a.test", {kRefused}, t0, 300s);
    dead.record("b.test", {kRefused}, t0, 300s);
    dead.record("a.test", {reply(DeliveryResult::Kind::sent, "2.0.0", "250 ok")}, t0 + 1s, 300s);
    dead.record("b.test", {kRefused, reply(DeliveryResult::Kind::temporary, "4.2.2", "452 full")}, t0 + 1s, 300s);
    EXPECT_FALSE(dead.find("a.test", t0 + 2s));
    EXPECT_FALSE(dead.find("b.test", t0 + 2s));
}

TEST(DeadDestinations, FailuresOfOurOwnThatAreNotTheDestinationLeaveItAsItWas) {
    DeadDestinations dead;
    const auto t0 = DeadDestinations::Clock::time_point{} + 1000h;
    EXPECT_FALSE(dead.record("a.test", {delivery::temporary_result("4.7.5", "TLS")}, t0, 300s));
    EXPECT_FALSE(dead.find("a.test", t0));
    dead.record("b.test", {kRefused}, t0, 300s);
    dead.record("b.test", {delivery::temporary_result("4.7.5", "TLS")}, t0, 300s);
    EXPECT_TRUE(dead.find("b.test", t0 + 1s));
    EXPECT_FALSE(dead.record("c.test", {}, t0, 300s));
    dead.clear();   // ferry queue flush
    EXPECT_FALSE(dead.find("b.test", t0 + 1s));
}

}  // namespace
