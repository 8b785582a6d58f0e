#include "policy/client_network.hpp"

#include <arpa/inet.h>

#include <algorithm>

namespace ferry::policy {

namespace {

constexpr unsigned kV4Bits = 32;
constexpr unsigned kV6Bits = 128;
constexpr unsigned kMappedPrefixBits = 96;   // ::ffff:0:0/96 holds the IPv4-mapped addresses (RFC 4291 2.5.5.2)
// The longest text form inet_pton reads: "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255" (INET6_ADDRSTRLEN - 1).
constexpr std::size_t kMaxAddressText = 45;

bool is_mapped(const std::array<std::uint8_t, 16>& o) {
    return std::all_of(o.begin(), o.begin() + 10, [](std::uint8_t b) { return b == 0; }) && o[10] == 0xff &&
           o[11] == 0xff;
}

unsigned family_bits(const IpAddress& a) { return a.v4 ? kV4Bits : kV6Bits; }

// The network's bits counted from the start of the 16 octets (an IPv4 prefix sits behind the 96 mapped bits).
unsigned absolute_bits(bool v4, unsigned bits) { return v4 ? kMappedPrefixBits + bits : bits; }

// Clears every bit after the first `absolute` bits of the 16 octets.
std::array<std::uint8_t, 16> masked(std::array<std::uint8_t, 16> octets, unsigned absolute) {
    for (unsigned i = 0; i < 16; ++i) {
        const unsigned first_bit = i * 8;
        if (first_bit >= absolute) {
            octets[i] = 0;
        } else if (absolute - first_bit < 8) {
            octets[i] &= static_cast<std::uint8_t>(0xff << (8 - (absolute - first_bit)));
        }
    }
    return octets;
}

// A prefix length: decimal digits, no sign, no spaces, no leading zero ("024" reads as octal elsewhere).
std::optional<unsigned> parse_bits(std::string_view text) {
    if (text.empty() || text.size() > 3 || (text.size() > 1 && text[0] == '0')) return std::nullopt;
    unsigned value = 0;
    for (const char c : text) {
        if (c < '0' || c > '9') return std::nullopt;
        value = value * 10 + static_cast<unsigned>(c - '0');
    }
    return value;
}

}  // namespace

std::optional<IpAddress> parse_ip(std::string_view text) {
    // inet_pton refuses names, brackets, zone ids ("fe80::1%eth0") and spaces; it stops at a NUL, so a text with
    // one inside is refused here rather than read up to it.
    if (text.empty() || text.size() > kMaxAddressText || text.find('\0') != std::string_view::npos) return std::nullopt;
    const std::string s(text);
    IpAddress address;
    in_addr v4{};
    if (::inet_pton(AF_INET, s.c_str(), &v4) == 1) {
        address.octets[10] = 0xff;
        address.octets[11] = 0xff;
        std::copy_n(reinterpret_cast<const std::uint8_t*>(&v4.s_addr), 4, address.octets.begin() + 12);
        address.v4 = true;
        return address;
    }
    if (::inet_pton(AF_INET6, s.c_str(), address.octets.data()) != 1) return std::nullopt;
    address.v4 = is_mapped(address.octets);   // "::ffff:192.0.2.1" is the IPv4 client 192.0.2.1
    return address;
}

std::string IpAddress::to_string() const {
    char text[INET6_ADDRSTRLEN] = {};
    if (v4) {
        if (::inet_ntop(AF_INET, octets.data() + 12, text, sizeof text) == nullptr) return {};
    } else if (::inet_ntop(AF_INET6, octets.data(), text, sizeof text) == nullptr) {
        return {};
    }
    return text;
}

bool IpNetwork::contains(const IpAddress& address) const {
    if (address.v4 != base.v4) return false;
    return masked(address.octets, absolute_bits(base.v4, bits)) == base.octets;
}

std::string IpNetwork::to_string() const { return base.to_string() + "/" + std::to_string(bits); }

std::string IpNetwork::key() const {
    // The base is masked and an IPv4 base carries the ::ffff: prefix that no IPv6 base can (parse_ip reads such an
    // address as IPv4), so the 16 octets and the bits are unique to the network.
    std::string k(reinterpret_cast<const char*>(base.octets.data()), base.octets.size());
    k += static_cast<char>(bits);
    return k;
}

std::optional<IpNetwork> parse_network(std::string_view text) {
    const auto slash = text.find('/');
    auto address = parse_ip(text.substr(0, slash));
    if (!address) return std::nullopt;
    unsigned bits = family_bits(*address);
    if (slash != std::string_view::npos) {
        const auto given = parse_bits(text.substr(slash + 1));
        if (!given) return std::nullopt;
        bits = *given;
        // "::ffff:192.0.2.0/120" is written in IPv6 bits; as the IPv4 network it is, that is a /24. A prefix
        // shorter than the mapped /96 would reach outside the IPv4 addresses: refused.
        const bool mapped_text = text.substr(0, slash).find(':') != std::string_view::npos;
        if (address->v4 && mapped_text) {
            if (bits < kMappedPrefixBits) return std::nullopt;
            bits -= kMappedPrefixBits;
        }
    }
    if (bits > family_bits(*address)) return std::nullopt;
    IpNetwork network{*address, bits};
    // Host bits after the prefix: "192.0.2.1/24" is a typo for a host or for 192.0.2.0/24; refuse to guess.
    if (masked(address->octets, absolute_bits(address->v4, bits)) != address->octets) return std::nullopt;
    return network;
}

IpNetwork network_of(const IpAddress& address, unsigned v4_bits, unsigned v6_bits) {
    const unsigned bits = std::min(address.v4 ? v4_bits : v6_bits, family_bits(address));
    IpNetwork network{address, bits};
    network.base.octets = masked(address.octets, absolute_bits(address.v4, bits));
    return network;
}

bool in_any(const std::vector<IpNetwork>& networks, const IpAddress& address) {
    return std::any_of(networks.begin(), networks.end(), [&](const IpNetwork& n) { return n.contains(address); });
}

}  // namespace ferry::policy
