// Mailbox and path syntax of RFC 5321 4.1.2, extended for UTF-8 by RFC 6531 3.3. Pure parsing, no I/O.
#pragma once

#include "util/ascii.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace ferry::smtp {

// RFC 5321 4.5.3.1.1-3: size limits of the parts of a path.
inline constexpr std::size_t kMaxLocalPartLength = 64;
inline constexpr std::size_t kMaxDomainLength = 255;
inline constexpr std::size_t kMaxPathLength = 256;

struct Mailbox {
    std::string local;    // unquoted content of the local part (quoted-pairs resolved)
    std::string domain;   // as written; address literals keep their brackets
    bool utf8 = false;    // contains non-ASCII octets (needs SMTPUTF8)

    // local@domain with the local part quoted again when it is not a dot-string.
    std::string to_string() const;
    // Lower-cased form used to look up accounts, aliases and local domains.
    std::string key() const;
    bool operator==(const Mailbox&) const = default;
};

// A reverse-path or forward-path: nullopt mailbox means the null path "<>".
struct Path {
    std::optional<Mailbox> mailbox;
    std::string to_string() const { return "<" + (mailbox ? mailbox->to_string() : std::string()) + ">"; }
};

// too_long: the path is over kMaxPathLength or its local part over kMaxLocalPartLength octets.
enum class PathError { none, syntax, too_long };

struct PathParse {
    Path path;
    std::size_t consumed = 0;   // octets of the input taken by "<...>"
    PathError error = PathError::none;
};

// Parses "<...>" at the start of `text`: optional source route (ignored, RFC 5321 4.1.1.3 / C), a Mailbox,
// or "<>" when allow_null. Also accepts "<Postmaster>" without domain (RFC 5321 4.1.1.3) as local "Postmaster"
// with an empty domain; callers decide where that is allowed.
PathParse parse_path(std::string_view text, bool allow_null);

// Parses a bare "local@domain" (no angle brackets), e.g. from configuration. nullopt when invalid.
std::optional<Mailbox> parse_mailbox(std::string_view text);

// The one grammar of domains and plain addresses. The session (parse_path), the configuration, the accounts file,
// sendmail/pickup and the outbound client all check names with these, so a name one of them accepts is one the
// others accept too. Each `*_error` returns why the text is refused, or "" when it is acceptable.

// RFC 5321 4.1.2 Domain = sub-domain *("." sub-domain), sub-domain = Let-dig [Ldh-str], with U-labels allowed
// (RFC 6531 3.3: octets of well-formed UTF-8); labels 1-63 octets, the whole 255 at most (RFC 5321 4.5.3.1.2).
// No trailing dot, no address literals.
std::string domain_error(std::string_view domain);
bool is_valid_domain(std::string_view domain);   // domain_error(domain).empty()

// The addresses Ferry keeps in its own files (aliases, accounts, pickup envelopes): RFC 5321 Mailbox with a
// Dot-string local part (RFC 6531 3.3: atext, '.' between atoms, UTF-8) and a Domain as above, split at the
// last '@'. Quoted local parts and address literals, which parse_mailbox takes from the wire, are refused:
// these addresses are written back without quoting. Local part 1-64 octets (RFC 5321 4.5.3.1.1), the whole
// 254 at most, so that it fits a path of 256 octets with its angle brackets (RFC 5321 4.5.3.1.3).
std::string address_error(std::string_view address);
inline constexpr std::size_t kMaxPlainAddressLength = kMaxPathLength - 2;
using util::ascii_lower;

}  // namespace ferry::smtp
