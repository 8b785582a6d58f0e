// SPF records (RFC 7208 4.5, 4.6.1, 5, 6, Appendix A): picking the record out of a TXT RRset, and parsing it into
// terms. Pure: text in, terms out; nothing is expanded or looked up here (spf_macro, spf do that).
//
//   record           = version terms *SP            version = "v=spf1"
//   terms            = *( 1*SP ( directive / modifier ) )
//   directive        = [ qualifier ] mechanism      qualifier = "+" / "-" / "?" / "~"
//   mechanism        = all / include / a / mx / ptr / ip4 / ip6 / exists
//   modifier         = redirect / explanation / unknown-modifier
//   unknown-modifier = name "=" macro-string        name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." )
//
// Names of mechanisms and modifiers, and the version, compare case-insensitively (ABNF strings, RFC 5234 2.3).
// Any syntax error anywhere in the record makes the whole record a permerror (RFC 7208 4.6), including a bad
// macro in a domain-spec or in an unknown modifier (which is otherwise ignored).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::mailauth {

// RFC 7208 5.6: the largest CIDR prefix lengths.
inline constexpr int kSpfMaxCidr4 = 32;
inline constexpr int kSpfMaxCidr6 = 128;

// An IPv4 or IPv6 address (the client's, or an ip4:/ip6: network).
struct IpAddress {
    bool v6 = false;
    std::array<std::uint8_t, 16> bytes{};   // IPv4 in bytes[0..3], the rest zero
    bool operator==(const IpAddress&) const = default;
};

// The client's address as text ("192.0.2.1", "2001:db8::1"). An IPv4-mapped IPv6 address (::ffff:192.0.2.1) is
// the IPv4 address (RFC 7208 5: such connections are IPv4 for SPF). nullopt for text that is not an address.
std::optional<IpAddress> parse_client_address(std::string_view text);

// `ip` lies in `network`/`prefix` (both of the same family; false otherwise). `prefix` is clamped to the family.
bool in_network(const IpAddress& ip, const IpAddress& network, int prefix);

// Text form: dotted quad, or RFC 5952 IPv6 text (lower case, longest zero run compressed).
std::string to_string(const IpAddress& ip);

enum class SpfQualifier : char { pass = '+', fail = '-', softfail = '~', neutral = '?' };
enum class SpfMechanism { all, include, a, mx, ptr, ip4, ip6, exists };

std::string_view to_string(SpfMechanism m);

struct SpfTerm {
    enum class Kind { directive, modifier };
    Kind kind = Kind::directive;

    // A directive.
    SpfQualifier qualifier = SpfQualifier::pass;   // "+" when none is written (RFC 7208 4.6.2)
    SpfMechanism mechanism = SpfMechanism::all;
    std::string domain_spec;        // unexpanded, without the ":"; "" when absent (then <domain>, RFC 7208 4.8)
    int cidr4 = kSpfMaxCidr4;       // a, mx, ip4 (RFC 7208 5.6: absent means /32)
    int cidr6 = kSpfMaxCidr6;       // a, mx, ip6 (absent means /128)
    IpAddress network;              // ip4, ip6

    // A modifier: "redirect" and "exp" in lower case; an unknown one as written (its value still checked as a
    // macro-string).
    std::string name;
    std::string value;

    bool operator==(const SpfTerm&) const = default;
};

struct SpfRecord {
    std::vector<SpfTerm> terms;   // in record order, modifiers included

    // The redirect= / exp= domain-spec, or nullptr (each is given at most once, RFC 7208 6).
    const std::string* redirect() const;
    const std::string* explanation() const;
    // An "all" mechanism anywhere in the record: redirect= is then ignored (RFC 7208 5.1).
    bool has_all() const;
    bool operator==(const SpfRecord&) const = default;
};

// RFC 7208 4.3: a <domain> check_host() can work with: a fully qualified name of at least two labels, each of
// 1 to 63 octets of letters, digits, "-" or "_", at most 253 octets in all, the last label not all digits (so an
// address or address literal is not one). One trailing dot is allowed and removed. nullopt: not usable, the
// check gives "none". (Internationalized names must come as A-labels; the caller converts U-labels.)
std::optional<std::string> spf_check_domain(std::string_view name);

// A TXT record that begins with the version section "v=spf1" followed by SP or the end (RFC 7208 4.5),
// compared case-insensitively: "v=spf10" is not one.
bool is_spf_record(std::string_view txt);

// Parses a whole record (version included). nullopt on a syntax error, with `error` (if given) saying what in a
// few words of printable ASCII, quoting at most the first 40 octets of the bad term (others shown as '?').
std::optional<SpfRecord> parse_spf_record(std::string_view text, std::string* error = nullptr);

// Canonical text: "v=spf1" and each term, single spaces, qualifier only when not "+", CIDR lengths only when
// not the default. parse_spf_record(to_string(r)) == r for every parsed record.
std::string to_string(const SpfTerm& term);
std::string to_string(const SpfRecord& record);

}  // namespace ferry::mailauth
