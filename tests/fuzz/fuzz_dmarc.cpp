// The pure parts of DMARC and Authentication-Results on arbitrary input: the DMARC record parser, the
// RFC5322.From domain of a header section, the authserv-id reader, the Public Suffix List (as a list and as a
// name asked about), and the Authentication-Results builder fed hostile strings (the input cut at NUL octets,
// each piece a field of an outcome).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_check.hpp"
#include "mailauth/auth_results.hpp"
#include "mailauth/dmarc_record.hpp"
#include "mailauth/from_domain.hpp"
#include "mailauth/public_suffix.hpp"
#include "util/ascii.hpp"

using namespace ferry;
using namespace ferry::mailauth;

namespace {

bool has_upper(std::string_view s) {
    for (const char c : s)
        if (c >= 'A' && c <= 'Z') return true;
    return false;
}

const PublicSuffixList& small_list() {
    static const PublicSuffixList list =
        PublicSuffixList::parse("com\nuk\nco.uk\n*.ck\n!www.ck\njp\n*.kawasaki.jp\n!city.kawasaki.jp\n公司.cn\ngithub.io\n");
    return list;
}

void check_record(std::string_view text) {
    std::string error;
    const auto r = parse_dmarc_record(text, &error);
    if (!r) {
        FUZZ_CHECK(!error.empty());
        return;
    }
    FUZZ_CHECK(is_dmarc_record(text));
    FUZZ_CHECK(r->percent >= 0 && r->percent <= 100);
    for (const auto& u : r->rua) FUZZ_CHECK(is_dmarc_uri(u) && u.size() <= text.size());
    for (const auto& u : r->ruf) FUZZ_CHECK(is_dmarc_uri(u) && u.size() <= text.size());
    if (r->assumed_none) FUZZ_CHECK(r->policy == Disposition::none && !r->subdomain_policy && !r->rua.empty());
}

void check_from(std::string_view header) {
    std::string problem;
    const auto d = from_domain(header, problem);
    if (!d) {
        FUZZ_CHECK(!problem.empty());
        return;
    }
    FUZZ_CHECK(problem.empty());
    FUZZ_CHECK(!d->empty() && d->size() <= kMaxDomainOctets && !has_upper(*d));
    FUZZ_CHECK(d->front() != '.' && d->back() != '.' && d->find("..") == std::string::npos);
    FUZZ_CHECK(d->find_first_of("@[]() \t\r\n\"") == std::string::npos);
}

// The organizational domain is a suffix of the name, at a label boundary, and ends with the public suffix.
void check_suffixes(const PublicSuffixList& list, std::string_view domain) {
    std::string name = util::ascii_lower(domain);
    if (!name.empty() && name.back() == '.') name.pop_back();
    const std::string org = list.organizational_domain(domain);
    FUZZ_CHECK(org.size() <= name.size() && name.compare(name.size() - org.size(), org.size(), org) == 0);
    FUZZ_CHECK(org.size() == name.size() || name[name.size() - org.size() - 1] == '.');
    const std::string suffix = list.public_suffix(domain);
    FUZZ_CHECK(suffix.size() <= org.size() && org.compare(org.size() - suffix.size(), suffix.size(), suffix) == 0);
}

// One field, printable ASCII, folded only at CRLF TAB, ending in CRLF; lines within RFC 5322's 998 octets
// (the first holds the authserv-id, which is configuration, not input); and our authserv-id reads back.
void check_field(const std::string& field, const std::string& authserv_id) {
    FUZZ_CHECK(field.starts_with("Authentication-Results: "));
    FUZZ_CHECK(field.size() >= 2 && field.ends_with("\r\n"));
    std::size_t line = 0;
    bool first = true;
    for (std::size_t i = 0; i < field.size(); ++i) {
        const char c = field[i];
        if (c == '\r') {
            FUZZ_CHECK(i + 1 < field.size() && field[i + 1] == '\n');
            FUZZ_CHECK(i + 2 == field.size() || field[i + 2] == '\t');
            FUZZ_CHECK(first || line <= 998);
            first = false;
            line = 0;
            ++i;
            continue;
        }
        FUZZ_CHECK((c >= 0x20 && c <= 0x7e) || (c == '\t' && i > 0 && field[i - 1] == '\n'));
        ++line;
    }
    std::string expected = util::ascii_lower(authserv_id);
    for (char& c : expected)
        if (c < 0x20 || c > 0x7e) c = '?';
    const auto id = authserv_id_of(std::string_view(field).substr(field.find(':') + 1));
    FUZZ_CHECK(id && *id == expected);
}

void check_auth_results(const std::uint8_t* data, std::size_t size, std::string_view text) {
    std::vector<std::string> parts;
    std::size_t at = 0;
    for (;;) {
        const std::size_t nul = text.find('\0', at);
        parts.emplace_back(text.substr(at, nul == std::string_view::npos ? std::string_view::npos : nul - at));
        if (nul == std::string_view::npos) break;
        at = nul + 1;
    }
    std::size_t next = 0;
    auto part = [&]() -> const std::string& { return parts[next++ % parts.size()]; };
    auto choice = [&](std::size_t i, int n) { return size > i ? data[i] % n : 0; };

    AuthResultsInput in;
    in.authserv_id = part();
    for (int i = 0; i < choice(0, 3); ++i) {
        SpfOutcome s;
        s.result = static_cast<SpfResult>(choice(1 + i, 7));
        s.identity = i == 0 ? "mailfrom" : "helo";
        s.sender = part();
        s.domain = part();
        s.reason = part();
        in.spf.push_back(s);
    }
    for (int i = 0; i < choice(3, 4); ++i) {
        DkimOutcome d;
        d.result = static_cast<DkimResult>(choice(4 + i, 7));
        d.domain = part();
        d.identity = part();
        d.selector = part();
        d.algorithm = part();
        d.signature_b = part();
        d.reason = part();
        d.testing = choice(8 + i, 2) == 1;
        in.dkim.push_back(d);
    }
    if (choice(12, 2) == 1) {
        DmarcOutcome m;
        m.result = static_cast<DmarcResult>(choice(13, 5));
        m.policy = static_cast<Disposition>(choice(14, 3));
        m.disposition = static_cast<Disposition>(choice(15, 3));
        m.from_domain = part();
        m.reason = part();
        in.dmarc = m;
    }
    const std::string field = authentication_results_field(in);
    check_field(field, in.authserv_id);
    if (in.spf.empty() && in.dkim.empty() && !in.dmarc) FUZZ_CHECK(field.ends_with(";\r\n\tnone\r\n") || field.ends_with("; none\r\n"));

    for (const auto& p : parts) {
        if (const auto v = property_value(p)) {
            FUZZ_CHECK(!v->empty() && v->size() <= 2 * kMaxPropertyValueOctets + 2);
            for (const char c : *v) FUZZ_CHECK(c >= 0x20 && c <= 0x7e);
            // As it was, or quoted.
            FUZZ_CHECK(*v == p || (v->front() == '"' && v->back() == '"'));
        }
        const std::string c = comment_text(p);
        FUZZ_CHECK(c.size() <= kMaxCommentOctets && c.find_first_of("()\\\r\n\t") == std::string::npos);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text = fuzz::as_text(data, size);
    check_record(text);
    check_from(text);
    if (const auto id = authserv_id_of(text)) FUZZ_CHECK(!has_upper(*id) && id->size() <= text.size());
    // The input as a name asked about, and as a list of rules.
    const std::string_view first_line = text.substr(0, text.find('\n'));
    check_suffixes(small_list(), first_line);
    const PublicSuffixList list = PublicSuffixList::parse(text);
    FUZZ_CHECK(list.size() <= size);
    for (const char* name : {"a.b.example.com", "www.ck", "x.y.z.kawasaki.jp", "a.xn--55qx5d.cn", "test"})
        check_suffixes(list, name);
    check_suffixes(list, first_line);
    check_auth_results(data, size, text);
    return 0;
}
