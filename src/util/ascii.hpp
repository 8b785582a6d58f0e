// ASCII character classes and case folding: protocol names, domains and our account names compare
// case-insensitively; UTF-8 octets stay as they are (never letters here, whatever the locale).
#pragma once

#include <string>
#include <string_view>

namespace ferry::util {

inline bool is_wsp(char c) { return c == ' ' || c == '\t'; }   // RFC 5234 WSP
inline bool is_alpha(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
inline bool is_digit(char c) { return c >= '0' && c <= '9'; }
inline char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// RFC 5322 3.2.3 atext (ASCII only: callers that allow RFC 6532 UTF-8 say so themselves).
inline bool is_atext(char c) {
    return is_alpha(c) || is_digit(c) || (c != '\0' && std::string_view("!#$%&'*+-/=?^_`{|}~").find(c) != std::string_view::npos);
}

// A header field name (RFC 5322 2.2): printable US-ASCII other than ':', at least one, at most 126 octets (so
// "Name: " and a value still fit the 998-octet line of RFC 5322 2.1.1 with room to spare).
inline bool is_field_name(std::string_view name) {
    if (name.empty() || name.size() > 126) return false;
    for (const char c : name) {
        const auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u >= 0x7F || c == ':') return false;
    }
    return true;
}

// RFC 2045 5.1: a token is printable ASCII but SPACE and these tspecials.
inline bool is_tspecial(char c) { return c != '\0' && std::string_view("()<>@,;:\\\"/[]?=").find(c) != std::string_view::npos; }
inline bool is_mime_token_char(char c) {
    const auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u < 0x7F && !is_tspecial(c);
}

// Upper-case hex digits, as quoted-printable (RFC 2045 6.7) and RFC 2231 percent-encoding write them.
inline constexpr std::string_view kUpperHex = "0123456789ABCDEF";

inline bool ascii_iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
    return true;
}

inline std::string ascii_lower(std::string_view text) {
    std::string out(text);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

inline std::string ascii_upper(std::string_view text) {
    std::string out(text);
    for (char& c : out)
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    return out;
}

}  // namespace ferry::util
