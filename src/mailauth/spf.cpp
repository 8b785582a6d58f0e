#include "mailauth/spf.hpp"

#include "util/ascii.hpp"

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include "dns/resolver.hpp"
#include "dns/wire.hpp"
#include "mailauth/idna.hpp"
#include "mailauth/spf_macro.hpp"
#include "mailauth/spf_record.hpp"

// g++ 12 reports Asio's coroutine frames here as freed by a mismatched operator delete: the frame's own
// operator new/delete pair (a thread-local recycling allocator) seen through inlining, as in
// delivery/smtp_client.cpp. ASan's alloc-dealloc-mismatch check finds no such mismatch.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace ferry::mailauth {

namespace {

namespace asio = boost::asio;
using dns::Answer;

// Reasons go into logs and header comments: one short line. Names and terms are quoted up to
// kMaxQuotedLength octets; a reason built up through nested include/redirect stops at kMaxReasonLength.
constexpr std::size_t kMaxQuotedLength = 64;
constexpr std::size_t kMaxReasonLength = 200;
constexpr std::size_t kMaxLabelLength = 63;   // RFC 1035 2.3.4


// Printable ASCII, cut to kMaxQuotedLength: for names and terms that came from DNS or the client.
std::string quote(std::string_view text) {
    std::string out;
    for (const char c : text.substr(0, kMaxQuotedLength)) {
        const auto u = static_cast<unsigned char>(c);
        out.push_back(u >= 0x20 && u <= 0x7e ? c : '?');
    }
    if (text.size() > kMaxQuotedLength) out += "...";
    return out;
}

std::string bounded(std::string reason) {
    if (reason.size() > kMaxReasonLength) {
        reason.resize(kMaxReasonLength - 3);
        reason += "...";
    }
    return reason;
}

// A <target-name> a query can be made for: the expansion may hold empty labels or labels over 63 octets
// ("a:%{l}.example.com" with an odd local-part). RFC 7208 leaves it open; such a name cannot exist, so it is
// treated as NXDOMAIN (no match, a void lookup) rather than a permerror the sender did not cause.
bool queryable(std::string_view name) {
    if (name.empty()) return false;
    std::size_t start = 0;
    for (std::size_t i = 0; i <= name.size(); ++i) {
        if (i < name.size() && name[i] != '.') continue;
        const std::size_t len = i - start;
        if (len == 0 || len > kMaxLabelLength) return false;
        start = i + 1;
    }
    return true;
}

// `name` is `domain` or below it (RFC 7208 5.5), both lower case without a trailing dot.
bool within_domain(std::string_view name, std::string_view domain) {
    if (name == domain) return true;
    return name.size() > domain.size() && name.substr(name.size() - domain.size()) == domain &&
           name[name.size() - domain.size() - 1] == '.';
}

std::optional<IpAddress> address_from_rdata(std::string_view rdata, bool v6) {
    if (rdata.size() != (v6 ? 16u : 4u)) return std::nullopt;
    IpAddress ip;
    ip.v6 = v6;
    std::copy(rdata.begin(), rdata.end(), ip.bytes.begin());
    return ip;
}

bool is_void(const Answer& a) {
    return a.status == Answer::Status::nxdomain || a.status == Answer::Status::no_data ||
           (a.status == Answer::Status::data && a.rdata.empty());
}

// A domain as check_host() takes it: U-labels converted to A-labels (RFC 7208 4.3), then the 4.3 checks.
std::optional<std::string> usable_domain(std::string_view name) {
    const auto converted = to_a_labels(name);
    if (!converted) return std::nullopt;
    return spf_check_domain(*converted);
}

// The result of one check_host() evaluation, with what an explanation needs: for a fail from a matching
// mechanism, the exp= of the record it matched in and that record's domain (for %{d}).
struct Evaluation {
    SpfResult result = SpfResult::none;
    std::string reason;
    std::optional<std::string> exp;
    std::string exp_domain;
};

// What one mechanism did (RFC 7208 4.6.2): matched, did not, or ended the evaluation with an error.
struct Step {
    enum class Kind { no_match, match, error };
    Kind kind = Kind::no_match;
    SpfResult error = SpfResult::permerror;
    std::string reason;

    static Step no() { return {}; }
    static Step yes() { return {Kind::match, SpfResult::none, {}}; }
    static Step fail(SpfResult r, std::string why) { return {Kind::error, r, std::move(why)}; }
};

SpfResult qualifier_result(SpfQualifier q) {
    switch (q) {
    case SpfQualifier::pass: return SpfResult::pass;
    case SpfQualifier::fail: return SpfResult::fail;
    case SpfQualifier::softfail: return SpfResult::softfail;
    case SpfQualifier::neutral: return SpfResult::neutral;
    }
    return SpfResult::neutral;
}

class Checker {
public:
    Checker(dns::Lookup& dns, const IpAddress& ip, MacroValues values)
        : dns_(dns), ip_(ip), values_(std::move(values)) {}

    // RFC 7208 4: check_host(<ip>, domain, <sender>).
    asio::awaitable<Evaluation> check_host(std::string domain_text) {
        const auto domain = usable_domain(domain_text);
        if (!domain) co_return Evaluation{SpfResult::none, "not a usable domain name: " + quote(domain_text), {}, {}};

        // RFC 7208 4.4 / 4.5: the TXT RRset, and in it exactly one record beginning "v=spf1".
        const Answer answer = co_await dns_.query(util::ascii_lower(*domain), dns::kTypeTxt);
        if (answer.status == Answer::Status::temporary)
            co_return Evaluation{SpfResult::temperror, "DNS failure looking up the SPF record of " + quote(*domain), {}, {}};
        std::vector<std::string> records;
        for (const auto& rdata : answer.rdata) {
            auto text = dns::parse_txt(rdata);
            if (text && is_spf_record(*text)) records.push_back(std::move(*text));
        }
        if (records.empty()) {
            const char* why = answer.status == Answer::Status::nxdomain ? "no SPF record (no such domain)" : "no SPF record";
            co_return Evaluation{SpfResult::none, why, {}, {}};
        }
        if (records.size() > 1) co_return Evaluation{SpfResult::permerror, "more than one SPF record", {}, {}};
        std::string syntax;
        const auto record = parse_spf_record(records.front(), &syntax);
        if (!record) co_return Evaluation{SpfResult::permerror, bounded("syntax error: " + syntax), {}, {}};

        co_return co_await evaluate(*record, *domain);
    }

    // RFC 7208 6.2: the explanation for a fail, "" when there is none to give.
    asio::awaitable<std::string> explanation(const std::string& spec, const std::string& domain) {
        values_.domain = domain;
        if (uses_macro_letter(spec, 'p')) values_.ptr_name = co_await ptr_macro(domain);
        const auto target = expand_domain_spec(spec, values_);
        if (!target || !queryable(*target)) co_return std::string();
        // Not a term of the evaluation: neither the 10-term nor the void limit counts it (RFC 7208 4.6.4).
        const Answer answer = co_await dns_.query(util::ascii_lower(*target), dns::kTypeTxt);
        if (answer.status != Answer::Status::data || answer.rdata.size() != 1) co_return std::string();
        const auto text = dns::parse_txt(answer.rdata.front());
        if (!text) co_return std::string();
        if (uses_macro_letter(*text, 'p')) values_.ptr_name = co_await ptr_macro(domain);
        auto expanded = expand_explanation(*text, values_);
        co_return expanded ? std::move(*expanded) : std::string();
    }

private:
    asio::awaitable<Evaluation> evaluate(const SpfRecord& record, const std::string& domain) {
        for (const auto& term : record.terms) {
            if (term.kind != SpfTerm::Kind::directive) continue;
            const Step step = co_await mechanism(term, domain);
            if (step.kind == Step::Kind::error) co_return Evaluation{step.error, bounded(step.reason), {}, {}};
            if (step.kind == Step::Kind::no_match) continue;
            Evaluation e{qualifier_result(term.qualifier), "matched " + quote(to_string(term)), {}, {}};
            if (e.result == SpfResult::fail && record.explanation()) {
                e.exp = *record.explanation();
                e.exp_domain = domain;
            }
            co_return e;
        }
        // RFC 7208 6.1: redirect= only when nothing matched and there is no "all" anywhere (5.1).
        if (const std::string* redirect = record.redirect(); redirect && !record.has_all()) {
            const std::string what = "redirect=" + quote(*redirect);
            if (!count_dns_term()) co_return Evaluation{SpfResult::permerror, "more than 10 DNS lookups", {}, {}};
            const auto target = co_await target_name(*redirect, domain);
            if (!target) co_return Evaluation{SpfResult::permerror, what + ": not a domain name", {}, {}};
            Evaluation inner = co_await check_host(*target);
            // The redirected record's own exp= counts, never this one's (RFC 7208 6.2).
            if (inner.result == SpfResult::none)
                co_return Evaluation{SpfResult::permerror, bounded(what + ": " + inner.reason), {}, {}};
            inner.reason = bounded(what + ": " + inner.reason);
            co_return inner;
        }
        co_return Evaluation{SpfResult::neutral, "default result neutral (no match, no all)", {}, {}};
    }

    asio::awaitable<Step> mechanism(const SpfTerm& term, const std::string& domain) {
        switch (term.mechanism) {
        case SpfMechanism::all:
            co_return Step::yes();
        case SpfMechanism::ip4:
        case SpfMechanism::ip6:
            co_return in_network(ip_, term.network, term.network.v6 ? term.cidr6 : term.cidr4) ? Step::yes()
                                                                                                 : Step::no();
        default:
            break;
        }
        // Every other mechanism asks DNS (RFC 7208 4.6.4).
        const std::string what = quote(to_string(term));
        if (!count_dns_term()) co_return Step::fail(SpfResult::permerror, "more than 10 DNS lookups");
        const auto target = co_await target_name(term.domain_spec, domain);
        switch (term.mechanism) {
        case SpfMechanism::include: co_return co_await include(term, target, what);
        case SpfMechanism::a: co_return co_await a(term, target, what);
        case SpfMechanism::mx: co_return co_await mx(term, target, what);
        case SpfMechanism::ptr: co_return co_await ptr(target, what);
        case SpfMechanism::exists: co_return co_await exists(target, what);
        default: co_return Step::no();
        }
    }

    // RFC 7208 5.2 and its table: pass matches; fail, softfail and neutral do not; temperror stays temperror;
    // permerror and none become permerror.
    asio::awaitable<Step> include(const SpfTerm&, const std::optional<std::string>& target, const std::string& what) {
        if (!target) co_return Step::fail(SpfResult::permerror, what + ": not a domain name");
        const Evaluation inner = co_await check_host(*target);
        switch (inner.result) {
        case SpfResult::pass: co_return Step::yes();
        case SpfResult::fail:
        case SpfResult::softfail:
        case SpfResult::neutral: co_return Step::no();
        case SpfResult::temperror: co_return Step::fail(SpfResult::temperror, what + ": " + inner.reason);
        case SpfResult::permerror:
        case SpfResult::none: co_return Step::fail(SpfResult::permerror, what + ": " + inner.reason);
        }
        co_return Step::fail(SpfResult::permerror, what);
    }

    // RFC 7208 5.3: A for an IPv4 client, AAAA for IPv6, compared with the CIDR length of that family.
    asio::awaitable<Step> a(const SpfTerm& term, const std::optional<std::string>& target, const std::string& what) {
        const Answer answer = co_await query_target(target, address_type());
        if (answer.status == Answer::Status::temporary)
            co_return Step::fail(SpfResult::temperror, "DNS failure in " + what);
        if (is_void(answer)) co_return void_lookup(what);
        co_return matches_any(answer, term) ? Step::yes() : Step::no();
    }

    // RFC 7208 5.4: the MX names of the target (never an implicit MX), then the addresses of each.
    asio::awaitable<Step> mx(const SpfTerm& term, const std::optional<std::string>& target, const std::string& what) {
        const Answer answer = co_await query_target(target, dns::kTypeMx);
        if (answer.status == Answer::Status::temporary)
            co_return Step::fail(SpfResult::temperror, "DNS failure in " + what);
        if (is_void(answer)) co_return void_lookup(what);
        // RFC 7208 4.6.4: more MX records than may be looked up is a permerror, whatever they would give.
        if (answer.rdata.size() > kSpfMaxMxNames)
            co_return Step::fail(SpfResult::permerror, what + ": more than 10 MX records");
        for (const auto& rdata : answer.rdata) {
            const auto record = dns::parse_mx(rdata);
            if (!record || record->host.empty()) continue;   // unreadable, or the null MX of RFC 7505
            const Answer addresses = co_await dns_.query(record->host, address_type());
            if (addresses.status == Answer::Status::temporary)
                co_return Step::fail(SpfResult::temperror, "DNS failure in " + what);
            if (matches_any(addresses, term)) co_return Step::yes();
        }
        co_return Step::no();
    }

    // RFC 7208 5.5: a validated name of the client (its address among the name's addresses) that is the target
    // or below it. A DNS error on the PTR query is no match; on an address query, that name is skipped.
    asio::awaitable<Step> ptr(const std::optional<std::string>& target, const std::string& what) {
        const auto reverse = dns::reverse_name(to_string(ip_));
        if (!reverse) co_return Step::no();
        const Answer answer = co_await dns_.query(*reverse, dns::kTypePtr);
        if (answer.status == Answer::Status::temporary) co_return Step::no();
        if (is_void(answer)) co_return void_lookup(what);
        if (!target || !queryable(*target)) co_return Step::no();
        const std::string wanted = util::ascii_lower(*target);
        // Only the first kSpfMaxPtrNames names are looked at (4.6.4); of those, only names that could match
        // need validating, which gives the same result with fewer queries.
        const std::size_t n = std::min(answer.rdata.size(), kSpfMaxPtrNames);
        for (std::size_t i = 0; i < n; ++i) {
            const auto name = dns::parse_ptr(answer.rdata[i]);
            if (!name || !within_domain(*name, wanted)) continue;
            if (co_await validates(*name)) co_return Step::yes();
        }
        co_return Step::no();
    }

    // RFC 7208 5.7: any A record, whatever the client's family.
    asio::awaitable<Step> exists(const std::optional<std::string>& target, const std::string& what) {
        const Answer answer = co_await query_target(target, dns::kTypeA);
        if (answer.status == Answer::Status::temporary)
            co_return Step::fail(SpfResult::temperror, "DNS failure in " + what);
        if (is_void(answer)) co_return void_lookup(what);
        co_return Step::yes();
    }

    // The domain-spec expanded into the <target-name> (RFC 7208 4.8: an absent one is <domain>), nullopt when
    // it does not expand (cannot happen for a parsed record). %{p} is looked up only when used.
    asio::awaitable<std::optional<std::string>> target_name(const std::string& spec, const std::string& domain) {
        if (spec.empty()) co_return domain;
        values_.domain = domain;
        if (uses_macro_letter(spec, 'p')) values_.ptr_name = co_await ptr_macro(domain);
        co_return expand_domain_spec(spec, values_);
    }

    // A query for a target-name; a name no query can be made for answers as NXDOMAIN would.
    asio::awaitable<Answer> query_target(const std::optional<std::string>& target, int type) {
        if (!target || !queryable(*target)) {
            Answer none;
            none.status = Answer::Status::nxdomain;
            co_return none;
        }
        co_return co_await dns_.query(util::ascii_lower(*target), type);
    }

    // RFC 7208 7.3 %{p}: a validated name of the client, preferring <domain> itself, then a name below it,
    // then any; "unknown" when none validates or DNS fails. The validated names are looked up once per check.
    asio::awaitable<std::string> ptr_macro(const std::string& domain) {
        if (!validated_names_) {
            validated_names_.emplace();
            const auto reverse = dns::reverse_name(to_string(ip_));
            Answer answer;
            if (reverse) answer = co_await dns_.query(*reverse, dns::kTypePtr);
            if (answer.status == Answer::Status::data) {
                const std::size_t n = std::min(answer.rdata.size(), kSpfMaxPtrNames);
                for (std::size_t i = 0; i < n; ++i) {
                    const auto name = dns::parse_ptr(answer.rdata[i]);
                    if (name && !name->empty() && co_await validates(*name)) validated_names_->push_back(*name);
                }
            }
        }
        const std::string wanted = util::ascii_lower(domain);
        const auto& names = *validated_names_;
        for (const auto& n : names)
            if (n == wanted) co_return n;
        for (const auto& n : names)
            if (within_domain(n, wanted)) co_return n;
        co_return names.empty() ? std::string("unknown") : names.front();
    }

    // The client's address is among the addresses of `name` (forward confirmation, RFC 7208 5.5).
    asio::awaitable<bool> validates(const std::string& name) {
        const Answer answer = co_await dns_.query(name, address_type());
        if (answer.status != Answer::Status::data) co_return false;
        for (const auto& rdata : answer.rdata) {
            const auto address = address_from_rdata(rdata, ip_.v6);
            if (address && *address == ip_) co_return true;
        }
        co_return false;
    }

    bool matches_any(const Answer& answer, const SpfTerm& term) const {
        if (answer.status != Answer::Status::data) return false;
        for (const auto& rdata : answer.rdata) {
            const auto address = address_from_rdata(rdata, ip_.v6);
            if (address && in_network(ip_, *address, ip_.v6 ? term.cidr6 : term.cidr4)) return true;
        }
        return false;
    }

    int address_type() const { return ip_.v6 ? dns::kTypeAaaa : dns::kTypeA; }

    // RFC 7208 4.6.4: one more term that asks DNS; false once there have been more than kSpfMaxDnsTerms.
    bool count_dns_term() { return ++dns_terms_ <= kSpfMaxDnsTerms; }

    // RFC 7208 4.6.4: an answer with no records; past kSpfMaxVoidLookups the evaluation is a permerror.
    Step void_lookup(const std::string& what) {
        if (++void_lookups_ > kSpfMaxVoidLookups)
            return Step::fail(SpfResult::permerror, "more than 2 void DNS lookups (at " + what + ")");
        return Step::no();
    }

    dns::Lookup& dns_;
    IpAddress ip_;
    MacroValues values_;
    int dns_terms_ = 0;
    int void_lookups_ = 0;
    std::optional<std::vector<std::string>> validated_names_;   // for %{p}, once looked up
};

// local@domain split at the last "@" (a quoted local-part may hold "@").
std::pair<std::string, std::string> split_address(const std::string& address) {
    const std::size_t at = address.rfind('@');
    if (at == std::string::npos) return {"", address};
    return {address.substr(0, at), address.substr(at + 1)};
}

}  // namespace

asio::awaitable<SpfOutcome> spf_check_host(dns::Lookup& dns, const SpfQuery& query, std::string domain,
                                           std::string sender, std::time_t now) {
    SpfOutcome outcome;
    outcome.sender = sender;
    const auto ip = parse_client_address(query.ip);
    if (!ip) {
        outcome.result = SpfResult::none;
        outcome.reason = "client address is not an IP address: " + quote(query.ip);
        co_return outcome;
    }
    const auto usable = usable_domain(domain);
    if (!usable) {
        outcome.result = SpfResult::none;
        outcome.reason = "not a usable domain name: " + quote(domain);
        co_return outcome;
    }
    outcome.domain = util::ascii_lower(*usable);   // DNS names compare case-insensitively; reported in one form

    auto [local, sender_domain] = split_address(sender);
    if (local.empty()) local = "postmaster";   // RFC 7208 4.3
    MacroValues values;
    values.local_part = local;
    values.sender_domain = sender_domain;
    if (const auto d = usable_domain(sender_domain)) values.sender_domain = *d;
    values.sender = local + "@" + values.sender_domain;
    values.domain = *usable;
    values.ip = ip_macro_text(*ip);
    values.ip_version = std::string(ip_version_text(*ip));
    values.client_ip = to_string(*ip);
    values.helo = query.helo;
    values.receiver = query.receiver.empty() ? "unknown" : query.receiver;
    values.timestamp = std::to_string(static_cast<long long>(now));
    values.ptr_name = "unknown";

    Checker checker(dns, *ip, std::move(values));
    const Evaluation e = co_await checker.check_host(*usable);
    outcome.result = e.result;
    outcome.reason = e.reason;
    if (e.result == SpfResult::fail && e.exp) outcome.explanation = co_await checker.explanation(*e.exp, e.exp_domain);
    co_return outcome;
}

asio::awaitable<SpfOutcome> check_spf_mail_from(dns::Lookup& dns, SpfQuery query, std::time_t now) {
    std::string sender = query.sender;
    std::string domain;
    if (sender.empty()) {
        // RFC 7208 2.4: the null reverse-path is checked as postmaster@<HELO>.
        sender = "postmaster@" + query.helo;
        domain = query.helo;
    } else {
        domain = split_address(sender).second;
    }
    SpfOutcome outcome = co_await spf_check_host(dns, query, domain, sender, now);
    outcome.identity = "mailfrom";
    co_return outcome;
}

asio::awaitable<SpfOutcome> check_spf_helo(dns::Lookup& dns, SpfQuery query, std::time_t now) {
    const std::string helo = query.helo;
    SpfOutcome outcome = co_await spf_check_host(dns, query, helo, "postmaster@" + helo, now);
    outcome.identity = "helo";
    co_return outcome;
}

}  // namespace ferry::mailauth
