// Rate limits by the generic cell rate algorithm (GCRA): per key (a client network, an account), at most `count`
// events per `per`, allowed as a burst of `count` and then one every per/count. One timestamp per key (the
// theoretical arrival time), so memory is a few dozen octets per key, and the table is bounded: a flood of new
// keys (1M distinct IPv6 /64s) first drops keys whose limit has fully recovered (they are equal to unknown
// keys), then the keys closest to recovery. Pure: the caller gives the time.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace ferry::policy {

struct Rate {
    std::uint64_t count = 0;           // 0: no limit
    std::chrono::milliseconds per{0};
    bool enabled() const { return count > 0 && per.count() > 0; }
    bool operator==(const Rate&) const = default;
};

class RateLimiter {
public:
    using Clock = std::chrono::steady_clock;

    struct Result {
        bool allowed = true;
        std::chrono::milliseconds retry_after{0};   // refused: when `cost` more would be allowed
    };

    RateLimiter(Rate rate, std::size_t max_keys);   // max_keys 0 counts as 1
    ~RateLimiter();
    RateLimiter(RateLimiter&&) noexcept;
    RateLimiter& operator=(RateLimiter&&) noexcept;
    void set_rate(Rate rate, std::size_t max_keys);   // on reload; known keys keep their state

    // Takes `cost` events for `key` at `now`: allowed (and counted) or refused (and not counted). A disabled
    // rate allows everything and keeps nothing.
    Result take(std::string_view key, Clock::time_point now, std::uint32_t cost = 1);

    std::size_t size() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace ferry::policy
