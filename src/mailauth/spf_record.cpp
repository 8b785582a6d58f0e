#include "mailauth/spf_record.hpp"

#include "util/ascii.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include "mailauth/spf_macro.hpp"

namespace ferry::mailauth {

namespace {

using util::is_alpha;
using util::is_digit;
constexpr auto lower = [](char c) { return util::ascii_lower(c); };
constexpr auto iequals = util::ascii_iequals;

// RFC 1035 2.3.4 / RFC 7208 4.3.
constexpr std::size_t kMaxLabelLength = 63;
// How much of a bad term a parse error quotes.
constexpr std::size_t kQuotedTermLength = 40;
constexpr std::string_view kVersion = "v=spf1";



bool all_digits(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), is_digit);
}

// RFC 7208 4.6.1 name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ): its length at the start of `s`, 0 if none.
std::size_t modifier_name_length(std::string_view s) {
    if (s.empty() || !is_alpha(s[0])) return 0;
    std::size_t n = 1;
    while (n < s.size() && (is_alpha(s[n]) || is_digit(s[n]) || s[n] == '-' || s[n] == '_' || s[n] == '.')) ++n;
    return n;
}

// RFC 7208 5.6: ip4-cidr-length = "/" ( "0" / %x31-39 0*1DIGIT ), ip6-cidr-length = "/" ( "0" / %x31-39 0*2DIGIT ),
// with values up to 32 and 128. `digits` is what follows the "/".
std::optional<int> parse_cidr(std::string_view digits, int max) {
    if (!all_digits(digits) || digits.size() > 3 || (digits.size() > 1 && digits[0] == '0')) return std::nullopt;
    int v = 0;
    for (const char c : digits) v = v * 10 + (c - '0');
    if (v > max) return std::nullopt;
    return v;
}

// RFC 7208 5.6 ip4-network = qnum "." qnum "." qnum "." qnum, qnum = 0..255 without leading zeros.
std::optional<IpAddress> parse_ip4_network(std::string_view s) {
    IpAddress ip;
    for (int i = 0; i < 4; ++i) {
        std::size_t n = 0;
        while (n < s.size() && is_digit(s[n])) ++n;
        const std::string_view q = s.substr(0, n);
        if (q.empty() || q.size() > 3 || (q.size() > 1 && q[0] == '0')) return std::nullopt;
        int v = 0;
        for (const char c : q) v = v * 10 + (c - '0');
        if (v > 255) return std::nullopt;
        ip.bytes[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v);
        s.remove_prefix(n);
        if (i < 3) {
            if (s.empty() || s[0] != '.') return std::nullopt;
            s.remove_prefix(1);
        }
    }
    if (!s.empty()) return std::nullopt;
    return ip;
}

// RFC 7208 5.6 ip6-network: RFC 4291 2.2 text (hex groups, "::", a dotted quad at the end).
std::optional<IpAddress> parse_ip6_network(std::string_view s) {
    if (s.empty() || s.size() >= INET6_ADDRSTRLEN) return std::nullopt;
    for (const char c : s)
        if (!(is_digit(c) || (lower(c) >= 'a' && lower(c) <= 'f') || c == ':' || c == '.')) return std::nullopt;
    char text[INET6_ADDRSTRLEN] = {};
    std::memcpy(text, s.data(), s.size());
    IpAddress ip;
    ip.v6 = true;
    if (::inet_pton(AF_INET6, text, ip.bytes.data()) != 1) return std::nullopt;
    return ip;
}

std::string quote_term(std::string_view term) {
    std::string out;
    for (const char c : term.substr(0, kQuotedTermLength)) {
        const auto u = static_cast<unsigned char>(c);
        out.push_back(u >= 0x20 && u <= 0x7e && c != '"' ? c : '?');
    }
    if (term.size() > kQuotedTermLength) out += "...";
    return out;
}

// A domain-spec after "mechanism:", "" when the mechanism has no ":" part. `args` is what follows the name.
// Returns the error, or nullptr.
const char* take_domain_spec(std::string_view args, bool required, std::string& domain_spec) {
    if (args.empty()) return required ? "domain-spec required" : nullptr;
    if (args[0] != ':') return "unexpected text after the mechanism name";
    args.remove_prefix(1);
    if (!check_domain_spec(args)) return args.empty() ? "empty domain-spec" : "invalid domain-spec";
    domain_spec = std::string(args);
    return nullptr;
}

// a and mx: [ ":" domain-spec ] [ ip4-cidr-length ] [ "/" ip6-cidr-length ]. A domain-spec cannot end in
// "/" DIGITs (it ends in a toplabel or a macro), so the lengths are read from the right: a "/" inside the
// domain-spec (a macro-literal) stays in it.
const char* take_dual_cidr(std::string_view args, SpfTerm& term) {
    const std::size_t slash = args.rfind('/');
    if (slash != std::string_view::npos && all_digits(args.substr(slash + 1))) {
        const std::string_view digits = args.substr(slash + 1);
        if (slash > 0 && args[slash - 1] == '/') {
            const auto v6 = parse_cidr(digits, kSpfMaxCidr6);
            if (!v6) return "invalid IPv6 CIDR length";
            term.cidr6 = *v6;
            args = args.substr(0, slash - 1);
            const std::size_t slash4 = args.rfind('/');
            if (slash4 != std::string_view::npos && all_digits(args.substr(slash4 + 1))) {
                const auto v4 = parse_cidr(args.substr(slash4 + 1), kSpfMaxCidr4);
                if (!v4) return "invalid IPv4 CIDR length";
                term.cidr4 = *v4;
                args = args.substr(0, slash4);
            }
        } else {
            const auto v4 = parse_cidr(digits, kSpfMaxCidr4);
            if (!v4) return "invalid IPv4 CIDR length";
            term.cidr4 = *v4;
            args = args.substr(0, slash);
        }
    }
    return take_domain_spec(args, false, term.domain_spec);
}

// ip4 / ip6: ":" network [ "/" length ].
const char* take_network(std::string_view args, SpfTerm& term) {
    if (args.empty() || args[0] != ':') return "address required";
    args.remove_prefix(1);
    const bool v6 = term.mechanism == SpfMechanism::ip6;
    const std::size_t slash = args.find('/');
    const std::string_view net = args.substr(0, slash);
    const auto ip = v6 ? parse_ip6_network(net) : parse_ip4_network(net);
    if (!ip) return v6 ? "invalid IPv6 address" : "invalid IPv4 address";
    term.network = *ip;
    if (slash != std::string_view::npos) {
        const auto len = parse_cidr(args.substr(slash + 1), v6 ? kSpfMaxCidr6 : kSpfMaxCidr4);
        if (!len) return v6 ? "invalid IPv6 CIDR length" : "invalid IPv4 CIDR length";
        (v6 ? term.cidr6 : term.cidr4) = *len;
    }
    return nullptr;
}

struct MechanismName {
    std::string_view name;
    SpfMechanism mechanism;
};
constexpr MechanismName kMechanisms[] = {
    {"all", SpfMechanism::all}, {"include", SpfMechanism::include}, {"a", SpfMechanism::a},
    {"mx", SpfMechanism::mx},   {"ptr", SpfMechanism::ptr},         {"ip4", SpfMechanism::ip4},
    {"ip6", SpfMechanism::ip6}, {"exists", SpfMechanism::exists},
};

// One term; nullptr or the error.
const char* parse_term(std::string_view text, SpfTerm& term) {
    const std::size_t name_length = modifier_name_length(text);
    if (name_length > 0 && name_length < text.size() && text[name_length] == '=') {
        term.kind = SpfTerm::Kind::modifier;
        const std::string_view name = text.substr(0, name_length);
        const std::string_view value = text.substr(name_length + 1);
        // redirect and exp take a domain-spec; a malformed one is an error, not an unknown modifier.
        if (iequals(name, "redirect") || iequals(name, "exp")) {
            term.name = iequals(name, "exp") ? "exp" : "redirect";
            if (!check_domain_spec(value)) return value.empty() ? "empty domain-spec" : "invalid domain-spec";
        } else {
            term.name = std::string(name);
            // unknown-modifier = name "=" macro-string: ignored, but its macros must be well formed. Spaces
            // cannot occur (terms are split on them), so this is the macro-string of any context.
            if (!check_macro_string(value, MacroContext::explanation)) return "invalid macro in a modifier";
        }
        term.value = std::string(value);
        return nullptr;
    }
    term.kind = SpfTerm::Kind::directive;
    if (!text.empty() && (text[0] == '+' || text[0] == '-' || text[0] == '~' || text[0] == '?')) {
        term.qualifier = static_cast<SpfQualifier>(text[0]);
        text.remove_prefix(1);
    }
    const std::size_t end = std::min(text.find(':'), text.find('/'));
    const std::string_view name = text.substr(0, end);
    const std::string_view args = end == std::string_view::npos ? std::string_view() : text.substr(end);
    const auto it = std::find_if(std::begin(kMechanisms), std::end(kMechanisms),
                                 [&](const MechanismName& m) { return iequals(m.name, name); });
    if (it == std::end(kMechanisms)) return "unknown mechanism";
    term.mechanism = it->mechanism;
    switch (term.mechanism) {
    case SpfMechanism::all:
        return args.empty() ? nullptr : "\"all\" takes no argument";
    case SpfMechanism::include:
    case SpfMechanism::exists:
        return take_domain_spec(args, true, term.domain_spec);
    case SpfMechanism::ptr:
        return take_domain_spec(args, false, term.domain_spec);
    case SpfMechanism::a:
    case SpfMechanism::mx:
        return take_dual_cidr(args, term);
    case SpfMechanism::ip4:
    case SpfMechanism::ip6:
        return take_network(args, term);
    }
    return "unknown mechanism";
}

const std::string* modifier(const SpfRecord& r, std::string_view name) {
    for (const auto& t : r.terms)
        if (t.kind == SpfTerm::Kind::modifier && t.name == name) return &t.value;
    return nullptr;
}

}  // namespace

std::optional<IpAddress> parse_client_address(std::string_view text) {
    if (text.empty() || text.size() >= INET6_ADDRSTRLEN || text.find('\0') != std::string_view::npos)
        return std::nullopt;
    char buf[INET6_ADDRSTRLEN] = {};
    std::memcpy(buf, text.data(), text.size());
    IpAddress ip;
    if (::inet_pton(AF_INET, buf, ip.bytes.data()) == 1) return ip;
    if (::inet_pton(AF_INET6, buf, ip.bytes.data()) != 1) return std::nullopt;
    ip.v6 = true;
    // ::ffff:a.b.c.d (RFC 4291 2.5.5.2) is the IPv4 client a.b.c.d.
    static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(ip.bytes.data(), kMapped, sizeof kMapped) == 0) {
        IpAddress v4;
        std::copy(ip.bytes.begin() + 12, ip.bytes.end(), v4.bytes.begin());
        return v4;
    }
    return ip;
}

bool in_network(const IpAddress& ip, const IpAddress& network, int prefix) {
    if (ip.v6 != network.v6) return false;
    prefix = std::clamp(prefix, 0, ip.v6 ? kSpfMaxCidr6 : kSpfMaxCidr4);
    std::size_t i = 0;
    for (; prefix >= 8; prefix -= 8, ++i)
        if (ip.bytes[i] != network.bytes[i]) return false;
    if (prefix == 0) return true;
    const auto mask = static_cast<std::uint8_t>(0xff << (8 - prefix));
    return (ip.bytes[i] & mask) == (network.bytes[i] & mask);
}

std::string to_string(const IpAddress& ip) {
    char text[INET6_ADDRSTRLEN] = {};
    if (!::inet_ntop(ip.v6 ? AF_INET6 : AF_INET, ip.bytes.data(), text, sizeof text)) return "?";
    return text;
}

std::string_view to_string(SpfMechanism m) {
    for (const auto& entry : kMechanisms)
        if (entry.mechanism == m) return entry.name;
    return "?";
}

const std::string* SpfRecord::redirect() const { return modifier(*this, "redirect"); }
const std::string* SpfRecord::explanation() const { return modifier(*this, "exp"); }

bool SpfRecord::has_all() const {
    return std::any_of(terms.begin(), terms.end(), [](const SpfTerm& t) {
        return t.kind == SpfTerm::Kind::directive && t.mechanism == SpfMechanism::all;
    });
}

std::optional<std::string> spf_check_domain(std::string_view name) {
    if (!name.empty() && name.back() == '.') name.remove_suffix(1);
    if (name.empty() || name.size() > kSpfMaxDomainLength) return std::nullopt;
    std::size_t labels = 0;
    std::string_view last;
    std::size_t start = 0;
    for (std::size_t i = 0; i <= name.size(); ++i) {
        if (i < name.size() && name[i] != '.') {
            const char c = name[i];
            if (!(is_alpha(c) || is_digit(c) || c == '-' || c == '_')) return std::nullopt;
            continue;
        }
        const std::string_view label = name.substr(start, i - start);
        if (label.empty() || label.size() > kMaxLabelLength) return std::nullopt;
        ++labels;
        last = label;
        start = i + 1;
    }
    if (labels < 2 || all_digits(last)) return std::nullopt;
    return std::string(name);
}

bool is_spf_record(std::string_view txt) {
    return txt.size() >= kVersion.size() && iequals(txt.substr(0, kVersion.size()), kVersion) &&
           (txt.size() == kVersion.size() || txt[kVersion.size()] == ' ');
}

std::optional<SpfRecord> parse_spf_record(std::string_view text, std::string* error) {
    if (!is_spf_record(text)) {
        if (error) *error = "not a v=spf1 record";
        return std::nullopt;
    }
    SpfRecord record;
    bool seen_redirect = false, seen_exp = false;
    std::size_t at = kVersion.size();
    while (at < text.size()) {
        if (text[at] == ' ') {   // terms are separated by 1*SP; trailing SP allowed (record = version terms *SP)
            ++at;
            continue;
        }
        std::size_t end = text.find(' ', at);
        if (end == std::string_view::npos) end = text.size();
        const std::string_view piece = text.substr(at, end - at);
        at = end;
        SpfTerm term;
        const char* why = parse_term(piece, term);
        if (!why && term.kind == SpfTerm::Kind::modifier) {
            // RFC 7208 6: redirect and exp each at most once.
            bool& seen = term.name == "redirect" ? seen_redirect : seen_exp;
            if (term.name == "redirect" || term.name == "exp") {
                if (seen) why = term.name == "redirect" ? "redirect= given twice" : "exp= given twice";
                seen = true;
            }
        }
        if (why) {
            if (error) *error = std::string(why) + " in \"" + quote_term(piece) + "\"";
            return std::nullopt;
        }
        record.terms.push_back(std::move(term));
    }
    return record;
}

std::string to_string(const SpfTerm& t) {
    if (t.kind == SpfTerm::Kind::modifier) return t.name + "=" + t.value;
    std::string out;
    if (t.qualifier != SpfQualifier::pass) out.push_back(static_cast<char>(t.qualifier));
    out.append(to_string(t.mechanism));
    switch (t.mechanism) {
    case SpfMechanism::ip4:
        out += ":" + to_string(t.network);
        if (t.cidr4 != kSpfMaxCidr4) out += "/" + std::to_string(t.cidr4);
        break;
    case SpfMechanism::ip6:
        out += ":" + to_string(t.network);
        if (t.cidr6 != kSpfMaxCidr6) out += "/" + std::to_string(t.cidr6);
        break;
    default:
        if (!t.domain_spec.empty()) out += ":" + t.domain_spec;
        if (t.mechanism == SpfMechanism::a || t.mechanism == SpfMechanism::mx) {
            if (t.cidr4 != kSpfMaxCidr4) out += "/" + std::to_string(t.cidr4);
            if (t.cidr6 != kSpfMaxCidr6) out += "//" + std::to_string(t.cidr6);
        }
        break;
    }
    return out;
}

std::string to_string(const SpfRecord& record) {
    std::string out(kVersion);
    for (const auto& t : record.terms) out += " " + to_string(t);
    return out;
}

}  // namespace ferry::mailauth
