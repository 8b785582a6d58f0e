#include "policy/rate_limit.hpp"

#include <algorithm>
#include <cstring>
#include <functional>
#include <tuple>
#include <unordered_map>
#include <vector>

namespace ferry::policy {

namespace {

// Exact arithmetic: the emission interval T = per/count is rarely a whole number of nanoseconds (7/1h is
// 514285714285.714... ns), and rounding it would let the limit drift by count × the rounding error per `per`.
// So times are counted in "scaled" units of 1/count ns: T is then exactly per_ns units and the burst tolerance
// (per) is per_ns × count units. 128-bit intermediates: per_ns × count overflows 64 bits for large rates, and
// steady-clock nanoseconds × count does too.
using Wide = __int128;

std::int64_t to_ns(RateLimiter::Clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

std::int64_t per_ns(const Rate& rate) { return std::chrono::nanoseconds(rate.per).count(); }

Wide ceil_div(Wide a, Wide b) { return a <= 0 ? 0 : (a + b - 1) / b; }   // for a >= 0, b > 0; 0 below

std::chrono::milliseconds scaled_to_ms(Wide scaled, std::uint64_t count) {
    // Rounded up, so a client that waits exactly retry_after is allowed.
    const Wide ns = ceil_div(scaled, static_cast<Wide>(count));
    return std::chrono::milliseconds(static_cast<std::int64_t>(ceil_div(ns, 1'000'000)));
}

// A key's theoretical arrival time (TAT): whole nanoseconds and the fraction of a nanosecond in 1/count units,
// so that it survives a change of `count` (set_rate rounds the fraction up then).
struct Tat {
    std::int64_t ns = 0;
    std::uint64_t frac = 0;   // < count

    Wide scaled(std::uint64_t count) const { return static_cast<Wide>(ns) * static_cast<Wide>(count) + frac; }
    static Tat from_scaled(Wide s, std::uint64_t count) {
        const Wide c = static_cast<Wide>(count);
        Wide q = s / c, r = s % c;
        if (r < 0) { q -= 1; r += c; }   // floor division for times before the clock's epoch
        return Tat{static_cast<std::int64_t>(q), static_cast<std::uint64_t>(r)};
    }
};

// A key's octets, inline up to 24 (a client network key is 17, many account names fit too), on the heap
// beyond. std::string keeps only 15 inline, so every network key would cost a second allocation (32 octets with
// malloc's overhead): this saves about a third of the memory per key (bench/micro/policy_flood.cpp). Keys live in
// the map's nodes, which never move, so a Key is built once in place and never copied or moved.
class Key {
public:
    explicit Key(std::string_view octets) : size_(octets.size()) {
        char* to = octets.size() <= kInline ? inline_ : (heap_ = new char[octets.size()]);
        std::memcpy(to, octets.data(), octets.size());
    }
    ~Key() {
        if (size_ > kInline) delete[] heap_;
    }
    Key(const Key&) = delete;
    Key& operator=(const Key&) = delete;

    std::string_view view() const { return {size_ <= kInline ? inline_ : heap_, size_}; }
    friend bool operator==(const Key& a, std::string_view b) { return a.view() == b; }
    friend bool operator==(const Key& a, const Key& b) { return a.view() == b.view(); }

private:
    static constexpr std::size_t kInline = 24;
    std::size_t size_;
    union {
        char inline_[kInline];
        char* heap_;
    };
};

// Keys are looked up by string_view without building a Key for every take(). noexcept, so the map does not
// store each hash beside its key (another 8 octets a key); recomputing a 17-octet hash costs little.
struct KeyHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
    std::size_t operator()(const Key& k) const noexcept { return (*this)(k.view()); }
};

}  // namespace

struct RateLimiter::Impl {
    Rate rate;
    std::size_t max_keys = 0;
    std::unordered_map<Key, Tat, KeyHash, std::equal_to<>> table;

    // Makes room for one more key. First the keys whose TAT is at or before `now`: their limit has fully
    // recovered, so forgetting them changes nothing (a recovered key and an unknown key get the same answer).
    // If the table is still above 90% of max_keys, the keys with the smallest TAT go until it is at 90%. That
    // order is the safe one: a key with TAT t has spent (t - now)/T events of its burst, and forgetting it gives
    // it back exactly that many; the smallest TAT is the key closest to recovery, the one that gains least, while
    // the keys a limit is currently holding back (TAT near now + per) are the last to go. Going down to 90%,
    // not to max_keys - 1, makes the O(n) pass happen at most once every max_keys/10 insertions: amortized O(1).
    void make_room(std::int64_t now_ns) {
        const std::uint64_t count = rate.count;
        const Wide now_s = static_cast<Wide>(now_ns) * static_cast<Wide>(count);
        const std::size_t target = std::min(max_keys - 1, max_keys - max_keys / 10);   // max_keys >= 1
        // One pass drops the recovered keys and collects the TATs of the others, for trim_to's cut.
        std::vector<std::int64_t> tats;
        tats.reserve(table.size());
        std::erase_if(table, [&](const auto& entry) {
            if (entry.second.scaled(count) <= now_s) return true;
            tats.push_back(entry.second.ns);
            return false;
        });
        trim_to(target, std::move(tats));
    }

    // Drops the entries with the smallest TAT until `target` are left (ties broken arbitrarily). `tats`: the
    // TATs (ns) of every entry, in any order.
    void trim_to(std::size_t target, std::vector<std::int64_t> tats) {
        if (table.size() <= target) return;
        const std::size_t drop = table.size() - target;
        std::nth_element(tats.begin(), tats.begin() + static_cast<std::ptrdiff_t>(drop - 1), tats.end());
        const std::int64_t cut = tats[drop - 1];   // the drop-th smallest TAT: everything below it goes
        std::size_t at_cut = drop - static_cast<std::size_t>(std::count_if(
                                        tats.begin(), tats.end(), [&](std::int64_t t) { return t < cut; }));
        std::erase_if(table, [&](const auto& entry) {
            if (entry.second.ns < cut) return true;
            if (entry.second.ns == cut && at_cut > 0) { --at_cut; return true; }
            return false;
        });
    }

    void trim_to(std::size_t target) {
        std::vector<std::int64_t> tats;
        tats.reserve(table.size());
        for (const auto& [key, tat] : table) tats.push_back(tat.ns);
        trim_to(target, std::move(tats));
    }
};

// max_keys 0 counts as 1 (as the greylist's max_entries): a table that could keep no key would turn the limit off.
RateLimiter::RateLimiter(Rate rate, std::size_t max_keys) : impl_(std::make_unique<Impl>()) {
    impl_->rate = rate;
    impl_->max_keys = std::max<std::size_t>(max_keys, 1);
}

RateLimiter::~RateLimiter() = default;
RateLimiter::RateLimiter(RateLimiter&&) noexcept = default;
RateLimiter& RateLimiter::operator=(RateLimiter&&) noexcept = default;

void RateLimiter::set_rate(Rate rate, std::size_t max_keys) {
    Impl& m = *impl_;
    if (!rate.enabled()) {
        // Nothing is counted while disabled, so the state would only hold memory (and be stale by re-enabling).
        m.table.clear();
    } else if (m.rate.enabled() && rate.count != m.rate.count) {
        // The fractions are in 1/count ns: round them up to whole nanoseconds (strict by less than 1 ns).
        for (auto& [key, tat] : m.table) {
            if (tat.frac > 0) { tat.ns += 1; tat.frac = 0; }
        }
    }
    m.rate = rate;
    m.max_keys = std::max<std::size_t>(max_keys, 1);
    if (m.table.size() > m.max_keys) m.trim_to(m.max_keys);
}

RateLimiter::Result RateLimiter::take(std::string_view key, Clock::time_point now, std::uint32_t cost) {
    Impl& m = *impl_;
    if (!m.rate.enabled() || cost == 0) return {};   // nothing to count: allowed, and no key stored for it
    const std::uint64_t count = m.rate.count;
    const Wide c = static_cast<Wide>(count);
    const Wide per_s = static_cast<Wide>(per_ns(m.rate));   // T in scaled units
    const Wide tolerance = per_s * c;                          // `per` in scaled units: the burst of `count`
    const std::int64_t now_ns = to_ns(now);
    const Wide now_s = static_cast<Wide>(now_ns) * c;

    auto it = m.table.find(key);
    const Wide tat = it == m.table.end() ? now_s : std::max(it->second.scaled(count), now_s);
    const Wide new_tat = tat + static_cast<Wide>(cost) * per_s;

    if (new_tat - now_s > tolerance) {
        // Refused, nothing stored. retry_after: when new_tat - later <= tolerance. A cost larger than `count`
        // never fits the burst and is never allowed; it gets the time until the key has fully recovered (its
        // whole burst back), the most that waiting can give.
        const Wide wait = cost > count ? tat - now_s : new_tat - tolerance - now_s;
        return Result{false, scaled_to_ms(wait, count)};
    }
    if (it != m.table.end()) {
        it->second = Tat::from_scaled(new_tat, count);
    } else {
        if (m.table.size() >= m.max_keys) m.make_room(now_ns);
        m.table.emplace(std::piecewise_construct, std::forward_as_tuple(key),
                                          std::forward_as_tuple(Tat::from_scaled(new_tat, count)));
    }
    return {};
}

std::size_t RateLimiter::size() const { return impl_->table.size(); }

}  // namespace ferry::policy
