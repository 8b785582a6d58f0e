// DNS record data as libunbound hands it over (RFC 1035 wire format, names uncompressed). Pure: no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ferry::dns {

// A domain name in wire format starting at `pos` (RFC 1035 3.1), as lower-case dotted text without the
// trailing dot ("" for the root). Advances `pos` past it. nullopt on a truncated or malformed name, a
// compression pointer (never present in rdata from libunbound), or a label holding a '.' or a control octet.
std::optional<std::string> read_name(std::string_view wire, std::size_t& pos);

struct MxRecord {
    std::uint16_t preference = 0;
    std::string host;   // "" for the root: the null MX of RFC 7505
    bool operator==(const MxRecord&) const = default;
};

// MX rdata: a 16-bit preference and a name (RFC 1035 3.3.9); nothing may follow.
std::optional<MxRecord> parse_mx(std::string_view rdata);

// A (4 octets) and AAAA (16 octets) rdata as text ("192.0.2.1", "2001:db8::1").
std::optional<std::string> parse_a(std::string_view rdata);
std::optional<std::string> parse_aaaa(std::string_view rdata);

}  // namespace ferry::dns
