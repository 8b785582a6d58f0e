#include "mailauth/dmarc_record.hpp"

#include "util/ascii.hpp"

#include <map>

#include "mailauth/tag_list.hpp"

namespace ferry::mailauth {
namespace {

using util::is_wsp;
using util::is_alpha;
using util::is_digit;
constexpr auto lower = [](char c) { return util::ascii_lower(c); };
constexpr auto iequals = util::ascii_iequals;

bool is_hex(char c) { return is_digit(c) || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f'); }



std::string_view trim(std::string_view s) {
    auto ws = [](char c) { return is_wsp(c) || c == '\r' || c == '\n'; };
    while (!s.empty() && ws(s.front())) s.remove_prefix(1);
    while (!s.empty() && ws(s.back())) s.remove_suffix(1);
    return s;
}

std::optional<Disposition> parse_disposition(std::string_view v) {
    if (iequals(v, "none")) return Disposition::none;
    if (iequals(v, "quarantine")) return Disposition::quarantine;
    if (iequals(v, "reject")) return Disposition::reject;
    return std::nullopt;
}

// RFC 3986 2.2, 2.3: the characters of a URI; ',' and '!' excluded, as RFC 7489 6.4 says they MUST be
// percent-encoded in a dmarc-uri ('%' is checked by the caller).
bool is_uri_char(char c) {
    if (is_alpha(c) || is_digit(c)) return true;
    switch (c) {
    case '-': case '.': case '_': case '~':                                    // unreserved
    case ':': case '/': case '?': case '#': case '[': case ']': case '@':      // gen-delims
    case '$': case '&': case '\'': case '(': case ')': case '*': case '+': case ';': case '=':   // sub-delims
        return true;
    default:
        return false;
    }
}

// "1*DIGIT" as a number no larger than `max`.
std::optional<std::uint32_t> parse_number(std::string_view v, std::uint32_t max) {
    if (v.empty()) return std::nullopt;
    std::uint64_t n = 0;
    for (const char c : v) {
        if (!is_digit(c)) return std::nullopt;
        n = n * 10 + static_cast<std::uint64_t>(c - '0');
        if (n > max) return std::nullopt;
    }
    return static_cast<std::uint32_t>(n);
}

// Splits on `sep`, each part without surrounding whitespace ("a : b" -> "a", "b").
std::vector<std::string_view> split(std::string_view v, char sep) {
    std::vector<std::string_view> parts;
    std::size_t at = 0;
    for (;;) {
        const std::size_t next = v.find(sep, at);
        parts.push_back(trim(v.substr(at, next == std::string_view::npos ? std::string_view::npos : next - at)));
        if (next == std::string_view::npos) return parts;
        at = next + 1;
    }
}

// dmarc-fo (RFC 7489 6.4): ("0" / "1" / "d" / "s") *(*WSP ":" *WSP ("0" / "1" / "d" / "s")).
std::optional<std::string> parse_failure_options(std::string_view v) {
    std::string out;
    for (const auto part : split(v, ':')) {
        if (part.size() != 1 || std::string_view("01ds").find(lower(part[0])) == std::string_view::npos)
            return std::nullopt;
        if (!out.empty()) out.push_back(':');
        out.push_back(lower(part[0]));
    }
    return out;
}

// dmarc-rfmt (RFC 7489 6.4): Keyword *(*WSP ":" Keyword), Keyword as in RFC 5321 4.1.2 (Let-dig [Ldh-str]).
std::optional<std::string> parse_report_format(std::string_view v) {
    std::string out;
    for (const auto part : split(v, ':')) {
        if (part.empty() || part.back() == '-' || !(is_alpha(part[0]) || is_digit(part[0]))) return std::nullopt;
        for (const char c : part)
            if (!is_alpha(c) && !is_digit(c) && c != '-') return std::nullopt;
        if (!out.empty()) out.push_back(':');
        out.append(part);
    }
    return out;
}

// dmarc-auri / dmarc-furi: dmarc-uri *(*WSP "," *WSP dmarc-uri). The valid URIs; invalid ones are syntax
// errors and dropped (6.3), `bad` counts them.
std::vector<std::string> parse_uris(std::string_view v, std::size_t& bad) {
    std::vector<std::string> out;
    for (const auto part : split(v, ',')) {
        if (is_dmarc_uri(part)) out.emplace_back(part);
        else ++bad;
    }
    return out;
}

void note(std::string& problem, std::string_view what) {
    if (!problem.empty()) problem += ", ";
    problem += what;
}

std::nullopt_t fail(std::string* error, std::string why) {
    if (error) *error = std::move(why);
    return std::nullopt;
}

}  // namespace

bool is_dmarc_record(std::string_view text) {
    std::size_t at = 0;
    if (text.empty() || text[0] != 'v') return false;
    ++at;
    while (at < text.size() && is_wsp(text[at])) ++at;
    if (at == text.size() || text[at] != '=') return false;
    ++at;
    while (at < text.size() && is_wsp(text[at])) ++at;
    if (text.substr(at, 6) != "DMARC1") return false;
    at += 6;
    while (at < text.size() && is_wsp(text[at])) ++at;
    return at == text.size() || text[at] == ';';
}

bool is_dmarc_uri(std::string_view text) {
    const std::size_t bang = text.find('!');
    const std::string_view uri = text.substr(0, bang);
    if (bang != std::string_view::npos) {   // "!" 1*DIGIT [ "k" / "m" / "g" / "t" ]
        std::string_view size = text.substr(bang + 1);
        if (!size.empty() && std::string_view("kmgt").find(lower(size.back())) != std::string_view::npos)
            size.remove_suffix(1);
        if (size.empty()) return false;
        for (const char c : size)
            if (!is_digit(c)) return false;
    }
    // scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) (RFC 3986 3.1)
    if (uri.empty() || !is_alpha(uri[0])) return false;
    std::size_t at = 1;
    while (at < uri.size() && (is_alpha(uri[at]) || is_digit(uri[at]) || uri[at] == '+' || uri[at] == '-' ||
                               uri[at] == '.'))
        ++at;
    if (at == uri.size() || uri[at] != ':' || at + 1 == uri.size()) return false;
    for (++at; at < uri.size(); ++at) {
        if (uri[at] == '%') {   // pct-encoded = "%" HEXDIG HEXDIG
            if (at + 2 >= uri.size() || !is_hex(uri[at + 1]) || !is_hex(uri[at + 2])) return false;
            at += 2;
        } else if (!is_uri_char(uri[at])) {
            return false;
        }
    }
    return true;
}

std::optional<DmarcRecord> parse_dmarc_record(std::string_view text, std::string* error) {
    if (!is_dmarc_record(text)) return fail(error, "not a DMARC record (v=DMARC1 must come first)");

    // Each tag-spec on its own, so one broken spec does not take the record with it (6.3). Values cannot hold
    // ';' (RFC 6376 3.2 VALCHAR), so splitting on it first is safe.
    std::map<std::string, std::string, std::less<>> tags;
    std::map<std::string, int, std::less<>> seen;
    DmarcRecord record;
    bool first = true;
    std::size_t at = 0;
    while (at <= text.size()) {
        std::size_t end = text.find(';', at);
        if (end == std::string_view::npos) end = text.size();
        const std::string_view spec = text.substr(at, end - at);
        at = end + 1;
        std::string why;
        const auto list = parse_tag_list(spec, &why);
        if (!list) {
            note(record.problem, "tag-spec ignored (" + why + ")");
            continue;
        }
        if (list->tags.empty()) continue;   // an empty tag-spec ("p=none; ;")
        const Tag& tag = list->tags.front();
        if (first) {   // is_dmarc_record() checked it is v=DMARC1
            first = false;
            continue;
        }
        if (++seen[tag.name] == 1) tags[tag.name] = tag.value;
    }
    auto value = [&](std::string_view name) -> const std::string* {
        const auto it = tags.find(name);
        if (it == tags.end()) return nullptr;
        if (seen.find(name)->second > 1) {
            note(record.problem, std::string(name) + "= given more than once, ignored");
            return nullptr;
        }
        return &it->second;
    };

    std::size_t bad_uris = 0;
    if (const auto* v = value("rua")) record.rua = parse_uris(*v, bad_uris);
    if (const auto* v = value("ruf")) record.ruf = parse_uris(*v, bad_uris);
    if (bad_uris) note(record.problem, std::to_string(bad_uris) + " invalid report URI(s) ignored");

    std::string policy_problem;
    const std::string* p = value("p");
    const auto policy = p ? parse_disposition(*p) : std::nullopt;
    if (!p) policy_problem = "no valid p= tag";
    else if (!policy) policy_problem = "invalid p=" + *p;
    else record.policy = *policy;
    if (const auto* sp = value("sp")) {
        if (const auto d = parse_disposition(*sp)) record.subdomain_policy = *d;
        else note(policy_problem, "invalid sp=" + *sp);
    } else if (seen.count("sp")) {
        note(policy_problem, "sp= given more than once");
    }
    if (!policy_problem.empty()) {
        if (record.rua.empty()) return fail(error, policy_problem + " and no valid rua=");
        // 6.6.3 step 6.1: as if the record were "v=DMARC1; p=none".
        record.policy = Disposition::none;
        record.subdomain_policy.reset();
        record.assumed_none = true;
        note(record.problem, policy_problem + ": acting as p=none");
    }

    auto alignment = [&](const char* name, bool& strict) {
        const auto* v = value(name);
        if (!v) return;
        if (iequals(*v, "s")) strict = true;
        else if (!iequals(*v, "r")) note(record.problem, std::string(name) + "=" + *v + " ignored");
    };
    alignment("adkim", record.strict_dkim);
    alignment("aspf", record.strict_spf);
    if (const auto* v = value("pct")) {
        // dmarc-percent = "pct" *WSP "=" *WSP 1*3DIGIT, an integer percentage (6.3)
        const auto n = v->size() <= 3 ? parse_number(*v, 100) : std::nullopt;
        if (n) record.percent = static_cast<int>(*n);
        else note(record.problem, "pct=" + *v + " ignored");
    }
    if (const auto* v = value("fo")) {
        if (const auto fo = parse_failure_options(*v)) record.failure_options = *fo;
        else note(record.problem, "fo=" + *v + " ignored");
    }
    if (const auto* v = value("rf")) {
        if (const auto rf = parse_report_format(*v)) record.report_format = *rf;
        else note(record.problem, "rf=" + *v + " ignored");
    }
    if (const auto* v = value("ri")) {
        if (const auto n = parse_number(*v, 0xFFFFFFFFu)) record.report_interval = *n;
        else note(record.problem, "ri=" + *v + " ignored");
    }
    return record;
}

}  // namespace ferry::mailauth
