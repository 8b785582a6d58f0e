// [policy], [[dnsbl]], [greylist] and [rate_limit]: what they read, their defaults, and what they refuse.
#include <gtest/gtest.h>

#include <string>

#include "config/config.hpp"

using namespace std::chrono_literals;
using ferry::config::Config;
using ferry::config::ConfigError;

namespace {

const std::string kListen = "[[listen]]\naddress = \"127.0.0.1:2525\"\n";

Config parse(const std::string& text) { return ferry::config::parse_config(kListen + text, ""); }

// The one problem `text` is refused for ("" when it loads).
std::string problem(const std::string& text) {
    try {
        parse(text);
    } catch (const ConfigError& e) {
        return e.problems().size() == 1 ? e.problems().front() : std::string(e.what());
    }
    return "";
}

ferry::policy::ResponseRange range(const char* text) { return *ferry::policy::parse_response_range(text); }

}  // namespace

TEST(ConfigPolicy, DefaultsChangeNothing) {
    const Config c = parse("");
    EXPECT_TRUE(c.dnsbls.empty());
    EXPECT_FALSE(c.greylist.enabled);
    EXPECT_EQ(c.policy.pregreet_wait, 0ms);
    EXPECT_FALSE(c.policy.dnsbl_at_connect);
    EXPECT_EQ(c.policy.dnsbl_threshold, 1);
    EXPECT_FALSE(c.rate_limit.connections.enabled());
    EXPECT_FALSE(c.rate_limit.user_messages.enabled());
    // Loopback is allow-listed, as Postfix's mynetworks holds the host itself.
    ASSERT_EQ(c.policy.allow_networks.size(), 2u);
    EXPECT_TRUE(ferry::policy::in_any(c.policy.allow_networks, *ferry::policy::parse_ip("127.3.4.5")));
    EXPECT_TRUE(ferry::policy::in_any(c.policy.allow_networks, *ferry::policy::parse_ip("::1")));
    EXPECT_FALSE(ferry::policy::in_any(c.policy.allow_networks, *ferry::policy::parse_ip("192.0.2.1")));
    // The built-in configuration is the same.
    EXPECT_TRUE(ferry::config::default_config().dnsbls.empty());
    EXPECT_FALSE(ferry::config::default_config().greylist.enabled);
}

TEST(ConfigPolicy, EveryKeyRead) {
    const Config c = parse(R"(
[policy]
allow_networks = ["192.0.2.0/24", "2001:db8::/32", "198.51.100.7"]
dnsbl_threshold = 3
dnsbl_reject = "connect"
pregreet_wait = "2s"
[[dnsbl]]
zone = "ZEN.Spamhaus.org."
[[dnsbl]]
zone = "list.dnswl.org"
weight = -5
[[dnsbl]]
zone = "bl.example"
weight = 2
responses = ["127.0.0.2", "127.0.0.10-127.0.0.20"]
[greylist]
enabled = true
delay = "2s"
retry_window = "1h"
max_age = "7d"
max_entries = 500
[rate_limit]
connections = "30/1m"
messages = "100/h"
recipients = "7/1h"
user_messages = "1000/1d"
user_recipients = "5000/1d"
ipv4_prefix = 24
ipv6_prefix = 48
max_clients = 1000
)");
    ASSERT_EQ(c.policy.allow_networks.size(), 3u);
    EXPECT_EQ(c.policy.allow_networks[2].to_string(), "198.51.100.7/32");
    EXPECT_FALSE(ferry::policy::in_any(c.policy.allow_networks, *ferry::policy::parse_ip("127.0.0.1")));
    EXPECT_EQ(c.policy.dnsbl_threshold, 3);
    EXPECT_TRUE(c.policy.dnsbl_at_connect);
    EXPECT_EQ(c.policy.pregreet_wait, 2s);
    ASSERT_EQ(c.dnsbls.size(), 3u);
    EXPECT_EQ(c.dnsbls[0].zone, "zen.spamhaus.org");
    EXPECT_EQ(c.dnsbls[0].weight, 1);
    EXPECT_EQ(c.dnsbls[0].responses, std::vector{range("127.0.0.2-127.0.0.11")});
    EXPECT_EQ(c.dnsbls[1].weight, -5);
    EXPECT_EQ(c.dnsbls[1].responses, std::vector{range("127.0.0.0-127.0.255.254")});
    EXPECT_EQ(c.dnsbls[2].responses, (std::vector{range("127.0.0.2"), range("127.0.0.10-127.0.0.20")}));
    EXPECT_TRUE(c.greylist.enabled);
    EXPECT_EQ(c.greylist.delay, 2s);
    EXPECT_EQ(c.greylist.table().retry_window, 1h);
    EXPECT_EQ(c.greylist.table().max_age, 24h * 7);
    EXPECT_EQ(c.greylist.table().max_entries, 500u);
    EXPECT_EQ(c.rate_limit.connections, (ferry::policy::Rate{30, 1min}));
    EXPECT_EQ(c.rate_limit.messages, (ferry::policy::Rate{100, 1h}));
    EXPECT_EQ(c.rate_limit.recipients, (ferry::policy::Rate{7, 1h}));
    EXPECT_EQ(c.rate_limit.user_recipients, (ferry::policy::Rate{5000, 24h}));
    EXPECT_EQ(c.rate_limit.ipv4_prefix, 24u);
    EXPECT_EQ(c.rate_limit.ipv6_prefix, 48u);
    EXPECT_EQ(c.rate_limit.max_clients, 1000u);
}

TEST(ConfigPolicy, OtherZonesDefaultToTheUsualListingCodes) {
    const Config c = parse("[[dnsbl]]\nzone = \"bl.example\"\n");
    EXPECT_EQ(c.dnsbls[0].responses, std::vector{range("127.0.0.2-127.0.0.254")});
}

TEST(ConfigPolicy, Refusals) {
    EXPECT_NE(problem("[policy]\nallow_networks = [\"192.0.2.1/24\"]\n").find("policy.allow_networks[0]: \"192.0.2.1/24\" is not an IP network"), std::string::npos);
    EXPECT_NE(problem("[policy]\nallow_networks = [\"mx.example\"]\n").find("is not an IP network"), std::string::npos);
    EXPECT_NE(problem("[policy]\nallow_networks = \"192.0.2.0/24\"\n").find("expected an array of strings"), std::string::npos);
    EXPECT_NE(problem("[policy]\ndnsbl_reject = \"data\"\n").find("is not \"rcpt\" or \"connect\""), std::string::npos);
    EXPECT_NE(problem("[policy]\ndnsbl_threshold = 0\n").find("policy.dnsbl_threshold"), std::string::npos);
    EXPECT_NE(problem("[policy]\npregreet_wait = \"2 minutes\"\n").find("is not a duration"), std::string::npos);
    EXPECT_NE(problem("[policy]\npregreet_wait = \"2m\"\n").find("too long"), std::string::npos);
    EXPECT_NE(problem("[[dnsbl]]\nweight = 1\n").find("dnsbl[0].zone: missing"), std::string::npos);
    EXPECT_NE(problem("[[dnsbl]]\nzone = \"bl example\"\n").find("is not a DNS zone"), std::string::npos);
    EXPECT_NE(problem("[[dnsbl]]\nzone = \"bl.example\"\nweight = 0\n").find("dnsbl[0].weight"), std::string::npos);
    // An answer outside 127.0.0.0/8 is never a listing (RFC 5782 2.3): it cannot be configured as one.
    EXPECT_NE(problem("[[dnsbl]]\nzone = \"bl.example\"\nresponses = [\"10.0.0.2\"]\n").find("dnsbl[0].responses[0]"), std::string::npos);
    EXPECT_NE(problem("[[dnsbl]]\nzone = \"bl.example\"\nresponses = []\n").find("empty"), std::string::npos);
    EXPECT_NE(problem("[[dnsbl]]\nzone = \"bl.example\"\n[[dnsbl]]\nzone = \"BL.example\"\n").find("a second [[dnsbl]] for bl.example"), std::string::npos);
    EXPECT_NE(problem("[greylist]\ndelay = \"1h\"\nretry_window = \"30m\"\n").find("greylist.retry_window: must be longer than delay"), std::string::npos);
    EXPECT_NE(problem("[greylist]\nmax_entries = 10\n").find("greylist.max_entries"), std::string::npos);
    EXPECT_NE(problem("[rate_limit]\nconnections = \"30\"\n").find("rate_limit.connections: \"30\" is not a rate"), std::string::npos);
    EXPECT_NE(problem("[rate_limit]\nmessages = \"0/1m\"\n").find("use \"\" for no limit"), std::string::npos);
    EXPECT_NE(problem("[rate_limit]\nmessages = \"10/0s\"\n").find("more than 0"), std::string::npos);
    EXPECT_NE(problem("[rate_limit]\nmessages = \"10/1y\"\n").find("the duration after / is wrong"), std::string::npos);
    EXPECT_NE(problem("[rate_limit]\nipv6_prefix = 129\n").find("rate_limit.ipv6_prefix"), std::string::npos);
}

TEST(ConfigPolicy, RateSyntax) {
    using ferry::config::parse_rate;
    EXPECT_FALSE(parse_rate("").enabled());
    EXPECT_EQ(parse_rate("60/m"), (ferry::policy::Rate{60, 1min}));
    EXPECT_EQ(parse_rate("5/30s"), (ferry::policy::Rate{5, 30s}));
    for (const char* bad : {"/1m", "x/1m", "5/", "5/x", "5//1m", "-5/1m", " 5/1m", "5/1m ", "99999999999999999999/1m"})
        EXPECT_THROW(parse_rate(bad), std::invalid_argument) << bad;
}
