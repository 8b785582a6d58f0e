#include "policy/dnsbl.hpp"

#include <arpa/inet.h>

#include <algorithm>

namespace ferry::policy {

namespace {

constexpr std::uint32_t kLoopbackNet = 0x7f000000;   // 127.0.0.0/8: every meaningful answer (RFC 5782 2.3)

bool in_loopback(std::uint32_t a) { return (a & 0xff000000) == kLoopbackNet; }

// 127.255.255.0/24 (Spamhaus: typing error, public resolver, excessive queries) and 127.0.0.255 (dnswl.org:
// over the free limit).
bool refusal(std::uint32_t a) { return (a & 0xffffff00) == 0x7fffff00 || a == 0x7f0000ff; }

std::optional<std::uint32_t> ipv4(std::string_view text) {
    if (text.empty() || text.size() > 15) return std::nullopt;
    const std::string s(text);   // inet_pton stops at a NUL: the copy has none in the middle (checked below)
    if (s.find('\0') != std::string::npos) return std::nullopt;
    in_addr a{};
    if (::inet_pton(AF_INET, s.c_str(), &a) != 1) return std::nullopt;
    return ntohl(a.s_addr);
}

}  // namespace

std::optional<std::string> dnsbl_query_name(std::string_view client_ip, std::string_view zone) {
    const auto client = parse_ip(client_ip);
    if (!client) return std::nullopt;
    return dnsbl_query_name(*client, zone);
}

std::optional<std::string> dnsbl_query_name(const IpAddress& client, std::string_view zone) {
    while (!zone.empty() && zone.back() == '.') zone.remove_suffix(1);
    if (zone.empty()) return std::nullopt;
    std::string name;
    if (client.v4) {   // IPv4, and IPv4-mapped IPv6 (parse_ip reads it as the IPv4 address it is)
        for (int i = 15; i >= 12; --i) name += std::to_string(client.octets[static_cast<std::size_t>(i)]) + ".";
    } else {
        constexpr char kHex[] = "0123456789abcdef";
        for (int i = 15; i >= 0; --i) {
            const std::uint8_t b = client.octets[static_cast<std::size_t>(i)];
            name += kHex[b & 0x0f];
            name += '.';
            name += kHex[b >> 4];
            name += '.';
        }
    }
    return name + std::string(zone);
}

std::optional<ResponseRange> parse_response_range(std::string_view text) {
    const auto dash = text.find('-');
    const auto first = ipv4(text.substr(0, dash));
    const auto last = dash == std::string_view::npos ? first : ipv4(text.substr(dash + 1));
    if (!first || !last || !in_loopback(*first) || !in_loopback(*last) || *first > *last) return std::nullopt;
    return ResponseRange{*first, *last};
}

DnsblAnswer classify_dnsbl_answer(const std::vector<std::uint32_t>& answers, const std::vector<ResponseRange>& responses) {
    bool listed = false;
    for (const std::uint32_t a : answers) {
        if (!in_loopback(a) || refusal(a)) return DnsblAnswer::error;
        for (const ResponseRange& r : responses)
            if (a >= r.first && a <= r.last) listed = true;
    }
    return listed ? DnsblAnswer::listed : DnsblAnswer::not_listed;
}

int dnsbl_score(const std::vector<ListResult>& results) {
    int score = 0;
    for (const ListResult& r : results)
        if (r.answer == DnsblAnswer::listed) score += r.weight;
    return score;
}

}  // namespace ferry::policy
