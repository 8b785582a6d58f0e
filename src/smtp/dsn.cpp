#include "smtp/dsn.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

#include "smtp/address.hpp"
#include "util/ascii.hpp"

namespace ferry::smtp {
namespace {

constexpr char kHexDigits[] = "0123456789ABCDEF";

// RFC 3461 4 hexchar: upper case only.
int upper_hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// RFC 6533 HEXPOINT is ABNF HEXDIG, which is case-insensitive.
int hex_value(char c) { return upper_hex_value(c >= 'a' && c <= 'f' ? static_cast<char>(c - 32) : c); }

// RFC 3461 4.2/4.4: the decoded ORCPT and ENVID are "printable (graphic and white space)" US-ASCII.
bool printable_ascii(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return (c >= 0x20 && c <= 0x7E) || c == '\t'; });
}

// RFC 5322 atext: an atom's characters (RFC 3461 4.2 addr-type = atom).
bool is_atom(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               (c != 0 && std::strchr("!#$%&'*+-/=?^_`{|}~", c) != nullptr);
    });
}

void append_utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
}

// RFC 6533 3 utf-8-addr-xtext / utf-8-addr-unitext: QCHAR (printable ASCII but '+', '=', '\'), raw UTF-8, and
// "\x{HEX}" for any other character. Simpler than HEXPOINT (which also forbids needless escapes and leading
// zeros): any scalar value is taken, and the result must be an RFC 6531 mailbox, which also rejects malformed
// UTF-8 and control characters.
std::optional<std::string> utf8_addr_decode(std::string_view text) {
    std::string out;
    for (std::size_t i = 0; i < text.size();) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c == '\\') {
            if (text.substr(i, 3) != "\\x{") return std::nullopt;
            const std::size_t close = text.find('}', i + 3);
            if (close == std::string_view::npos || close == i + 3 || close - (i + 3) > 6) return std::nullopt;
            unsigned cp = 0;
            for (const char h : text.substr(i + 3, close - (i + 3))) {
                const int v = hex_value(h);
                if (v < 0) return std::nullopt;
                cp = cp * 16 + static_cast<unsigned>(v);
            }
            if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return std::nullopt;
            append_utf8(out, cp);
            i = close + 1;
            continue;
        }
        if (c < 33 || c == 127 || c == '+' || c == '=') return std::nullopt;
        out.push_back(static_cast<char>(c));
        ++i;
    }
    if (!parse_mailbox(out)) return std::nullopt;
    return out;
}

}  // namespace

std::optional<std::string> xtext_decode(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c < 33 || c > 126 || c == '=') return std::nullopt;
        if (c != '+') {
            out.push_back(text[i]);
            continue;
        }
        if (text.size() - i < 3) return std::nullopt;
        const int hi = upper_hex_value(text[i + 1]);
        const int lo = upper_hex_value(text[i + 2]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
    }
    return out;
}

std::string xtext_encode(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (const char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        if (c >= 33 && c <= 126 && c != '+' && c != '=') {
            out.push_back(ch);
        } else {
            out.push_back('+');
            out.push_back(kHexDigits[c >> 4]);
            out.push_back(kHexDigits[c & 0xF]);
        }
    }
    return out;
}

namespace {
constexpr std::pair<NotifyFlag, std::string_view> kNotifyNames[] = {
    {kNotifySuccess, "SUCCESS"}, {kNotifyFailure, "FAILURE"}, {kNotifyDelay, "DELAY"}};
}

std::optional<unsigned> parse_notify(std::string_view value) {
    if (util::ascii_upper(value) == "NEVER") return kNotifyNever;
    unsigned bits = 0;
    std::size_t start = 0;
    while (true) {
        const std::size_t comma = value.find(',', start);
        const std::string item = util::ascii_upper(value.substr(start, comma - start));
        unsigned bit = 0;
        for (const auto& [flag, name] : kNotifyNames)
            if (item == name) bit = flag;
        if (bit == 0 || (bits & bit) != 0) return std::nullopt;   // unknown, empty, NEVER in a list, repeated
        bits |= bit;
        if (comma == std::string_view::npos) return bits;
        start = comma + 1;
    }
}

std::optional<Ret> parse_ret(std::string_view value) {
    const std::string v = util::ascii_upper(value);
    if (v == "FULL") return Ret::full;
    if (v == "HDRS") return Ret::hdrs;
    return std::nullopt;
}

bool valid_envid(std::string_view value) {
    const auto decoded = xtext_decode(value);
    return decoded && !decoded->empty() && decoded->size() <= kMaxEnvidLength && printable_ascii(*decoded);
}

std::optional<std::string> decode_orcpt(std::string_view value) {
    if (value.size() > kMaxOrcptLength) return std::nullopt;
    const std::size_t semi = value.find(';');
    if (semi == std::string_view::npos || !is_atom(value.substr(0, semi))) return std::nullopt;
    const std::string type = util::ascii_lower(value.substr(0, semi));
    const std::string_view text = value.substr(semi + 1);
    const bool utf8 = type == "utf-8";
    const auto address = utf8 ? utf8_addr_decode(text) : xtext_decode(text);
    if (!address || address->empty() || (!utf8 && !printable_ascii(*address))) return std::nullopt;
    return type + ";" + *address;
}

}  // namespace ferry::smtp
