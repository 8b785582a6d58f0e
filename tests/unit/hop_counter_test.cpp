#include "mime/hop_counter.hpp"

#include <gtest/gtest.h>

using ferry::mime::HopCounter;

namespace {

std::string message(int hops) {
    std::string m;
    for (int i = 0; i < hops; ++i) m += (i % 2 ? "received: from a by b; x\r\n" : "Received: from a\r\n\tby b; x\r\n");
    return m + "Subject: hi\r\n\r\nReceived: in the body does not count\r\n";
}

TEST(HopCounter, CountsReceivedFieldsOfTheHeaderOnly) {
    HopCounter c;
    c.feed(message(3));
    EXPECT_EQ(c.hops(), 3u);
    EXPECT_TRUE(c.header_ended());
}

TEST(HopCounter, SameCountWhateverTheBlockBoundaries) {
    const std::string m = message(7);
    for (std::size_t step = 1; step <= 11; ++step) {
        HopCounter c;
        for (std::size_t i = 0; i < m.size(); i += step) c.feed(std::string_view(m).substr(i, step));
        EXPECT_EQ(c.hops(), 7u) << "step " << step;
        EXPECT_TRUE(c.header_ended());
    }
}

TEST(HopCounter, LookalikesAndContinuationsDoNotCount) {
    HopCounter c;
    c.feed("X-Received: a\r\n Received: folded\r\nReceived-SPF: pass\r\nReceive: x\r\nA: b\r\n\r\n");
    EXPECT_EQ(c.hops(), 0u);
    EXPECT_TRUE(c.header_ended());
}

TEST(HopCounter, BareLfEndsTheHeaderToo) {
    HopCounter c;
    c.feed("Received: a\n\nReceived: b\n");
    EXPECT_EQ(c.hops(), 1u);
    EXPECT_TRUE(c.header_ended());
}

}  // namespace
