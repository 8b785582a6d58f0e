#include "mailauth/inbound_check.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <fmt/format.h>

#include "mailauth/auth_results.hpp"
#include "mailauth/dmarc.hpp"
#include "mailauth/from_domain.hpp"
#include "mailauth/spf.hpp"
#include "mime/header.hpp"
#include "util/ascii.hpp"

namespace ferry::mailauth {

namespace {

std::string dkim_summary(const std::vector<DkimOutcome>& outcomes) {
    if (outcomes.empty()) return "none";
    std::string out;
    for (const auto& o : outcomes) {
        if (!out.empty()) out += ",";
        out += std::string(to_string(o.result));
    }
    return out;
}

}  // namespace

InboundCheck::InboundCheck(InboundFacts facts, std::string_view header_section)
    : facts_(std::move(facts)), header_(header_section), verifier_(header_section) {}

void InboundCheck::feed_body(std::string_view octets) { verifier_.feed_body(octets); }

boost::asio::awaitable<InboundVerdict> InboundCheck::finish(dns::Lookup& dns, const InboundSettings& settings,
                                                             double sample, std::time_t now) {
    using namespace boost::asio::experimental::awaitable_operators;
    const SpfQuery query{facts_.client_ip, facts_.helo, facts_.sender, settings.authserv_id};
    InboundVerdict v;
    // The three are independent: their DNS questions go out together.
    std::tie(v.spf_mail_from, v.spf_helo, v.dkim) =
        co_await (check_spf_mail_from(dns, query, now) && check_spf_helo(dns, query, now) && verifier_.verify(dns, now));

    std::string problem;
    if (const auto from = from_domain(header_, problem)) {
        static const PublicSuffixList kNoList = PublicSuffixList::parse("");
        const PublicSuffixList& list = settings.public_suffixes ? *settings.public_suffixes : kNoList;
        // A named argument, moved in: g++ 12 destroys a braced temporary passed to a coroutine twice.
        DmarcInput input{*from, v.spf_mail_from, v.dkim};
        v.dmarc = co_await check_dmarc(dns, list, std::move(input), sample);
    } else {
        // RFC 7489 6.6.1: DMARC is about the From: domain; without exactly one, there is nothing to align.
        v.dmarc.result = DmarcResult::permerror;
        v.dmarc.reason = problem;
    }
    v.field = authentication_results_field(
        AuthResultsInput{settings.authserv_id, {v.spf_mail_from, v.spf_helo}, v.dkim, v.dmarc});
    v.summary = fmt::format("spf={} spf_helo={} dkim={} dmarc={} dis={}", to_string(v.spf_mail_from.result),
                            to_string(v.spf_helo.result), dkim_summary(v.dkim), to_string(v.dmarc.result),
                            to_string(v.dmarc.disposition));
    co_return v;
}

std::string remove_claimed_results(std::string_view header_section, std::string_view authserv_id,
                                   std::size_t& removed) {
    removed = 0;
    const std::string ours = util::ascii_lower(authserv_id);
    std::string out;
    out.reserve(header_section.size());
    for (const mime::RawField& f : mime::header_fields(header_section)) {
        if (util::ascii_lower(f.name) == "authentication-results") {
            std::string_view value = f.raw.substr(f.raw.find(':') + 1);
            while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) value.remove_suffix(1);
            if (const auto id = authserv_id_of(value); id && *id == ours) {
                ++removed;
                continue;
            }
        }
        out.append(f.raw);
    }
    return out;
}

}  // namespace ferry::mailauth
