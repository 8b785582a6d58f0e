// Client addresses and networks: one 16-octet form for IPv4 and IPv6 (IPv4 as IPv4-mapped IPv6, RFC 4291 2.5.5.2),
// CIDR networks, and the network a client is counted under (its /24 or /64 for greylisting, its address or /64
// for rate limits). Pure; used by the allow list, greylisting and the rate limits.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::policy {

struct IpAddress {
    std::array<std::uint8_t, 16> octets{};   // IPv4 a.b.c.d as ::ffff:a.b.c.d
    bool v4 = false;                         // an IPv4 address (or an IPv4-mapped IPv6 address, which is one)
    auto operator<=>(const IpAddress&) const = default;
    std::string to_string() const;           // "192.0.2.1", "2001:db8::1"
};

// "192.0.2.1", "2001:db8::1", "::ffff:192.0.2.1" (read as the IPv4 address it maps). nullopt for anything else
// (names, brackets, zone ids, surrounding spaces).
std::optional<IpAddress> parse_ip(std::string_view text);

// A network: `base` with the bits after `bits` zero. `bits` counts in the family's own width: 0-32 for IPv4,
// 0-128 for IPv6.
struct IpNetwork {
    IpAddress base;
    unsigned bits = 0;
    auto operator<=>(const IpNetwork&) const = default;
    bool contains(const IpAddress& address) const;   // false across families
    std::string to_string() const;                  // "192.0.2.0/24", "2001:db8::/64"
    // 17 octets (the masked address, then `bits`) for hash keys: equal networks give equal keys.
    std::string key() const;
};

// "192.0.2.0/24", "2001:db8::/32", or an address alone (/32, /128). Bits set after the prefix are refused, as
// a typo ("192.0.2.1/24" means what?). An IPv4-mapped base counts its bits as IPv6 does: "::ffff:192.0.2.0/120" is
// 192.0.2.0/24, and a prefix under /96 there is refused. nullopt when it is not a network.
std::optional<IpNetwork> parse_network(std::string_view text);

// The network of `bits` around `address` (its host bits cleared): v4_bits for IPv4, v6_bits for IPv6.
IpNetwork network_of(const IpAddress& address, unsigned v4_bits, unsigned v6_bits);

bool in_any(const std::vector<IpNetwork>& networks, const IpAddress& address);

}  // namespace ferry::policy
