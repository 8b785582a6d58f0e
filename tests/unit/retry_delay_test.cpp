#include "queue/delivery_queue.hpp"

#include <gtest/gtest.h>

using namespace std::chrono_literals;
using ferry::queue::retry_delay;

namespace {

TEST(RetryDelay, DoublesFromMinToMax) {
    EXPECT_EQ(retry_delay(1, 300s, 3600s, 0), 300s);
    EXPECT_EQ(retry_delay(2, 300s, 3600s, 0), 600s);
    EXPECT_EQ(retry_delay(3, 300s, 3600s, 0), 1200s);
    EXPECT_EQ(retry_delay(4, 300s, 3600s, 0), 2400s);
    EXPECT_EQ(retry_delay(5, 300s, 3600s, 0), 3600s);
    EXPECT_EQ(retry_delay(500, 300s, 3600s, 0), 3600s);
}

TEST(RetryDelay, SpreadAddsUpToAQuarterButNeverPassesMax) {
    EXPECT_EQ(retry_delay(1, 300s, 3600s, 1), 375s);
    EXPECT_EQ(retry_delay(2, 300s, 3600s, 0.5), 675s);
    EXPECT_EQ(retry_delay(5, 300s, 3600s, 1), 3600s);
    EXPECT_EQ(retry_delay(1, 1s, 60s, 0.5), 1125ms);   // sub-second spread for short test settings
    EXPECT_EQ(retry_delay(1, 300s, 3600s, 7), 375s);   // clamped
}

}  // namespace
