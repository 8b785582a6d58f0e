#include "mailauth/dmarc.hpp"

#include <algorithm>
#include <cmath>
#include <optional>

#include "dns/resolver.hpp"
#include "dns/wire.hpp"
#include "mailauth/dkim_signature.hpp"
#include "mailauth/from_domain.hpp"
#include "mailauth/idna.hpp"

namespace ferry::mailauth {
namespace {

// RFC 7489 6.1: policy records live under this label of the domain they speak for.
constexpr std::string_view kDmarcLabel = "_dmarc.";

std::string normalize(std::string_view domain) {
    std::string out(domain);
    if (!out.empty() && out.back() == '.') out.pop_back();
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

// The name in A-label form (RFC 8616 4: DMARC asks DNS with A-labels), lower case, without a trailing dot.
std::optional<std::string> a_label_name(std::string_view domain) {
    const auto converted = to_a_labels(normalize(domain));
    if (!converted) return std::nullopt;
    return normalize(*converted);
}

struct Discovery {
    enum class Status { found, none, several, temporary } status = Status::none;
    std::string record;     // the one DMARC record, when found
    std::size_t count = 0;  // DMARC records seen
    std::string why;        // for temporary
};

// RFC 7489 6.6.3 steps 1-2 (and 3-4 for the organizational domain): the TXT records at _dmarc.<domain> that
// start with v=DMARC1; other TXT records there are not ours and are ignored.
boost::asio::awaitable<Discovery> discover(dns::Lookup& dns, const std::string& domain) {
    Discovery d;
    const dns::Answer answer = co_await dns.query(std::string(kDmarcLabel) + domain, dns::kTypeTxt);
    if (answer.status == dns::Answer::Status::temporary) {
        d.status = Discovery::Status::temporary;
        d.why = answer.why.empty() ? "temporary DNS failure" : answer.why;
        co_return d;
    }
    if (answer.status != dns::Answer::Status::data) co_return d;
    for (const auto& rdata : answer.rdata) {
        const auto text = dns::parse_txt(rdata);
        if (!text || !is_dmarc_record(*text)) continue;
        if (++d.count == 1) d.record = *text;
    }
    if (d.count == 1) d.status = Discovery::Status::found;
    else if (d.count > 1) d.status = Discovery::Status::several;
    co_return d;
}

Disposition one_lower(Disposition d) {
    switch (d) {
    case Disposition::reject: return Disposition::quarantine;
    case Disposition::quarantine: return Disposition::none;
    case Disposition::none: return Disposition::none;
    }
    return Disposition::none;
}

// The domain of the identity SPF checked: after the last '@' of `sender`, else the outcome's domain.
std::string spf_domain(const SpfOutcome& spf) {
    const auto at = spf.sender.rfind('@');
    return at != std::string::npos ? spf.sender.substr(at + 1) : spf.domain;
}

// Sets the alignment flags of `out` and says in a few words what aligned or why nothing did.
std::string evaluate_alignment(const PublicSuffixList& psl, const DmarcInput& input, const std::string& from,
                               bool strict_dkim, bool strict_spf, DmarcOutcome& out) {
    std::string dkim_note = "no DKIM pass";
    for (const auto& sig : input.dkim) {
        if (sig.result != DkimResult::pass) continue;
        const auto d = a_label_name(sig.domain);
        if (d && aligned(psl, *d, from, strict_dkim)) {
            out.dkim_aligned = true;
            dkim_note = "DKIM d=" + *d + " aligned";
            break;
        }
        dkim_note = "DKIM pass d=" + sig.domain + " not aligned";
    }
    if (strict_dkim) dkim_note += " (adkim=s)";

    std::string spf_note = "SPF " + std::string(to_string(input.spf.result));
    if (input.spf.result == SpfResult::pass) {
        const std::string raw = spf_domain(input.spf);
        const auto d = a_label_name(raw);
        out.spf_aligned = d && !d->empty() && aligned(psl, *d, from, strict_spf);
        spf_note += (out.spf_aligned ? " " + *d + " aligned" : " " + raw + " not aligned");
    }
    if (strict_spf) spf_note += " (aspf=s)";
    return dkim_note + ", " + spf_note;
}

}  // namespace

bool aligned(const PublicSuffixList& psl, std::string_view a, std::string_view b, bool strict) {
    if (a.empty() || b.empty()) return false;
    if (a == b) return true;
    return !strict && psl.organizational_domain(a) == psl.organizational_domain(b);
}

boost::asio::awaitable<DmarcOutcome> check_dmarc(dns::Lookup& dns, const PublicSuffixList& psl, DmarcInput input,
                                                 double sample) {
    DmarcOutcome out;
    const std::string given = normalize(input.from_domain);
    if (given.empty()) {   // RFC 7489 11.2 none: "no aligned identifier could be extracted"
        out.reason = "no RFC5322.From domain";
        co_return out;
    }
    const auto from = a_label_name(given);
    if (!from || !valid_domain_name(*from)) {   // LDH and '_' labels, RFC 1035 lengths
        out.from_domain = from ? *from : given;
        out.reason = from ? "From domain is not a DNS name" : "From domain is not a valid IDN";
        co_return out;
    }
    out.from_domain = *from;
    if (kDmarcLabel.size() + from->size() > kMaxDomainOctets) {
        out.reason = "From domain too long for a DMARC lookup";
        evaluate_alignment(psl, input, *from, false, false, out);
        co_return out;
    }

    // 6.6.3: the From domain first, then its organizational domain when that is another name.
    const std::string org = psl.organizational_domain(*from);
    std::string where = *from;
    Discovery found = co_await discover(dns, where);
    if (found.status == Discovery::Status::none && org != *from) {
        where = org;
        found = co_await discover(dns, where);
    }
    const std::string record_name = std::string(kDmarcLabel) + where;
    switch (found.status) {
    case Discovery::Status::temporary:
        out.result = DmarcResult::temperror;
        out.reason = record_name + ": " + found.why;
        evaluate_alignment(psl, input, *from, false, false, out);
        co_return out;
    case Discovery::Status::several:   // 6.6.3 step 5
        out.reason = std::to_string(found.count) + " DMARC records at " + record_name + ": none applies";
        evaluate_alignment(psl, input, *from, false, false, out);
        co_return out;
    case Discovery::Status::none:
        out.reason = "no DMARC record at " + std::string(kDmarcLabel) + *from +
                     (org != *from ? " or " + record_name : std::string());
        evaluate_alignment(psl, input, *from, false, false, out);
        co_return out;
    case Discovery::Status::found:
        break;
    }

    std::string error;
    const auto record = parse_dmarc_record(found.record, &error);
    out.policy_domain = where;
    if (!record) {   // 6.6.3 step 6.2: no DMARC processing; RFC 7489 11.2 permerror
        out.result = DmarcResult::permerror;
        out.reason = record_name + ": " + error;
        evaluate_alignment(psl, input, *from, false, false, out);
        co_return out;
    }

    // 6.3 sp=: the policy for subdomains, when the record was found at the organizational domain.
    const bool subdomain = where != *from;
    out.policy = subdomain && record->subdomain_policy ? *record->subdomain_policy : record->policy;
    std::string note = evaluate_alignment(psl, input, *from, record->strict_dkim, record->strict_spf, out);
    if (out.dkim_aligned || out.spf_aligned) {
        out.result = DmarcResult::pass;
        out.disposition = Disposition::none;
    } else {
        out.result = DmarcResult::fail;
        out.disposition = out.policy;
        // 6.6.4: the policy applies to pct= percent of failing mail; the rest gets the next lower one.
        if (!(sample >= 0.0) || sample >= 1.0) sample = 0.0;   // NaN or out of range: the policy applies
        if (record->percent < 100 && sample * 100.0 >= record->percent) {
            out.disposition = one_lower(out.policy);
            note += "; pct=" + std::to_string(record->percent) + " sampled out: " +
                    std::string(to_string(out.disposition)) + " instead of " + std::string(to_string(out.policy));
        }
    }
    if (!record->problem.empty()) note += "; " + record->problem;
    out.reason = note;
    co_return out;
}

}  // namespace ferry::mailauth
