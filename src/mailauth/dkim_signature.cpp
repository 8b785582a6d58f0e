#include "mailauth/dkim_signature.hpp"

#include "mailauth/tag_list.hpp"
#include "util/ascii.hpp"

namespace ferry::mailauth {
namespace {

using util::is_digit;

bool is_alnum(char c) { return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// A header field name (RFC 5322 3.6.8 ftext: printable US-ASCII except ':').
bool valid_field_name(std::string_view name) {
    if (name.empty()) return false;
    for (const char c : name) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 33 || u > 126 || c == ':') return false;
    }
    return true;
}

std::optional<std::uint64_t> parse_digits(std::string_view s, std::size_t max_digits) {
    if (s.empty() || s.size() > max_digits) return std::nullopt;
    std::uint64_t v = 0;
    for (const char c : s) {
        if (!is_digit(c)) return std::nullopt;
        const auto d = static_cast<std::uint64_t>(c - '0');
        v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;   // saturates (only l= can be that long)
    }
    return v;
}

std::optional<DkimCanon> parse_canon(std::string_view s) {
    const std::string l = util::ascii_lower(s);
    if (l == "simple") return DkimCanon::simple;
    if (l == "relaxed") return DkimCanon::relaxed;
    return std::nullopt;
}

}  // namespace

bool valid_domain_name(std::string_view name) {
    if (name.empty() || name.size() > kMaxDomainLength) return false;
    std::size_t label = 0;
    for (const char c : name) {
        if (c == '.') {
            if (label == 0) return false;
            label = 0;
            continue;
        }
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '-' || c == '_';
        if (!ok || ++label > kMaxLabelLength) return false;
    }
    return label > 0;
}

bool is_same_or_subdomain(std::string_view identity_domain, std::string_view domain) {
    const std::string a = util::ascii_lower(identity_domain), d = util::ascii_lower(domain);
    if (d.empty()) return false;
    if (a == d) return true;
    return a.size() > d.size() && a.ends_with(d) && a[a.size() - d.size() - 1] == '.';
}

DkimSignatureParse parse_dkim_signature(std::string_view value) {
    DkimSignatureParse r;
    DkimSignature& sig = r.signature;
    if (value.ends_with("\r\n")) value.remove_suffix(2);
    else if (value.ends_with('\n')) value.remove_suffix(1);
    std::string why;
    const auto tags = parse_tag_list(value, &why);
    if (!tags) {
        r.error = "malformed tag list: " + why;
        return r;
    }
    auto get = [&](std::string_view name) { return tags->find(name); };
    // The fields an outcome reports, before any check, so a permerror still says whose signature it was.
    if (const auto* d = get("d")) sig.domain = *d;
    if (const auto* s = get("s")) sig.selector = *s;
    if (const auto* a = get("a")) sig.algorithm_name = util::ascii_lower(*a);
    if (const auto* b = get("b")) sig.signature_b = strip_whitespace(*b);
    sig.identity = get("i") ? *get("i") : "@" + sig.domain;

    auto fail = [&](std::string message) {
        r.error = std::move(message);
        return r;
    };
    const auto* v = get("v");
    if (!v) return fail("v= is missing");
    if (*v != "1") return fail("unsupported version v=" + *v);
    for (const char* required : {"a", "b", "bh", "d", "h", "s"})
        if (!get(required)) return fail(std::string(required) + "= is missing");

    if (sig.algorithm_name == "rsa-sha256") sig.algorithm = DkimAlgorithm::rsa_sha256;
    else if (sig.algorithm_name == "ed25519-sha256") sig.algorithm = DkimAlgorithm::ed25519_sha256;
    else if (sig.algorithm_name == "rsa-sha1") return fail("rsa-sha1 is no longer accepted (RFC 8301)");
    else return fail("unknown algorithm a=" + sig.algorithm_name);

    const auto b = base64_decode(sig.signature_b);
    if (!b) return fail("b= is not valid base64");
    if (b->empty()) return fail("b= is empty");
    sig.signature = *b;
    const auto bh = base64_decode(strip_whitespace(*get("bh")));
    if (!bh) return fail("bh= is not valid base64");
    sig.body_hash = *bh;

    if (const auto* c = get("c")) {
        const std::string_view cv = *c;
        const std::size_t slash = cv.find('/');
        const auto head = parse_canon(cv.substr(0, slash));
        const auto body = slash == std::string_view::npos ? std::optional(DkimCanon::simple)
                                                          : parse_canon(cv.substr(slash + 1));
        if (!head || !body) return fail("unknown canonicalization c=" + *c);
        sig.header_canon = *head;
        sig.body_canon = *body;
    }

    if (!valid_domain_name(sig.domain)) return fail("d= is not a domain name");
    if (!valid_domain_name(sig.selector)) return fail("s= is not a valid selector");

    bool has_from = false;
    for (const auto name : split_colon_list(*get("h"))) {
        if (!valid_field_name(name)) return fail("h= holds an empty or invalid field name");
        if (util::ascii_lower(name) == "from") has_from = true;
        sig.signed_headers.emplace_back(name);
    }
    if (!has_from) return fail("h= does not include From");   // 5.4: From MUST be signed

    if (const auto* i = get("i")) {
        const std::size_t at = i->rfind('@');
        if (at == std::string::npos) return fail("i= has no '@'");
        if (!is_same_or_subdomain(std::string_view(*i).substr(at + 1), sig.domain))
            return fail("i= domain is not d= or a subdomain of it");
    }

    if (const auto* l = get("l")) {
        const auto n = parse_digits(*l, kMaxBodyLengthDigits);
        if (!n) return fail("l= is not a number");
        sig.body_length = *n;
    }

    if (const auto* q = get("q")) {
        bool dns_txt = false;
        for (const auto method : split_colon_list(*q))
            if (util::ascii_lower(method) == "dns/txt") dns_txt = true;
        if (!dns_txt) return fail("q= offers no supported query method (only dns/txt)");
    }

    if (const auto* t = get("t")) {
        const auto n = parse_digits(*t, kMaxTimestampDigits);
        if (!n) return fail("t= is not a timestamp");
        sig.timestamp = static_cast<std::int64_t>(*n);
    }
    if (const auto* x = get("x")) {
        const auto n = parse_digits(*x, kMaxTimestampDigits);
        if (!n) return fail("x= is not a timestamp");
        sig.expiration = static_cast<std::int64_t>(*n);
        // 3.5: "the value of the x= tag MUST be greater than the value of the t= tag if both are present".
        if (sig.timestamp && *sig.expiration <= *sig.timestamp) return fail("x= is not after t=");
    }
    return r;
}

std::string remove_b_value(std::string_view raw) {
    std::size_t end = raw.size();   // the value ends before the field's final line break
    if (raw.ends_with("\r\n")) end -= 2;
    else if (raw.ends_with('\n')) --end;
    const std::size_t colon = raw.find(':');
    if (colon == std::string_view::npos || colon >= end) return std::string(raw);
    std::size_t at = colon + 1;
    while (at < end) {
        std::size_t seg_end = raw.find(';', at);
        if (seg_end == std::string_view::npos || seg_end > end) seg_end = end;
        std::size_t p = at;
        while (p < seg_end && is_fws(raw[p])) ++p;
        const std::size_t name_start = p;
        while (p < seg_end && (is_alnum(raw[p]) || raw[p] == '_')) ++p;
        const std::string_view name = raw.substr(name_start, p - name_start);
        while (p < seg_end && is_fws(raw[p])) ++p;
        if (name == "b" && p < seg_end && raw[p] == '=') {
            std::string out(raw.substr(0, p + 1));
            out.append(raw.substr(seg_end));
            return out;
        }
        at = seg_end + 1;
    }
    return std::string(raw);
}

}  // namespace ferry::mailauth
