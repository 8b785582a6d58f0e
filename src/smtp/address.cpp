#include "smtp/address.hpp"

#include <arpa/inet.h>

#include <cstring>

#include "util/ascii.hpp"
#include "util/utf8.hpp"

namespace ferry::smtp {
namespace {

using util::utf8_sequence_length;

bool is_alpha(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

// RFC 5322 atext, the characters of a dot-string atom (never NUL: util::is_atext checks).
bool is_atext(unsigned char c) { return util::is_atext(static_cast<char>(c)); }

bool is_dot_string(std::string_view s) {
    if (s.empty() || s.front() == '.' || s.back() == '.') return false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c == '.') {
            if (s[i - 1] == '.') return false;
        } else if (c >= 0x80) {
            const std::size_t n = utf8_sequence_length(s, i);
            if (n == 0) return false;
            i += n - 1;
        } else if (!is_atext(c)) {
            return false;
        }
    }
    return true;
}

bool has_non_ascii(std::string_view s) {
    for (unsigned char c : s)
        if (c >= 0x80) return true;
    return false;
}

bool is_address_literal(std::string_view lit) {
    // "[" ( IPv4 / "IPv6:" IPv6 / General ) "]", RFC 5321 4.1.3
    if (lit.size() < 3 || lit.front() != '[' || lit.back() != ']') return false;
    const std::string inner(lit.substr(1, lit.size() - 2));
    // inet_pton stops at a NUL: "[1.2.3.4\0junk]" would pass as an IPv4 literal.
    if (inner.find('\0') != std::string::npos) return false;
    unsigned char buf[16];
    if (inner.rfind("IPv6:", 0) == 0 || inner.rfind("ipv6:", 0) == 0)
        return inet_pton(AF_INET6, inner.c_str() + 5, buf) == 1;
    if (inet_pton(AF_INET, inner.c_str(), buf) == 1) return true;
    // General-address-literal: Standardized-tag ":" 1*dcontent
    const auto colon = inner.find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == inner.size()) return false;
    for (std::size_t i = 0; i < colon; ++i) {
        const auto c = static_cast<unsigned char>(inner[i]);
        if (!is_alpha(c) && !is_digit(c) && c != '-') return false;
    }
    for (std::size_t i = colon + 1; i < inner.size(); ++i) {
        const auto c = static_cast<unsigned char>(inner[i]);
        if (c < 33 || c > 126 || c == '[' || c == ']' || c == '\\') return false;
    }
    return true;
}

struct LocalPart {
    std::string value;
    std::size_t consumed = 0;
    bool ok = false;
};

// Local-part = Dot-string / Quoted-string, read up to the '@'.
LocalPart parse_local_part(std::string_view s) {
    LocalPart out;
    if (!s.empty() && s.front() == '"') {
        std::size_t i = 1;
        while (i < s.size() && s[i] != '"') {
            const auto c = static_cast<unsigned char>(s[i]);
            if (c == '\\') {   // quoted-pairSMTP = "\" %d32-126
                if (i + 1 >= s.size()) return out;
                const auto q = static_cast<unsigned char>(s[i + 1]);
                if (q < 32 || q > 126) return out;
                out.value.push_back(static_cast<char>(q));
                i += 2;
            } else if (c >= 0x80) {
                const std::size_t n = utf8_sequence_length(s, i);
                if (n == 0) return out;
                out.value.append(s.substr(i, n));
                i += n;
            } else if (c >= 32 && c <= 126) {   // qtextSMTP: %d32-33 / %d35-91 / %d93-126
                out.value.push_back(static_cast<char>(c));
                ++i;
            } else {
                return out;
            }
        }
        if (i >= s.size()) return out;
        out.consumed = i + 1;
        out.ok = true;
        return out;
    }
    // A dot-string holds no '@', so the first one ends it; the domain may hold more, inside a
    // General-address-literal (dcontent includes '@', RFC 5321 4.1.3), as in joe@[x-tag:a@b].
    const auto at = s.find('@');
    if (at == std::string_view::npos || at == 0) return out;
    out.value = std::string(s.substr(0, at));
    if (!is_dot_string(out.value)) return out;
    out.consumed = at;
    out.ok = true;
    return out;
}

bool is_domain_or_literal(std::string_view d) {
    // RFC 5321 4.5.3.1.2: 255 octets for "a domain name or number", so address literals too.
    if (d.size() > kMaxDomainLength) return false;
    return d.size() && d.front() == '[' ? is_address_literal(d) : is_valid_domain(d);
}

struct MailboxParse {
    std::optional<Mailbox> mailbox;
    PathError error = PathError::syntax;
};

MailboxParse parse_mailbox_exact(std::string_view s) {
    MailboxParse out;
    LocalPart local = parse_local_part(s);
    if (!local.ok || local.consumed >= s.size() || s[local.consumed] != '@') return out;
    const std::string_view domain = s.substr(local.consumed + 1);
    if (!is_domain_or_literal(domain)) return out;
    // RFC 5321 4.5.3.1.1 limits the Local-part as written, quotes and backslashes included.
    if (local.consumed > kMaxLocalPartLength) {
        out.error = PathError::too_long;
        return out;
    }
    Mailbox mb;
    mb.local = std::move(local.value);
    mb.domain = std::string(domain);
    mb.utf8 = has_non_ascii(mb.local) || has_non_ascii(mb.domain);
    out.mailbox = std::move(mb);
    out.error = PathError::none;
    return out;
}

// Position of the first `c` in `s` that is not inside an address literal "[...]", or npos.
std::size_t find_outside_literal(std::string_view s, char c) {
    bool literal = false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '[') literal = true;
        else if (s[i] == ']') literal = false;
        else if (!literal && s[i] == c) return i;
    }
    return std::string_view::npos;
}

}  // namespace

namespace {

// A one-octet character as messages show it: printable as itself, anything else as \xHH, always in quotes.
std::string quoted_octet(char c) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7F && c != '"' && c != '\\') return std::string("\"") + c + "\"";
    if (c == '"' || c == '\\') return std::string("\"\\") + c + "\"";
    static constexpr char hex[] = "0123456789abcdef";
    return std::string("\"\\x") + hex[u >> 4] + hex[u & 0xF] + "\"";
}

}  // namespace

std::string domain_error(std::string_view d) {
    if (d.empty()) return "empty domain";
    if (d.size() > kMaxDomainLength) return "longer than 255 octets";
    if (!util::is_valid_utf8(d)) return "not valid UTF-8";
    std::size_t label_start = 0;
    for (std::size_t i = 0; i <= d.size(); ++i) {
        if (i == d.size() || d[i] == '.') {
            const std::string_view label = d.substr(label_start, i - label_start);
            // sub-domain = Let-dig [Ldh-str]: no empty labels, no hyphen at either end, at most 63 octets.
            if (label.empty()) return "empty label";
            if (label.size() > 63) return "label longer than 63 octets";
            if (label.front() == '-' || label.back() == '-') return "label starts or ends with '-'";
            label_start = i + 1;
            continue;
        }
        const auto c = static_cast<unsigned char>(d[i]);
        // U-label octets (RFC 6531 3.3), already checked to be whole UTF-8 characters; full IDNA validation is
        // libidn2's job at delivery.
        if (c >= 0x80 || is_alpha(c) || is_digit(c) || c == '-') continue;
        return "invalid character " + quoted_octet(d[i]);
    }
    return {};
}

bool is_valid_domain(std::string_view d) { return domain_error(d).empty(); }

std::string address_error(std::string_view address) {
    const auto at = address.rfind('@');
    if (at == std::string_view::npos) return "expected localpart@domain";
    const std::string_view local = address.substr(0, at);
    const std::string_view domain = address.substr(at + 1);
    if (local.empty()) return "empty local part";
    if (local.size() > kMaxLocalPartLength) return "local part longer than 64 octets";
    if (!util::is_valid_utf8(local)) return "local part is not valid UTF-8";
    for (std::size_t i = 0; i < local.size(); ++i) {
        const char c = local[i];
        const auto u = static_cast<unsigned char>(c);
        if (c == '.') {
            // Dot-string = Atom *("." Atom): no dot first, last or next to another (RFC 5321 4.1.2).
            if (i == 0 || i + 1 == local.size()) return "the local part starts or ends with '.'";
            if (local[i - 1] == '.') return "two dots in a row in the local part";
            continue;
        }
        if (u >= 0x80 || is_atext(u)) continue;
        if (u < 0x20 || u == 0x7F) return "control character in the local part";
        if (c == ' ') return "space in the local part";
        return "invalid character " + quoted_octet(c) + " in the local part";
    }
    if (domain.empty()) return "empty domain";
    if (std::string why = domain_error(domain); !why.empty()) return "domain: " + why;
    if (address.size() > kMaxPlainAddressLength) return "longer than 254 octets (RFC 5321 4.5.3.1.3)";
    return {};
}

std::string Mailbox::to_string() const {
    std::string out;
    if (is_dot_string(local)) {
        out = local;
    } else {
        out.push_back('"');
        for (char c : local) {
            if (c == '"' || c == '\\') out.push_back('\\');
            out.push_back(c);
        }
        out.push_back('"');
    }
    if (!domain.empty()) {
        out.push_back('@');
        out += domain;
    }
    return out;
}

std::string Mailbox::key() const {
    return domain.empty() ? ascii_lower(local) : local + "@" + ascii_lower(domain);
}

std::optional<Mailbox> parse_mailbox(std::string_view text) { return parse_mailbox_exact(text).mailbox; }

PathParse parse_path(std::string_view text, bool allow_null) {
    PathParse out;
    out.error = PathError::syntax;
    if (text.empty() || text.front() != '<') return out;
    const auto close = [&]() -> std::size_t {
        // The closing '>' is the first one outside a quoted string and outside an address literal: a
        // General-address-literal may hold '>' and '"' (dcontent, RFC 5321 4.1.3), as in <joe@[x-tag:>]>.
        bool quoted = false;
        bool literal = false;
        for (std::size_t i = 1; i < text.size(); ++i) {
            if (literal) {
                if (text[i] == ']') literal = false;
            } else if (quoted) {
                if (text[i] == '\\') ++i;
                else if (text[i] == '"') quoted = false;
            } else if (text[i] == '"') {
                quoted = true;
            } else if (text[i] == '[') {
                literal = true;
            } else if (text[i] == '>') {
                return i;
            }
        }
        return std::string_view::npos;
    }();
    if (close == std::string_view::npos) return out;
    out.consumed = close + 1;
    if (out.consumed > kMaxPathLength) {
        out.error = PathError::too_long;
        return out;
    }
    std::string_view inner = text.substr(1, close - 1);
    if (inner.empty()) {
        if (allow_null) out.error = PathError::none;
        return out;
    }
    // A-d-l ":" (source route): accepted and ignored, RFC 5321 4.1.1.3 and appendix C.
    // A-d-l = At-domain *( "," At-domain ); IPv6 and general address literals hold colons of their own.
    if (inner.front() == '@') {
        const auto colon = find_outside_literal(inner, ':');
        if (colon == std::string_view::npos) return out;
        std::string_view route = inner.substr(0, colon);
        for (;;) {
            const auto comma = find_outside_literal(route, ',');
            const std::string_view hop = route.substr(0, comma);
            if (hop.size() < 2 || hop.front() != '@' || !is_domain_or_literal(hop.substr(1))) return out;
            if (comma == std::string_view::npos) break;
            route.remove_prefix(comma + 1);
        }
        inner = inner.substr(colon + 1);
    }
    MailboxParse mp = parse_mailbox_exact(inner);
    if (mp.mailbox) {
        out.path.mailbox = std::move(mp.mailbox);
        out.error = PathError::none;
        return out;
    }
    if (mp.error == PathError::too_long) {
        out.error = PathError::too_long;
        return out;
    }
    if (ascii_lower(inner) == "postmaster") {
        out.path.mailbox = Mailbox{std::string(inner), std::string(), false};
        out.error = PathError::none;
    }
    return out;
}

}  // namespace ferry::smtp
