// config::parse_config on arbitrary text. A ConfigError is the expected answer to bad input; any other exception
// escapes and libFuzzer reports it. A Config that loads must hold what the rest of Ferry assumes of it.
#include <arpa/inet.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "config/config.hpp"
#include "smtp/address.hpp"
#include "fuzz_check.hpp"

using namespace ferry;

namespace {

bool no_nul(std::string_view s) { return s.find('\0') == std::string_view::npos; }

// The whole string is an IP address (inet_pton reads up to the first NUL only).
bool is_exact_ip(const std::string& host) {
    unsigned char buf[16];
    return no_nul(host) && (inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1);
}

void check_config(const config::Config& cfg) {
    FUZZ_CHECK(!cfg.listeners.empty());
    for (const config::Listener& l : cfg.listeners) FUZZ_CHECK(is_exact_ip(l.host));
    FUZZ_CHECK(cfg.data_dir.is_absolute());
    // Paths and names go to open(2), getpwnam(3) and the resolver as C strings.
    FUZZ_CHECK(no_nul(cfg.data_dir.native()));
    FUZZ_CHECK(no_nul(cfg.user));
    FUZZ_CHECK(no_nul(cfg.hostname));
    if (cfg.tls) FUZZ_CHECK(no_nul(cfg.tls->certificate.native()) && no_nul(cfg.tls->private_key.native()));
    if (cfg.dns.resolver) FUZZ_CHECK(no_nul(*cfg.dns.resolver));
    FUZZ_CHECK(no_nul(cfg.outbound.relay_host));
    for (const std::string& d : cfg.local_domains) {
        FUZZ_CHECK(smtp::domain_error(d).empty());
        FUZZ_CHECK(d == config::ascii_lower(d));
    }
    for (const auto& [alias, targets] : cfg.aliases) {
        FUZZ_CHECK(smtp::address_error(alias).empty());
        FUZZ_CHECK(alias == config::ascii_lower(alias));
        FUZZ_CHECK(!targets.empty());
        for (const std::string& t : targets) FUZZ_CHECK(smtp::address_error(t).empty());
    }
    const config::Limits& l = cfg.limits;
    FUZZ_CHECK(l.command_line_length >= 512 && l.text_line_length >= 1000);   // RFC 5321 4.5.3.1.4/6 minimums
    FUZZ_CHECK(l.message_size > 0 && l.recipients > 0 && l.connections > 0 && l.connections_per_ip > 0 && l.errors > 0);
    FUZZ_CHECK(l.command_timeout.count() > 0 && l.data_timeout.count() > 0 && cfg.dns.timeout.count() > 0);
    FUZZ_CHECK(cfg.queue.min_retry.count() > 0 && cfg.queue.min_retry <= cfg.queue.max_retry);
    FUZZ_CHECK(cfg.queue.lifetime.count() > 0);
    FUZZ_CHECK(cfg.queue.delivery_workers >= 1 && cfg.queue.delivery_workers <= 64);
    FUZZ_CHECK(cfg.outbound.port >= 1);
    // Outbound binds its connections to these (asio::ip::make_address), each for its own family.
    if (!cfg.outbound.source_address.empty()) {
        in_addr a{};
        FUZZ_CHECK(no_nul(cfg.outbound.source_address) && inet_pton(AF_INET, cfg.outbound.source_address.c_str(), &a) == 1);
    }
    if (!cfg.outbound.source_address6.empty()) {
        in6_addr a{};
        FUZZ_CHECK(no_nul(cfg.outbound.source_address6) &&
                   inet_pton(AF_INET6, cfg.outbound.source_address6.c_str(), &a) == 1 && !IN6_IS_ADDR_V4MAPPED(&a));
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        check_config(config::parse_config(fuzz::as_text(data, size), "/nonexistent/fuzz.toml"));
    } catch (const config::ConfigError& e) {
        // One "FILE:LINE: KEY: WHY" line per problem, as config.hpp promises; what() is those lines.
        FUZZ_CHECK(!e.problems().empty());
        std::string joined;
        for (const std::string& line : e.problems()) {
            FUZZ_CHECK(line.rfind("/nonexistent/fuzz.toml", 0) == 0);
            FUZZ_CHECK(line.find('\n') == std::string::npos);
            joined += (joined.empty() ? "" : "\n") + line;
        }
        FUZZ_CHECK(joined == e.what());
    }
    return 0;
}
