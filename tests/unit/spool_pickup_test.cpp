#include "spool/pickup.hpp"

#include <gtest/gtest.h>

using namespace ferry::spool;

TEST(SpoolPickup, RoundTripAndRefusals) {
    const PickupEnvelope e{"alice@example.test", {"bob@example.test", "carol@example.org"}};
    const std::string head = serialize_pickup(e);
    const auto p = parse_pickup(head + "Subject: x\r\n\r\nbody\r\n");
    ASSERT_TRUE(p);
    EXPECT_EQ(p->envelope, e);
    EXPECT_EQ(p->message_offset, head.size());
    EXPECT_TRUE(parse_pickup(serialize_pickup({"", {"a@b.test"}})));   // the null sender
    EXPECT_FALSE(parse_pickup(serialize_pickup({"a@b.test", {}})));    // no recipient
    EXPECT_FALSE(parse_pickup("Ferry-Pickup: 1\nSender: a@b\nRecipient: c@d\n"));   // no empty line
    EXPECT_FALSE(parse_pickup("Ferry-Pickup: 2\nSender: a@b\nRecipient: c@d\n\n"));
    EXPECT_FALSE(parse_pickup("Ferry-Pickup: 1\nSender: a@b\nSender: c@d\nRecipient: c@d\n\n"));
    EXPECT_FALSE(parse_pickup("Ferry-Pickup: 1\nSender: a@b\nRecipient: c@d\nQueue-Id: X\n\n"));
    // The sender comes first, as serialize_pickup writes it (found by fuzz_pickup's round trip).
    EXPECT_FALSE(parse_pickup("Ferry-Pickup: 1\nRecipient: c@d\nSender: a@b\n\n"));
}

TEST(SpoolPickup, OnlyFinishedNames) {
    EXPECT_TRUE(is_pickup_name("1795430789.4711.0123abcd"));
    EXPECT_FALSE(is_pickup_name(".tmp.4711.0123abcd"));
    EXPECT_FALSE(is_pickup_name("1795430789.4711"));
    EXPECT_FALSE(is_pickup_name("1795430789.47x1.0123abcd"));
    EXPECT_FALSE(is_pickup_name("1795430789.4711.0123ABCD"));
    EXPECT_FALSE(is_pickup_name("failed"));
}
