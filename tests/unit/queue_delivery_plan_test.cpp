#include "queue/delivery_plan.hpp"

#include <gtest/gtest.h>

#include <map>

using namespace ferry;
using namespace ferry::queue;
using delivery::DeliveryResult;

namespace {

delivery::Destination local(const std::string& local, const std::string& domain) {
    return {delivery::Destination::Kind::mailbox, local + "@" + domain, local, domain};
}
delivery::Destination remote(const std::string& address) {
    const auto at = address.rfind('@');
    return {delivery::Destination::Kind::remote, address, address.substr(0, at), address.substr(at + 1)};
}

// A router as a table: example.test is local, "sales" an alias of alice and bob, nobody@ unknown.
delivery::Route table_route(const std::string& rcpt) {
    static const std::map<std::string, delivery::Route> table = {
        {"alice@example.test", {{local("alice", "example.test")}, {}, {}, false}},
        {"bob@example.test", {{local("bob", "example.test")}, {}, {}, false}},
        {"sales@example.test", {{local("alice", "example.test"), local("bob", "example.test"),
                                 remote("carol@partner.test")}, {}, {}, false}},
        {"dave@remote.test", {{remote("dave@remote.test")}, {}, {}, false}},
        {"erin@Remote.test", {{remote("erin@Remote.test")}, {}, {}, false}},
        {"frank@partner.test", {{remote("frank@partner.test")}, {}, {}, false}},
        {"nobody@example.test", {{}, "unknown user nobody@example.test", "5.1.1", true}},
        {"later@example.test", {{}, "directory unavailable", "4.3.0", false}},
    };
    return table.at(rcpt);
}

TEST(DeliveryPlan, LocalLegsRemoteJobsPerDomainAndUnroutableRecipients) {
    const std::vector<std::string> rcpts{"alice@example.test", "dave@remote.test", "frank@partner.test",
                                         "erin@Remote.test", "nobody@example.test", "later@example.test"};
    const DeliveryPlan plan = plan_delivery(rcpts, {}, table_route);
    ASSERT_EQ(plan.legs.size(), 6u);
    ASSERT_EQ(plan.local_legs, std::vector<std::size_t>{0});
    EXPECT_EQ(plan.legs[0].local, "alice");
    EXPECT_EQ(plan.legs[0].domain, "example.test");
    // One job per domain, domains compared without case (RFC 5321 2.4), legs in envelope order.
    ASSERT_EQ(plan.remote.size(), 2u);
    EXPECT_EQ(plan.remote[0].domain, "partner.test");
    EXPECT_EQ(plan.remote[0].legs, std::vector<std::size_t>{2});
    EXPECT_EQ(plan.remote[1].domain, "remote.test");
    EXPECT_EQ(plan.remote[1].legs, (std::vector<std::size_t>{1, 3}));
    EXPECT_EQ(plan.legs[3].destination, "erin@Remote.test");   // the address goes out as given
    // Routing failures are results at once, permanent or not as the router says.
    EXPECT_EQ(plan.legs[4].kind, Leg::Kind::unroutable);
    EXPECT_EQ(plan.legs[4].result.kind, DeliveryResult::Kind::permanent);
    EXPECT_EQ(plan.legs[4].result.status, "5.1.1");
    EXPECT_EQ(plan.legs[5].kind, Leg::Kind::unroutable);
    EXPECT_EQ(plan.legs[5].result.kind, DeliveryResult::Kind::temporary);
    EXPECT_EQ(plan.legs[5].recipient, 5u);
}

TEST(DeliveryPlan, OneCopyPerMailboxHoweverItIsReached) {
    const DeliveryPlan plan = plan_delivery({"sales@example.test", "alice@example.test"}, {}, table_route);
    ASSERT_EQ(plan.legs.size(), 3u);   // alice once, through sales, the first recipient reaching her
    EXPECT_EQ(plan.legs[0].destination, "alice@example.test");
    EXPECT_EQ(plan.legs[0].recipient, 0u);
    EXPECT_EQ(plan.legs[1].destination, "bob@example.test");
    EXPECT_EQ(plan.legs[2].destination, "carol@partner.test");
    EXPECT_EQ(plan.local_legs, (std::vector<std::size_t>{0, 1}));
    ASSERT_EQ(plan.remote.size(), 1u);
    EXPECT_EQ(plan.remote[0].legs, std::vector<std::size_t>{2});
}

TEST(DeliveryPlan, LegsAlreadyFinalAreSkippedAndNotRouted) {
    DeliveryRecord record;
    record.final = {"dave@remote.test", "sales@example.test>alice@example.test",
                    "sales@example.test>carol@partner.test"};
    std::vector<std::string> routed;
    const DeliveryPlan plan = plan_delivery({"sales@example.test", "dave@remote.test"}, record,
                                            [&](const std::string& rcpt) {
                                                routed.push_back(rcpt);
                                                return table_route(rcpt);
                                            });
    EXPECT_EQ(routed, std::vector<std::string>{"sales@example.test"});
    ASSERT_EQ(plan.legs.size(), 1u);   // only bob's copy is left
    EXPECT_EQ(plan.legs[0].destination, "bob@example.test");
    EXPECT_TRUE(plan.remote.empty());
}

TEST(DeliveryPlan, NothingLeftWhenEveryRecipientIsFinal) {
    DeliveryRecord record;
    record.final = {"alice@example.test"};
    const DeliveryPlan plan = plan_delivery({"alice@example.test"}, record, table_route);
    EXPECT_TRUE(plan.legs.empty());
    EXPECT_TRUE(plan.local_legs.empty());
    EXPECT_TRUE(plan.remote.empty());
}

}  // namespace
