// SPF macros (RFC 7208 7): syntax checks of macro-strings and domain-specs, and their expansion. Pure: every
// value a macro can stand for is handed in (the caller looks up %{p} itself, and only when uses_macro_letter()
// says it is needed).
//
//   domain-spec    = macro-string domain-end
//   domain-end     = ( "." toplabel [ "." ] ) / macro-expand
//   toplabel       = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum )
//   explain-string = *( macro-string / SP )
//   macro-string   = *( macro-expand / macro-literal )
//   macro-expand   = ( "%{" macro-letter transformers *delimiter "}" ) / "%%" / "%_" / "%-"
//   macro-literal  = %x21-24 / %x26-7E
//   macro-letter   = "s" / "l" / "o" / "d" / "i" / "p" / "h" / "c" / "r" / "t" / "v"
//   transformers   = *DIGIT [ "r" ]
//   delimiter      = "." / "-" / "+" / "," / "/" / "_" / "="
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "mailauth/spf_record.hpp"

namespace ferry::mailauth {

// RFC 7208 7.3: a name built by expansion is cut from the left to at most this many octets.
inline constexpr std::size_t kSpfMaxDomainLength = 253;
// RFC 7208 6.2 lets the explanation be limited; it goes into one SMTP reply line (RFC 5321 4.5.3.1.5 allows
// 512 octets for the whole line, code and text).
inline constexpr std::size_t kSpfMaxExplanationLength = 400;

// Where a macro-string stands: c, r and t are allowed only in the explanation text (RFC 7208 7.2), and only
// the explanation text may hold spaces.
enum class MacroContext { domain_spec, explanation };

// What each macro letter expands to (RFC 7208 7.2). Build them with spf_macro_values() for the usual ones.
struct MacroValues {
    std::string sender;          // s: local-part@domain ("postmaster" when the local-part is empty, 4.3)
    std::string local_part;      // l
    std::string sender_domain;   // o
    std::string domain;          // d: the <domain> of the current check_host()
    std::string ip;              // i: dotted quad, or 32 dot-separated nibbles for IPv6
    std::string ptr_name;        // p: the validated name of the client, or "unknown"
    std::string ip_version;      // v: "in-addr" or "ip6"
    std::string helo;            // h
    std::string client_ip;       // c: dotted quad or RFC 5952 text
    std::string receiver;        // r: our host name, or "unknown"
    std::string timestamp;       // t: seconds since the epoch
};

// i, v and c for an address (RFC 7208 7.3: "i" for IPv6 is nibbles, lower-case hex, most significant first).
std::string ip_macro_text(const IpAddress& ip);
std::string_view ip_version_text(const IpAddress& ip);

// True when `text` (assumed valid) expands macro `letter` (lower case) anywhere.
bool uses_macro_letter(std::string_view text, char letter);

// Syntax of a macro-string (context domain_spec: no spaces, no c/r/t) or an explain-string.
bool check_macro_string(std::string_view text, MacroContext context, std::string* error = nullptr);
// Syntax of a domain-spec: a macro-string without c/r/t, ending in "." toplabel [ "." ] or in a macro.
bool check_domain_spec(std::string_view text, std::string* error = nullptr);

// Expands a domain-spec (checked with check_domain_spec or not: nullopt on a syntax error) into the
// <target-name>: at most kSpfMaxDomainLength octets, labels cut from the left as RFC 7208 7.3 says. Work and
// memory stay bounded whatever the values (only the right end of a long expansion is kept).
std::optional<std::string> expand_domain_spec(std::string_view text, const MacroValues& values);

// Expands an explain-string (RFC 7208 6.2): nullopt on a syntax error. The result is cut to
// kSpfMaxExplanationLength octets, and any octet outside printable ASCII in it (from a macro value) becomes '?'
// (the text goes into an SMTP reply, which is US-ASCII).
std::optional<std::string> expand_explanation(std::string_view text, const MacroValues& values);

// RFC 7208 7.3: removes labels (with their dots) from the left until at most kSpfMaxDomainLength octets remain.
std::string truncate_domain(std::string_view name);

// RFC 3986 2.1 percent-encoding of every octet not "unreserved" (ALPHA DIGIT "-" "." "_" "~"), upper-case hex:
// what an upper-case macro letter does to its expansion (RFC 7208 7.3).
std::string url_escape(std::string_view text);

}  // namespace ferry::mailauth
