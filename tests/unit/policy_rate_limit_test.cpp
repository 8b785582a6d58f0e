#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "policy/rate_limit.hpp"

namespace ferry::policy {
namespace {

using namespace std::chrono_literals;
using Clock = RateLimiter::Clock;

const Clock::time_point t0 = Clock::time_point{} + 1000h;

std::size_t allowed_in_a_row(RateLimiter& limiter, std::string_view key, Clock::time_point now) {
    std::size_t n = 0;
    while (limiter.take(key, now).allowed && n < 1000) ++n;
    return n;
}

TEST(RateLimit, BurstOfCountThenRefused) {
    RateLimiter limiter(Rate{5, 1min}, 100);
    for (int i = 0; i < 5; ++i) EXPECT_TRUE(limiter.take("a", t0).allowed) << i;
    const auto refused = limiter.take("a", t0);
    EXPECT_FALSE(refused.allowed);
    EXPECT_EQ(refused.retry_after, 12s);   // T = 1 min / 5
    EXPECT_FALSE(limiter.take("a", t0 + 11s).allowed);   // refusals are not counted, but do not help either
    EXPECT_EQ(limiter.size(), 1u);
}

TEST(RateLimit, OneMoreAfterEachEmissionInterval) {
    RateLimiter limiter(Rate{5, 1min}, 100);
    EXPECT_EQ(allowed_in_a_row(limiter, "a", t0), 5u);
    EXPECT_FALSE(limiter.take("a", t0 + 12s - 1ms).allowed);
    EXPECT_TRUE(limiter.take("a", t0 + 12s).allowed);
    EXPECT_FALSE(limiter.take("a", t0 + 12s).allowed);
    // After a whole `per` of silence the full burst is back, and no more than that.
    EXPECT_EQ(allowed_in_a_row(limiter, "a", t0 + 12s + 1min), 5u);
}

TEST(RateLimit, RetryAfterSaysWhenTheNextOneIsAllowed) {
    RateLimiter limiter(Rate{5, 1min}, 100);
    EXPECT_EQ(allowed_in_a_row(limiter, "a", t0), 5u);
    EXPECT_EQ(limiter.take("a", t0 + 5s).retry_after, 7s);

    // 7/1h: T = 514285.714... ms, rounded up, so waiting exactly retry_after is enough and a ms less is not.
    RateLimiter hourly(Rate{7, 1h}, 100);
    EXPECT_EQ(allowed_in_a_row(hourly, "b", t0), 7u);
    const auto refused = hourly.take("b", t0);
    EXPECT_FALSE(refused.allowed);
    EXPECT_EQ(refused.retry_after, 514286ms);
    EXPECT_FALSE(hourly.take("b", t0 + refused.retry_after - 1ms).allowed);
    EXPECT_TRUE(hourly.take("b", t0 + refused.retry_after).allowed);
}

TEST(RateLimit, CostTakesSeveralEventsAtOnce) {
    RateLimiter limiter(Rate{10, 10s}, 100);
    EXPECT_TRUE(limiter.take("a", t0, 4).allowed);
    EXPECT_TRUE(limiter.take("a", t0, 4).allowed);
    const auto refused = limiter.take("a", t0, 4);   // 12 > 10: refused as a whole, nothing counted
    EXPECT_FALSE(refused.allowed);
    EXPECT_EQ(refused.retry_after, 2s);
    EXPECT_TRUE(limiter.take("a", t0, 2).allowed);   // exactly the 2 left
    EXPECT_FALSE(limiter.take("a", t0, 1).allowed);
    EXPECT_TRUE(limiter.take("a", t0, 0).allowed);   // nothing taken: allowed even when spent, and not stored
    EXPECT_TRUE(limiter.take("b", t0, 0).allowed);
    EXPECT_EQ(limiter.size(), 1u);
}

TEST(RateLimit, CostAboveCountIsNeverAllowed) {
    RateLimiter limiter(Rate{10, 10s}, 100);
    const auto fresh = limiter.take("a", t0, 11);
    EXPECT_FALSE(fresh.allowed);
    EXPECT_EQ(fresh.retry_after, 0ms);   // nothing to wait for: waiting never makes it fit
    EXPECT_EQ(limiter.size(), 0u);       // a refusal stores nothing
    EXPECT_FALSE(limiter.take("a", t0 + 24h, 11).allowed);
    EXPECT_TRUE(limiter.take("a", t0 + 24h, 10).allowed);
    // On a key that has spent part of its burst: the time until all of it is back.
    EXPECT_EQ(limiter.take("a", t0 + 24h, 11).retry_after, 10s);
}

TEST(RateLimit, DisabledRateAllowsEverythingAndKeepsNothing) {
    for (const Rate rate : {Rate{}, Rate{5, 0ms}, Rate{0, 1min}}) {
        RateLimiter limiter(rate, 100);
        for (int i = 0; i < 1000; ++i) EXPECT_TRUE(limiter.take("k" + std::to_string(i % 7), t0, 50).allowed);
        EXPECT_EQ(limiter.size(), 0u);
    }
}

TEST(RateLimit, KeysAreCountedSeparately) {
    RateLimiter limiter(Rate{2, 1min}, 100);
    EXPECT_EQ(allowed_in_a_row(limiter, "a", t0), 2u);
    EXPECT_EQ(allowed_in_a_row(limiter, "b", t0), 2u);
    // Keys are octets, not text: a 17-octet network key with a NUL in it is its own key.
    const std::string net1("\0\0\0\0\0\0\0\0\0\0\xff\xff\xc0\0\x02\x01\x20", 17);
    const std::string net2("\0\0\0\0\0\0\0\0\0\0\xff\xff\xc0\0\x02\x02\x20", 17);
    EXPECT_EQ(allowed_in_a_row(limiter, net1, t0), 2u);
    EXPECT_EQ(allowed_in_a_row(limiter, net2, t0), 2u);
    // Short keys are stored inline, long ones (account names) on the heap: both are whole keys.
    const std::string long1 = std::string(40, 'u') + "@example.test", long2 = std::string(40, 'u') + "@example.tesT";
    EXPECT_EQ(allowed_in_a_row(limiter, long1, t0), 2u);
    EXPECT_EQ(allowed_in_a_row(limiter, long2, t0), 2u);
    EXPECT_EQ(allowed_in_a_row(limiter, std::string(24, 'k'), t0), 2u);
    EXPECT_EQ(allowed_in_a_row(limiter, std::string(25, 'k'), t0), 2u);
    EXPECT_EQ(allowed_in_a_row(limiter, "", t0), 2u);
    EXPECT_FALSE(limiter.take(long1, t0).allowed);
    EXPECT_FALSE(limiter.take(std::string(25, 'k'), t0).allowed);
    EXPECT_EQ(limiter.size(), 9u);
}

TEST(RateLimit, SetRateKeepsTheKnownKeys) {
    RateLimiter limiter(Rate{5, 1min}, 100);
    EXPECT_EQ(allowed_in_a_row(limiter, "a", t0), 5u);
    limiter.set_rate(Rate{10, 1min}, 100);   // T = 6 s now; "a" has spent a whole minute of it
    EXPECT_EQ(limiter.size(), 1u);
    const auto refused = limiter.take("a", t0);
    EXPECT_FALSE(refused.allowed);
    EXPECT_EQ(refused.retry_after, 6s);
    EXPECT_TRUE(limiter.take("a", t0 + 6s).allowed);
    EXPECT_EQ(allowed_in_a_row(limiter, "b", t0), 10u);   // an unknown key gets the new burst

    // A smaller bound on reload trims at once; disabling forgets everything.
    limiter.set_rate(Rate{10, 1min}, 1);
    EXPECT_EQ(limiter.size(), 1u);
    limiter.set_rate(Rate{}, 100);
    EXPECT_EQ(limiter.size(), 0u);
}

TEST(RateLimit, TableStaysBoundedUnderAFloodOfNewKeys) {
    const std::size_t max_keys = 1000;
    RateLimiter limiter(Rate{3, 1min}, max_keys);
    for (std::size_t i = 0; i < 2 * max_keys; ++i) {
        EXPECT_TRUE(limiter.take("flood" + std::to_string(i), t0 + std::chrono::milliseconds(i)).allowed);
        ASSERT_LE(limiter.size(), max_keys) << i;
    }
    EXPECT_GE(limiter.size(), max_keys - max_keys / 10);   // trimmed to 90%, not emptied
}

TEST(RateLimit, ALimitedKeySurvivesAFloodOfNewKeysAfterIt) {
    // The promise: the keys with the smallest TAT (closest to recovery) are dropped first. The limited key has
    // spent its whole burst (TAT t0 + 1 min); each flood key spent one event (TAT = its time + 20 s, all before
    // t0 + 22 s here), so the flood evicts its own keys, never the limited one, though it is the oldest.
    const std::size_t max_keys = 1000;
    RateLimiter limiter(Rate{3, 1min}, max_keys);
    EXPECT_EQ(allowed_in_a_row(limiter, "limited", t0), 3u);
    for (std::size_t i = 0; i < 2 * max_keys; ++i) {
        limiter.take("flood" + std::to_string(i), t0 + std::chrono::milliseconds(i));
    }
    EXPECT_LE(limiter.size(), max_keys);
    const auto still = limiter.take("limited", t0 + 2s);
    EXPECT_FALSE(still.allowed);
    EXPECT_EQ(still.retry_after, 18s);   // its own state (T = 20 s from t0), not a fresh key's
}

TEST(RateLimit, ABoundOfZeroKeysStillLimits) {
    // max_keys 0 counts as 1, as the greylist's max_entries: the key last counted is kept.
    RateLimiter limiter(Rate{2, 1min}, 0);
    EXPECT_EQ(allowed_in_a_row(limiter, "a", t0), 2u);
    EXPECT_EQ(limiter.size(), 1u);
    EXPECT_EQ(allowed_in_a_row(limiter, "b", t0), 2u);   // "a" makes room for "b"
    EXPECT_EQ(limiter.size(), 1u);
    limiter.set_rate(Rate{2, 1min}, 0);
    EXPECT_FALSE(limiter.take("b", t0).allowed);
}

TEST(RateLimit, RecoveredKeysAreDroppedBeforeLimitedOnes) {
    // Keys whose limit has fully recovered (TAT <= now) are the same as unknown keys: they go first, so the
    // table can drop below 90% when many of them have recovered.
    const std::size_t max_keys = 100;
    RateLimiter limiter(Rate{2, 1min}, max_keys);
    for (std::size_t i = 0; i < max_keys - 1; ++i) limiter.take("old" + std::to_string(i), t0);
    EXPECT_EQ(allowed_in_a_row(limiter, "limited", t0 + 2min), 2u);   // the table is full now
    EXPECT_EQ(limiter.size(), max_keys);
    limiter.take("new", t0 + 2min);   // the 99 "old" keys have recovered: all of them go
    EXPECT_EQ(limiter.size(), 2u);
    EXPECT_FALSE(limiter.take("limited", t0 + 2min).allowed);
}

TEST(RateLimit, ExactRatesDoNotDrift) {
    // 3/1s: T = 333333333.33... ns. Tried every millisecond for 10 s: the burst of 3, then exactly 30 more (the
    // 30th at 10 s sharp). Rounding T up to whole nanoseconds would lose the last one.
    RateLimiter limiter(Rate{3, 1s}, 100);
    std::size_t allowed = 0;
    for (int ms = 0; ms <= 10000; ++ms) allowed += limiter.take("a", t0 + std::chrono::milliseconds(ms)).allowed;
    EXPECT_EQ(allowed, 3u + 30u);

    // To the nanosecond: after the burst, the k-th event is allowed at ceil(k × T) and not a nanosecond before
    // (rounding T down would allow the 30th 10 ns early).
    RateLimiter exact(Rate{3, 1s}, 100);
    EXPECT_EQ(allowed_in_a_row(exact, "a", t0), 3u);
    for (std::int64_t k = 1; k <= 30; ++k) {
        const auto at = t0 + std::chrono::nanoseconds((k * 1'000'000'000 + 2) / 3);
        EXPECT_FALSE(exact.take("a", at - 1ns).allowed) << k;
        EXPECT_TRUE(exact.take("a", at).allowed) << k;
    }

    // 7/1h tried every second for a week: 7 + 7 × 24 × 7.
    RateLimiter hourly(Rate{7, 1h}, 100);
    allowed = 0;
    for (int s = 0; s <= 7 * 24 * 3600; ++s) allowed += hourly.take("a", t0 + std::chrono::seconds(s)).allowed;
    EXPECT_EQ(allowed, 7u + 7u * 24u * 7u);
}

TEST(RateLimit, AgreesWithATokenBucketOnRandomTraffic) {
    // GCRA is a token bucket seen from the other side: `count` tokens, refilled at count per `per`, `cost` of them
    // per event. The bucket here counts tokens exactly (in 1/per_ns of a token) and is checked against the
    // limiter on random traffic: same verdicts, same retry_after, rates whose T is not a whole number of ns.
    std::uint64_t seed = 12345;
    auto next = [&](std::uint64_t n) {   // a small LCG: the same sequence on every run
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        return (seed >> 33) % n;
    };
    for (const Rate rate : {Rate{3, 1s}, Rate{7, 1h}, Rate{10, 1min}, Rate{1, 250ms}}) {
        RateLimiter limiter(rate, 100);
        const __int128 per = std::chrono::nanoseconds(rate.per).count();
        const __int128 full = per * rate.count;
        std::vector<__int128> tokens(3, full);   // per key, in 1/per_ns tokens
        std::vector<std::int64_t> last(3, 0);    // ns since t0 of the key's last look
        std::int64_t now = 0;
        int refusals = 0;
        for (int i = 0; i < 3000; ++i) {
            // 0 to 2/3 T, to the nanosecond, over 3 keys, 1 to 3 events each: about twice the rate per key
            now += static_cast<std::int64_t>(next(2001) * static_cast<std::uint64_t>(per / rate.count) / 3000 +
                                             next(1'000'000));
            const std::size_t k = next(3);
            const auto cost = static_cast<std::uint32_t>(1 + next(std::min<std::uint64_t>(rate.count, 3)));
            tokens[k] = std::min(full, tokens[k] + static_cast<__int128>(now - last[k]) * rate.count);
            last[k] = now;
            const __int128 need = static_cast<__int128>(cost) * per;
            const bool allowed = tokens[k] >= need;
            std::chrono::milliseconds retry{0};
            if (allowed) {
                tokens[k] -= need;
            } else {
                const __int128 ns = (need - tokens[k] + rate.count - 1) / rate.count;
                retry = std::chrono::milliseconds(static_cast<std::int64_t>((ns + 999'999) / 1'000'000));
            }
            const auto got = limiter.take("key" + std::to_string(k), t0 + std::chrono::nanoseconds(now), cost);
            ASSERT_EQ(got.allowed, allowed) << "rate " << rate.count << " step " << i;
            ASSERT_EQ(got.retry_after, retry) << "rate " << rate.count << " step " << i;
            refusals += !allowed;
        }
        EXPECT_GT(refusals, 300) << rate.count;    // the traffic is near the limit: both verdicts are common
        EXPECT_LT(refusals, 2700) << rate.count;
    }
}

TEST(RateLimit, LargeRatesDoNotOverflow) {
    // per × count in nanoseconds is far beyond 64 bits here.
    RateLimiter limiter(Rate{4'000'000'000ULL, 24h}, 100);
    EXPECT_TRUE(limiter.take("a", t0, 4'000'000'000U).allowed);
    const auto refused = limiter.take("a", t0);
    EXPECT_FALSE(refused.allowed);
    EXPECT_EQ(refused.retry_after, 1ms);   // T = 21.6 µs, rounded up
    EXPECT_TRUE(limiter.take("a", t0 + 1ms).allowed);
}

}  // namespace
}  // namespace ferry::policy
