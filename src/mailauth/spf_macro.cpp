#include "mailauth/spf_macro.hpp"

#include "util/ascii.hpp"

#include <algorithm>
#include <vector>

namespace ferry::mailauth {

namespace {

using util::is_alpha;
using util::is_digit;
constexpr auto lower = [](char c) { return util::ascii_lower(c); };

// An expansion longer than this keeps only its last kExpansionKeep octets as it grows: RFC 7208 7.3 truncation
// looks at no more than the last kSpfMaxDomainLength + 1 of them, so the result is the same and a record full
// of %{s} costs no more memory than one.
constexpr std::size_t kExpansionWindow = 4096;
constexpr std::size_t kExpansionKeep = 1024;
static_assert(kExpansionKeep > kSpfMaxDomainLength + 1);
// RFC 7208 7.3: a digit transformer must work up to at least 127; any count is read, saturating here (far more
// parts than any value can have, so a saturated count still means "all of them").
constexpr std::size_t kMaxTransformerCount = 1000000;

bool is_alnum(char c) { return is_alpha(c) || is_digit(c); }

// RFC 7208 7.1 macro-literal: visible characters except "%".
bool is_macro_literal(char c) {
    const auto u = static_cast<unsigned char>(c);
    return u >= 0x21 && u <= 0x7e && u != '%';
}

bool is_delimiter(char c) {
    return c == '.' || c == '-' || c == '+' || c == ',' || c == '/' || c == '_' || c == '=';
}

bool is_macro_letter(char c) {
    switch (lower(c)) {
    case 's': case 'l': case 'o': case 'd': case 'i': case 'p': case 'h': case 'c': case 'r': case 't': case 'v':
        return true;
    default:
        return false;
    }
}

// RFC 7208 7.2: c, r and t only in explanation text.
bool is_explanation_only(char c) {
    const char l = lower(c);
    return l == 'c' || l == 'r' || l == 't';
}

struct Macro {
    char letter = 's';         // as written: upper case asks for URL escaping
    std::size_t digits = 0;    // 0: all parts
    bool reverse = false;
    std::string_view delimiters;   // "" means "."
};

// One piece of a macro-string: literal text (to copy) or a macro (to expand).
struct Piece {
    bool is_macro = false;
    std::string_view literal;
    Macro macro;
};

bool fail(std::string* error, const char* why) {
    if (error) *error = why;
    return false;
}

// Walks `text`, handing each piece to `sink` in order. Returns false (with `error`) on the first syntax error;
// `ends_in_macro` tells whether the last piece was a macro-expand, and `tail_start` where the final run of
// macro-literals begins (for the domain-end check).
template <typename Sink>
bool walk(std::string_view text, MacroContext context, Sink&& sink, std::string* error,
          bool* ends_in_macro = nullptr, std::size_t* tail_start = nullptr) {
    std::size_t at = 0;
    std::size_t run = 0;   // start of the current run of literal octets
    bool last_macro = false;
    auto flush = [&](std::size_t end) {
        if (end > run) sink(Piece{false, text.substr(run, end - run), {}});
    };
    while (at < text.size()) {
        const char c = text[at];
        if (c != '%') {
            if (!is_macro_literal(c) && !(c == ' ' && context == MacroContext::explanation))
                return fail(error, c == ' ' ? "space in a domain-spec" : "character not allowed in a macro-string");
            last_macro = false;
            ++at;
            continue;
        }
        flush(at);
        if (at + 1 >= text.size()) return fail(error, "'%' at the end of a macro-string");
        const char next = text[at + 1];
        if (next == '%' || next == '_' || next == '-') {
            sink(Piece{false, next == '%' ? std::string_view("%") : next == '_' ? std::string_view(" ")
                                                                                 : std::string_view("%20"),
                       {}});
            at += 2;
        } else if (next == '{') {
            at += 2;
            if (at >= text.size() || !is_macro_letter(text[at])) return fail(error, "unknown macro letter");
            Macro m;
            m.letter = text[at++];
            if (context == MacroContext::domain_spec && is_explanation_only(m.letter))
                return fail(error, "macro c, r or t outside an explanation");
            bool has_digits = false;
            while (at < text.size() && is_digit(text[at])) {
                has_digits = true;
                m.digits = std::min(m.digits * 10 + static_cast<std::size_t>(text[at] - '0'), kMaxTransformerCount);
                ++at;
            }
            if (has_digits && m.digits == 0) return fail(error, "macro transformer of zero parts");   // 7.3
            if (at < text.size() && lower(text[at]) == 'r') {
                m.reverse = true;
                ++at;
            }
            const std::size_t delims = at;
            while (at < text.size() && is_delimiter(text[at])) ++at;
            m.delimiters = text.substr(delims, at - delims);
            if (at >= text.size() || text[at] != '}') return fail(error, "malformed macro");
            ++at;
            sink(Piece{true, {}, m});
        } else {
            return fail(error, "'%' not followed by '{', '%', '_' or '-'");
        }
        last_macro = true;
        run = at;
    }
    flush(at);
    if (ends_in_macro) *ends_in_macro = last_macro;
    if (tail_start) *tail_start = last_macro ? text.size() : run;
    return true;
}

// RFC 7208 7.1 toplabel: LDH, not starting or ending with "-", and not all digits (an alphanumeric label needs
// an ALPHA; one with a "-" inside may be digits only).
bool is_toplabel(std::string_view label) {
    if (label.empty() || !is_alnum(label.front()) || !is_alnum(label.back())) return false;
    bool alpha = false, dash = false;
    for (const char c : label) {
        if (c == '-') dash = true;
        else if (is_alpha(c)) alpha = true;
        else if (!is_digit(c)) return false;
    }
    return alpha || dash;
}

const std::string& value_of(const MacroValues& v, char letter) {
    switch (lower(letter)) {
    case 's': return v.sender;
    case 'l': return v.local_part;
    case 'o': return v.sender_domain;
    case 'd': return v.domain;
    case 'i': return v.ip;
    case 'p': return v.ptr_name;
    case 'v': return v.ip_version;
    case 'h': return v.helo;
    case 'c': return v.client_ip;
    case 'r': return v.receiver;
    default: return v.timestamp;
    }
}

// RFC 7208 7.3: split on the delimiters (default "."), optionally reverse, keep the rightmost `digits` parts,
// join with "."; upper-case letters are then URL-escaped.
std::string expand_macro(const Macro& m, const MacroValues& values) {
    const std::string& value = value_of(values, m.letter);
    const std::string_view delimiters = m.delimiters.empty() ? std::string_view(".") : m.delimiters;
    std::vector<std::string_view> parts;
    std::size_t start = 0;
    for (std::size_t i = 0; i <= value.size(); ++i) {
        if (i == value.size() || delimiters.find(value[i]) != std::string_view::npos) {
            parts.push_back(std::string_view(value).substr(start, i - start));
            start = i + 1;
        }
    }
    if (m.reverse) std::reverse(parts.begin(), parts.end());
    std::size_t first = 0;
    if (m.digits != 0 && m.digits < parts.size()) first = parts.size() - m.digits;
    std::string out;
    for (std::size_t i = first; i < parts.size(); ++i) {
        if (i > first) out.push_back('.');
        out.append(parts[i]);
    }
    if (m.letter >= 'A' && m.letter <= 'Z') return url_escape(out);
    return out;
}

}  // namespace

std::string ip_macro_text(const IpAddress& ip) {
    if (!ip.v6) return to_string(ip);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(63);
    for (std::size_t i = 0; i < 16; ++i) {
        if (i) out.push_back('.');
        out.push_back(kHex[ip.bytes[i] >> 4]);
        out.push_back('.');
        out.push_back(kHex[ip.bytes[i] & 0x0f]);
    }
    return out;
}

std::string_view ip_version_text(const IpAddress& ip) { return ip.v6 ? "ip6" : "in-addr"; }

bool uses_macro_letter(std::string_view text, char letter) {
    bool found = false;
    walk(text, MacroContext::explanation, [&](const Piece& p) {
        if (p.is_macro && lower(p.macro.letter) == letter) found = true;
    }, nullptr);
    return found;
}

bool check_macro_string(std::string_view text, MacroContext context, std::string* error) {
    return walk(text, context, [](const Piece&) {}, error);
}

bool check_domain_spec(std::string_view text, std::string* error) {
    bool ends_in_macro = false;
    std::size_t tail = 0;
    if (!walk(text, MacroContext::domain_spec, [](const Piece&) {}, error, &ends_in_macro, &tail)) return false;
    if (text.empty()) return fail(error, "empty domain-spec");
    if (ends_in_macro) return true;
    std::string_view run = text.substr(tail);
    if (!run.empty() && run.back() == '.') run.remove_suffix(1);
    const std::size_t dot = run.rfind('.');
    if (dot == std::string_view::npos) return fail(error, "domain-spec without a '.' before its last label");
    if (!is_toplabel(run.substr(dot + 1))) return fail(error, "domain-spec ends in an invalid top label");
    return true;
}

std::optional<std::string> expand_domain_spec(std::string_view text, const MacroValues& values) {
    if (!check_domain_spec(text)) return std::nullopt;
    std::string out;
    auto append = [&](std::string_view piece) {
        out.append(piece);
        if (out.size() > kExpansionWindow) out.erase(0, out.size() - kExpansionKeep);
    };
    walk(text, MacroContext::domain_spec, [&](const Piece& p) {
        if (p.is_macro) append(expand_macro(p.macro, values));
        else append(p.literal);
    }, nullptr);
    // RFC 7208 7.1 allows a trailing dot in the domain-end; the name is the same without it.
    if (!out.empty() && out.back() == '.') out.pop_back();
    return truncate_domain(out);
}

std::optional<std::string> expand_explanation(std::string_view text, const MacroValues& values) {
    if (!check_macro_string(text, MacroContext::explanation)) return std::nullopt;
    std::string out;
    walk(text, MacroContext::explanation, [&](const Piece& p) {
        if (out.size() >= kSpfMaxExplanationLength) return;
        if (p.is_macro) out.append(expand_macro(p.macro, values));
        else out.append(p.literal);
        if (out.size() > kSpfMaxExplanationLength) out.resize(kSpfMaxExplanationLength);
    }, nullptr);
    for (char& c : out) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u > 0x7e) c = '?';
    }
    return out;
}

std::string truncate_domain(std::string_view name) {
    if (name.size() <= kSpfMaxDomainLength) return std::string(name);
    // The first label boundary from which at most kSpfMaxDomainLength octets remain; none: everything goes.
    const std::size_t from = name.size() - kSpfMaxDomainLength;   // the earliest start that fits
    const std::size_t dot = name.find('.', from - 1);
    if (dot == std::string_view::npos) return {};
    return std::string(name.substr(dot + 1));
}

std::string url_escape(std::string_view text) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(text.size());
    for (const char c : text) {
        if (is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            out.push_back(c);
        } else {
            const auto u = static_cast<unsigned char>(c);
            out.push_back('%');
            out.push_back(kHex[u >> 4]);
            out.push_back(kHex[u & 0x0f]);
        }
    }
    return out;
}

}  // namespace ferry::mailauth
