// The flood figure of issue 18: memory and time of the policy tables when 1M distinct IPv6 /64s arrive (as from a
// botnet, or one attacker with a /32 of its own). Built on demand (`cmake --build build --target policy_flood`),
// run by bench/run, which puts its table in the bench report.
//
// Each scenario runs in a child process (fork) so its RSS growth is its own: a scenario after another would reuse
// the pages the allocator kept from the first. Time is simulated (1 µs per client) so no key recovers during the
// flood and every eviction is the nth_element kind: the worst case. Output: one TSV line per scenario.
#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "policy/greylist.hpp"
#include "policy/rate_limit.hpp"

namespace {

using namespace std::chrono_literals;
using ferry::policy::Rate;
using ferry::policy::RateLimiter;

constexpr std::size_t kClients = 1'000'000;

// The key IpNetwork::key() makes for 2001:db8:XXXX:XXXX::/64: the 16 octets of the masked address, then the
// prefix length. i goes into octets 4-7, so every client is a distinct /64 of 2001:db8::/32.
std::string network_key(std::uint32_t i) {
    std::string key(17, '\0');
    key[0] = '\x20'; key[1] = '\x01'; key[2] = '\x0d'; key[3] = '\xb8';
    for (int b = 0; b < 4; ++b) key[static_cast<std::size_t>(4 + b)] = static_cast<char>(i >> (24 - 8 * b));
    key[16] = 64;
    return key;
}

long rss_kib() {
    std::ifstream statm("/proc/self/statm");
    long size = 0, resident = 0;
    statm >> size >> resident;
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

std::size_t heap_bytes() { return mallinfo2().uordblks; }   // bytes the allocator has handed out

struct Figures {
    std::size_t kept = 0;
    long rss_growth_kib = 0;
    std::size_t heap_growth = 0;
    double ns_per_op = 0;
    double max_us = 0;              // the slowest call (an eviction, a rehash, or the scheduler)
    std::size_t evictions = 0;      // calls that evicted
    double eviction_median_us = 0;
    double eviction_max_us = 0;
};

// `call(i)` is the i-th client's call; `size()` the table's size. A call after which the table is smaller than
// before has evicted: those calls are timed apart, as they are the session's longest waits.
template <typename Call, typename Size>
Figures measure(Call&& call, Size&& size) {
    std::vector<float> evictions;
    evictions.reserve(kClients / 1000);   // before the "before" figures, like the keys the caller made
    const long rss0 = rss_kib();
    const std::size_t heap0 = heap_bytes();
    std::chrono::steady_clock::duration slowest{0};
    const auto start = std::chrono::steady_clock::now();
    auto last = start;
    for (std::size_t i = 0; i < kClients; ++i) {
        const std::size_t before = size();
        call(i);
        const auto t = std::chrono::steady_clock::now();
        slowest = std::max(slowest, t - last);
        if (size() < before) evictions.push_back(std::chrono::duration<float, std::micro>(t - last).count());
        last = t;
    }
    Figures f;
    f.kept = size();
    f.rss_growth_kib = rss_kib() - rss0;
    f.heap_growth = heap_bytes() - heap0;
    f.ns_per_op = std::chrono::duration<double, std::nano>(last - start).count() / kClients;
    f.max_us = std::chrono::duration<double, std::micro>(slowest).count();
    f.evictions = evictions.size();
    if (!evictions.empty()) {
        std::sort(evictions.begin(), evictions.end());
        f.eviction_median_us = evictions[evictions.size() / 2];
        f.eviction_max_us = evictions.back();
    }
    return f;
}

void print(const char* table, std::size_t bound, const Figures& f) {
    std::printf("%s\t%zu\t%zu\t%zu\t%ld\t%zu\t%.0f\t%.0f\t%.0f\t%zu\t%.0f\t%.0f\n", table, kClients, bound,
                f.kept, f.rss_growth_kib, f.heap_growth,
                f.kept ? static_cast<double>(f.heap_growth) / static_cast<double>(f.kept) : 0.0, f.ns_per_op,
                f.max_us, f.evictions, f.eviction_median_us, f.eviction_max_us);
    std::fflush(stdout);
}

void rate_limit_flood(std::size_t max_keys) {
    std::vector<std::string> keys;
    keys.reserve(kClients);
    for (std::uint32_t i = 0; i < kClients; ++i) keys.push_back(network_key(i));
    RateLimiter limiter(Rate{10, 1min}, max_keys);   // e.g. connections = "10/1m"
    const auto t0 = RateLimiter::Clock::now();
    std::size_t refused = 0;
    const Figures f = measure(
        [&](std::size_t i) { refused += !limiter.take(keys[i], t0 + std::chrono::microseconds(i)).allowed; },
        [&] { return limiter.size(); });
    if (refused != 0) std::fprintf(stderr, "policy_flood: %zu new clients refused?\n", refused);
    print("rate_limit", max_keys, f);
}

void greylist_flood() {
    // 1M distinct triplets from 1M /64s (one sender and recipient each), default settings (max_entries 100000).
    std::vector<std::string> sources, senders;
    sources.reserve(kClients);
    senders.reserve(kClients);
    for (std::uint32_t i = 0; i < kClients; ++i) {
        char source[48];   // as network_of(...).to_string() gives it
        std::snprintf(source, sizeof source, "2001:db8:%x:%x::/64", i >> 16, i & 0xffff);
        sources.push_back(source);
        senders.push_back("bounce-" + std::to_string(i) + "@spam.example");
    }
    ferry::policy::Greylist greylist;
    const auto t0 = std::chrono::system_clock::now();
    const Figures f = measure(
        [&](std::size_t i) {
            greylist.check(sources[i], senders[i], "user@example.test", t0 + std::chrono::microseconds(i));
        },
        [&] { return greylist.size(); });
    print("greylist", ferry::policy::GreylistSettings{}.max_entries, f);
}

template <typename Scenario>
void in_child(Scenario&& scenario) {
    const pid_t pid = fork();
    if (pid < 0) { std::perror("fork"); std::exit(1); }
    if (pid == 0) { scenario(); std::_Exit(0); }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        std::fprintf(stderr, "policy_flood: a scenario failed\n");
        std::exit(1);
    }
}

}  // namespace

int main() {
    std::printf("table\tclients\tbound\tkept\trss_growth_kib\theap_growth_bytes\tbytes_per_entry\tns_per_op\t"
                "max_us\tevictions\teviction_median_us\teviction_max_us\n");
    std::fflush(stdout);
    in_child([] { rate_limit_flood(100'000); });      // [rate_limit] max_clients default
    in_child([] { rate_limit_flood(1'000'000); });    // room for every client: what the bound saves
    in_child([] { greylist_flood(); });               // [greylist] max_entries default
    return 0;
}
