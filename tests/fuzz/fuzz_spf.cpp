// The SPF record parser and macro expander (mailauth/spf_record, spf_macro) on arbitrary text with arbitrary
// macro values: records and explanations come from anyone's DNS, the values from the SMTP client.
//
// Input: lines separated by "\n": the record, a macro-string, then the values local-part, sender domain,
// <domain>, HELO, client address, validated PTR name, receiver (missing lines take defaults).
//
// Invariants beyond "no crash":
// - a record built around the macro-string line (a:<it>/<n>//<m>, include:<it>, redirect=<it>, ...) parses iff
//   the line is a valid domain-spec, into exactly the parts it was built from;
// - an accepted record prints back (to_string) into text that parses to the same terms, and printing is
//   idempotent; its terms are well formed (CIDR lengths in range, families right, domain-specs valid, redirect=
//   and exp= at most once) and their count is the number of space-separated pieces; appending " -all" to it
//   gives the same terms plus one; a rejected one says why in one short printable line;
// - the macro expander agrees with a second, naive expander written here from RFC 7208 7 (no window, no early
//   stop): same syntax verdicts, and the same text once the naive result is truncated as 7.3 says (domain-specs)
//   or cut and cleaned as 6.2 allows (explanations); domain-spec expansions are at most 253 octets;
// - truncate_domain() keeps the longest label-aligned suffix that fits;
// - spf_check_domain() is idempotent and its result is a usable name; parse_client_address() round-trips.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fuzz_check.hpp"
#include "mailauth/spf_macro.hpp"
#include "mailauth/spf_record.hpp"

using namespace ferry;
using namespace ferry::mailauth;

namespace {

// Past this the naive expander gives up (its output is unbounded by design); the real one is still checked
// for its bounds.
constexpr std::size_t kNaiveLimit = 1 << 16;

bool printable(std::string_view s) {
    for (const char c : s)
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) return false;
    return true;
}

bool alnum(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// RFC 7208 7.1 toplabel, read straight off its two ABNF alternatives.
bool naive_toplabel(std::string_view l) {
    if (l.empty()) return false;
    bool all_alnum = true, has_alpha = false, has_dash = false;
    for (const char c : l) {
        if (c == '-') has_dash = true, all_alnum = false;
        else if (!alnum(c)) return false;
        if (alpha(c)) has_alpha = true;
    }
    if (all_alnum && has_alpha) return true;                        // *alphanum ALPHA *alphanum
    return has_dash && alnum(l.front()) && alnum(l.back());        // 1*alphanum "-" *(alphanum / "-") alphanum
}

struct Naive {
    bool ok = false;
    bool too_big = false;
    bool domain_end = false;   // ends in a macro-expand or in "." toplabel [ "." ]
    bool uses_p = false;
    std::string text;
};

// RFC 7208 7.1-7.3, as plainly as possible: find the "}", read letter, digits, "r", delimiters off the body.
Naive naive_expand(std::string_view m, const MacroValues& v, bool explanation) {
    Naive n;
    bool last_macro = false;
    std::size_t tail = 0;
    std::size_t i = 0;
    while (i < m.size()) {
        if (n.text.size() > kNaiveLimit) {
            n.too_big = true;
            return n;
        }
        const char c = m[i];
        if (c != '%') {
            const auto u = static_cast<unsigned char>(c);
            if (!((u >= 0x21 && u <= 0x7e) || (explanation && c == ' '))) return n;
            if (last_macro) tail = i;
            last_macro = false;
            n.text.push_back(c);
            ++i;
            continue;
        }
        if (i + 1 >= m.size()) return n;
        const char next = m[i + 1];
        if (next == '%' || next == '_' || next == '-') {
            n.text += next == '%' ? "%" : next == '_' ? " " : "%20";
            i += 2;
            last_macro = true;
            continue;
        }
        if (next != '{') return n;
        const std::size_t close = m.find('}', i);
        if (close == std::string_view::npos) return n;
        const std::string_view body = m.substr(i + 2, close - i - 2);
        if (body.empty()) return n;
        const char letter = body[0];
        const char lo = static_cast<char>(letter | 0x20);
        const std::string* value = nullptr;
        switch (alpha(letter) ? lo : '?') {
        case 's': value = &v.sender; break;
        case 'l': value = &v.local_part; break;
        case 'o': value = &v.sender_domain; break;
        case 'd': value = &v.domain; break;
        case 'i': value = &v.ip; break;
        case 'p': value = &v.ptr_name; n.uses_p = true; break;
        case 'v': value = &v.ip_version; break;
        case 'h': value = &v.helo; break;
        case 'c': value = explanation ? &v.client_ip : nullptr; break;
        case 'r': value = explanation ? &v.receiver : nullptr; break;
        case 't': value = explanation ? &v.timestamp : nullptr; break;
        default: break;
        }
        if (!value) return n;
        std::size_t k = 1;
        std::string digits;
        while (k < body.size() && body[k] >= '0' && body[k] <= '9') digits += body[k++];
        bool reverse = false;
        if (k < body.size() && (body[k] == 'r' || body[k] == 'R')) reverse = true, ++k;
        std::string delimiters(body.substr(k));
        for (const char d : delimiters)
            if (std::string_view(".-+,/_=").find(d) == std::string_view::npos) return n;
        if (delimiters.empty()) delimiters = ".";
        std::size_t keep = 0;   // 0: all
        if (!digits.empty()) {
            const std::size_t nz = digits.find_first_not_of('0');
            if (nz == std::string::npos) return n;   // zero parts
            const std::string significant = digits.substr(nz);
            keep = significant.size() > 6 ? 1000000 : std::stoul(significant);
        }
        std::vector<std::string> parts(1);
        for (const char ch : *value) {
            if (delimiters.find(ch) != std::string::npos) parts.emplace_back();
            else parts.back().push_back(ch);
        }
        if (reverse) std::reverse(parts.begin(), parts.end());
        if (keep && keep < parts.size()) parts.erase(parts.begin(), parts.end() - static_cast<long>(keep));
        std::string joined;
        for (std::size_t p = 0; p < parts.size(); ++p) joined += (p ? "." : "") + parts[p];
        if (letter >= 'A' && letter <= 'Z') {
            std::string escaped;
            for (const char ch : joined) {
                if (alnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
                    escaped.push_back(ch);
                } else {
                    static const char* hex = "0123456789ABCDEF";
                    escaped += '%';
                    escaped += hex[static_cast<unsigned char>(ch) >> 4];
                    escaped += hex[static_cast<unsigned char>(ch) & 15];
                }
            }
            joined = escaped;
        }
        n.text += joined;
        i = close + 1;
        last_macro = true;
    }
    n.ok = true;
    if (last_macro) {
        n.domain_end = true;
    } else {
        std::string_view run = m.substr(tail);
        if (!run.empty() && run.back() == '.') run.remove_suffix(1);
        const std::size_t dot = run.rfind('.');
        n.domain_end = !m.empty() && dot != std::string_view::npos && naive_toplabel(run.substr(dot + 1));
    }
    return n;
}

void check_truncation(std::string_view x) {
    const std::string r = truncate_domain(x);
    FUZZ_CHECK(r.size() <= kSpfMaxDomainLength);
    FUZZ_CHECK(x.substr(x.size() - r.size()) == r);
    if (x.size() <= kSpfMaxDomainLength) {
        FUZZ_CHECK(r == x);
        return;
    }
    // The chosen cut is the first "." from which the rest fits; no cut: nothing fits.
    const std::size_t earliest = x.size() - kSpfMaxDomainLength - 1;   // a dot here leaves exactly 253
    const std::size_t first_dot = x.find('.', earliest);
    if (first_dot == std::string_view::npos) FUZZ_CHECK(r.empty());
    else FUZZ_CHECK(r.size() == x.size() - first_dot - 1);
}

void check_macros(std::string_view m, const MacroValues& values) {
    const Naive as_domain = naive_expand(m, values, false);
    const Naive as_text = naive_expand(m, values, true);

    const bool spec_ok = check_domain_spec(m);
    const auto spec = expand_domain_spec(m, values);
    FUZZ_CHECK(spec_ok == spec.has_value());
    FUZZ_CHECK(!spec_ok || check_macro_string(m, MacroContext::domain_spec));
    FUZZ_CHECK(check_macro_string(m, MacroContext::domain_spec) == as_domain.ok || as_domain.too_big);
    if (!as_domain.too_big) FUZZ_CHECK(spec_ok == (as_domain.ok && as_domain.domain_end));
    if (spec) {
        FUZZ_CHECK(spec->size() <= kSpfMaxDomainLength);
        if (!as_domain.too_big) {
            std::string full = as_domain.text;
            if (!full.empty() && full.back() == '.') full.pop_back();
            FUZZ_CHECK(*spec == truncate_domain(full));
        }
    }

    const auto text = expand_explanation(m, values);
    FUZZ_CHECK(text.has_value() == check_macro_string(m, MacroContext::explanation));
    FUZZ_CHECK(text.has_value() == as_text.ok || as_text.too_big);
    if (text) {
        FUZZ_CHECK(text->size() <= kSpfMaxExplanationLength);
        FUZZ_CHECK(printable(*text));
        if (!as_text.too_big) {
            std::string expected = as_text.text.substr(0, kSpfMaxExplanationLength);
            for (char& c : expected)
                if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
            FUZZ_CHECK(*text == expected);
        }
        if (!as_text.too_big) FUZZ_CHECK(uses_macro_letter(m, 'p') == as_text.uses_p);
    }
}

// Records built around a macro-string `m` parse into exactly the parts they were built from, and only when
// `m` is a valid domain-spec: the parser neither loses nor invents a domain-spec or CIDR length. `pick` varies
// the qualifier and lengths.
void check_built_records(std::string_view m, std::size_t pick) {
    if (m.find(' ') != std::string_view::npos) return;   // would split into two terms
    const bool valid = check_domain_spec(m);
    const std::string spec(m);
    const char qualifiers[] = {'+', '-', '~', '?'};
    const char qualifier = qualifiers[pick % 4];
    const int c4 = static_cast<int>(pick % 33), c6 = static_cast<int>(pick % 129);
    const bool has4 = pick & 4, has6 = pick & 8;
    // A line ending in "/" or "/" DIGITs is no domain-spec, but after "a:" and with lengths appended it can
    // read as one with (other) CIDR lengths.
    const std::size_t slash = m.rfind('/');
    const bool ends_in_length = slash != std::string_view::npos &&
                                m.find_first_not_of("0123456789", slash + 1) == std::string_view::npos;
    for (const char* name : {"a", "mx"}) {
        if (ends_in_length) break;
        std::string text = std::string("v=spf1 ") + qualifier + name + ":" + spec;
        if (has4) text += "/" + std::to_string(c4);
        if (has6) text += "//" + std::to_string(c6);
        const auto r = parse_spf_record(text);
        FUZZ_CHECK(r.has_value() == valid);
        if (!r) continue;
        FUZZ_CHECK(r->terms.size() == 1);
        const SpfTerm& t = r->terms[0];
        FUZZ_CHECK(t.kind == SpfTerm::Kind::directive && t.domain_spec == spec);
        FUZZ_CHECK(static_cast<char>(t.qualifier) == qualifier);
        FUZZ_CHECK(t.mechanism == (name[0] == 'a' ? SpfMechanism::a : SpfMechanism::mx));
        FUZZ_CHECK(t.cidr4 == (has4 ? c4 : kSpfMaxCidr4) && t.cidr6 == (has6 ? c6 : kSpfMaxCidr6));
    }
    for (const char* name : {"include:", "exists:", "ptr:", "redirect=", "exp="}) {
        const auto r = parse_spf_record(std::string("v=spf1 ") + name + spec);
        FUZZ_CHECK(r.has_value() == valid);
        if (!r) continue;
        FUZZ_CHECK(r->terms.size() == 1);
        const SpfTerm& t = r->terms[0];
        FUZZ_CHECK((t.kind == SpfTerm::Kind::modifier ? t.value : t.domain_spec) == spec);
    }
}

void check_record(std::string_view text) {
    std::string why;
    const auto record = parse_spf_record(text, &why);
    if (!record) {
        FUZZ_CHECK(!why.empty() && why.size() <= 120 && printable(why));
        return;
    }
    FUZZ_CHECK(is_spf_record(text));
    FUZZ_CHECK(printable(text));
    std::size_t pieces = 0;
    for (std::size_t i = 6; i < text.size(); ++i)
        if (text[i] != ' ' && text[i - 1] == ' ') ++pieces;
    FUZZ_CHECK(record->terms.size() == pieces);

    int redirects = 0, exps = 0;
    for (const auto& t : record->terms) {
        if (t.kind == SpfTerm::Kind::modifier) {
            FUZZ_CHECK(!t.name.empty() && alpha(t.name[0]));
            if (t.name == "redirect" || t.name == "exp") {
                ++(t.name == "exp" ? exps : redirects);
                FUZZ_CHECK(check_domain_spec(t.value));
            }
            FUZZ_CHECK(check_macro_string(t.value, MacroContext::explanation));
            continue;
        }
        FUZZ_CHECK(t.cidr4 >= 0 && t.cidr4 <= kSpfMaxCidr4 && t.cidr6 >= 0 && t.cidr6 <= kSpfMaxCidr6);
        switch (t.mechanism) {
        case SpfMechanism::ip4: FUZZ_CHECK(!t.network.v6 && t.cidr6 == kSpfMaxCidr6); break;
        case SpfMechanism::ip6: FUZZ_CHECK(t.network.v6 && t.cidr4 == kSpfMaxCidr4); break;
        case SpfMechanism::all: FUZZ_CHECK(t.domain_spec.empty() && t.cidr4 == 32 && t.cidr6 == 128); break;
        case SpfMechanism::include:
        case SpfMechanism::exists: FUZZ_CHECK(!t.domain_spec.empty()); [[fallthrough]];
        default:
            FUZZ_CHECK(t.domain_spec.empty() || check_domain_spec(t.domain_spec));
            if (t.mechanism != SpfMechanism::a && t.mechanism != SpfMechanism::mx)
                FUZZ_CHECK(t.cidr4 == kSpfMaxCidr4 && t.cidr6 == kSpfMaxCidr6);
            break;
        }
    }
    FUZZ_CHECK(redirects <= 1 && exps <= 1);
    FUZZ_CHECK((redirects == 1) == (record->redirect() != nullptr));
    FUZZ_CHECK((exps == 1) == (record->explanation() != nullptr));

    const std::string printed = to_string(*record);
    std::string why2;
    const auto again = parse_spf_record(printed, &why2);
    FUZZ_CHECK(again.has_value());
    FUZZ_CHECK(*again == *record);
    FUZZ_CHECK(to_string(*again) == printed);

    const auto longer = parse_spf_record(std::string(text) + " -all");
    FUZZ_CHECK(longer.has_value() && longer->terms.size() == record->terms.size() + 1);
    FUZZ_CHECK(std::equal(record->terms.begin(), record->terms.end(), longer->terms.begin()));
    FUZZ_CHECK(longer->terms.back().mechanism == SpfMechanism::all &&
               longer->terms.back().qualifier == SpfQualifier::fail);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input = fuzz::as_text(data, size);
    std::vector<std::string_view> lines;
    std::size_t at = 0;
    while (lines.size() < 9) {
        const std::size_t nl = input.find('\n', at);
        lines.push_back(input.substr(at, nl == std::string_view::npos ? std::string_view::npos : nl - at));
        if (nl == std::string_view::npos) break;
        at = nl + 1;
    }
    auto line = [&](std::size_t i, std::string_view fallback) {
        return std::string(i < lines.size() ? lines[i] : fallback);
    };

    check_record(lines[0]);
    check_truncation(lines[0]);

    const std::string client = line(6, "192.0.2.3");
    const auto parsed_ip = parse_client_address(client);
    if (parsed_ip) {
        const auto back = parse_client_address(to_string(*parsed_ip));
        FUZZ_CHECK(back && *back == *parsed_ip);
        FUZZ_CHECK(ip_macro_text(*parsed_ip).size() == (parsed_ip->v6 ? 63u : to_string(*parsed_ip).size()));
    }
    const IpAddress ip = parsed_ip ? *parsed_ip : *parse_client_address("192.0.2.3");

    MacroValues v;
    v.local_part = line(2, "strong-bad");
    v.sender_domain = line(3, "email.example.com");
    v.sender = v.local_part + "@" + v.sender_domain;
    v.domain = line(4, "email.example.com");
    v.helo = line(5, "mx.example.org");
    v.ip = ip_macro_text(ip);
    v.ip_version = std::string(ip_version_text(ip));
    v.client_ip = to_string(ip);
    v.ptr_name = line(7, "unknown");
    v.receiver = line(8, "mx.example.net");
    v.timestamp = "1700000000";
    if (lines.size() > 1) {
        check_macros(lines[1], v);
        check_built_records(lines[1], size);
    }

    for (const std::string& d : {v.domain, v.helo, v.sender_domain}) {
        const auto usable = spf_check_domain(d);
        if (!usable) continue;
        FUZZ_CHECK(usable->size() <= kSpfMaxDomainLength && !usable->empty() && usable->back() != '.');
        FUZZ_CHECK(usable->find('.') != std::string::npos && usable->find("..") == std::string::npos);
        FUZZ_CHECK(spf_check_domain(*usable) == usable);
    }
    return 0;
}
