// DNS record data as libunbound hands it over (RFC 1035 wire format, names uncompressed). Pure: no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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

// TXT rdata (RFC 1035 3.3.14): one or more <character-string>s (a length octet, then that many octets),
// joined without separators, as RFC 7208 3.3 and RFC 6376 3.6.2.2 read them. nullopt when a string runs past
// the end or there is none.
std::optional<std::string> parse_txt(std::string_view rdata);

// PTR rdata (RFC 1035 3.3.12): one name, nothing after it.
std::optional<std::string> parse_ptr(std::string_view rdata);

// A whole DNS message (RFC 1035 4.1), as libunbound also hands it over (ub_result::answer_packet): its RCODE
// (the low four bits of the header's flags, 4.1.1), nullopt when there is no header.
std::optional<int> message_rcode(std::string_view message);

// The rdata of the records of `type`, class IN, that `owner` (dotted, any case, trailing dot or not) holds in the
// answer section of a whole message, in message order; owner names may be compressed (4.1.4). The rdata are
// copied as they stand, so only for types whose rdata holds no domain name (A, AAAA, TXT, ...): the name-bearing
// types of RFC 1035 (NS, CNAME, SOA, PTR, MX, ...) may be compressed and give nullopt. nullopt too when the
// message is truncated or malformed (a compression pointer that does not point backwards, a name over 255
// octets, a record running past the end).
std::optional<std::vector<std::string>> answer_rdata(std::string_view message, std::string_view owner, int type);

// The name to ask PTR for, for an IPv4 or IPv6 address in text ("192.0.2.1" -> "1.2.0.192.in-addr.arpa",
// RFC 1035 3.5; IPv6 nibbles under ip6.arpa, RFC 3596 2.5). nullopt for text that is not an address.
std::optional<std::string> reverse_name(std::string_view address);

}  // namespace ferry::dns
