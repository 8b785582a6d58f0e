#include "mailauth/inbound_check.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <fmt/format.h>

#include <chrono>

#include "mailauth/auth_results.hpp"
#include "mailauth/dmarc.hpp"
#include "mailauth/from_domain.hpp"
#include "mailauth/spf.hpp"
#include "mime/header.hpp"
#include "util/ascii.hpp"

// g++ 12 reports Asio's coroutine frames here as freed by a mismatched operator delete: the frame's own
// operator new/delete pair (a thread-local recycling allocator) seen through inlining, as in
// delivery/smtp_client.cpp. ASan's alloc-dealloc-mismatch check, which `make sanitize` runs over these paths,
// finds no such mismatch.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace ferry::mailauth {

namespace {

// RFC 7208 4.6.4: an SPF evaluation may be given up after at least 20 seconds. The same bound holds for all the
// checks of a message together: a client waits for them before its reply to the end of data.
constexpr std::chrono::seconds kCheckTimeLimit{20};

// Asks `inner` until the deadline, then answers every new question with a temporary failure at once, so a
// chain of slow lookups (SPF includes, DKIM keys, DMARC records) ends as temperror instead of holding the
// session. A lookup in flight at the deadline ends within [dns] timeout.
class DeadlineLookup : public dns::Lookup {
public:
    DeadlineLookup(dns::Lookup& inner, std::chrono::steady_clock::time_point deadline)
        : inner_(inner), deadline_(deadline) {}
    boost::asio::awaitable<dns::Answer> query(std::string name, int type) override {
        if (std::chrono::steady_clock::now() >= deadline_) {
            dns::Answer a;
            a.status = dns::Answer::Status::temporary;
            a.why = "the checks of this message took longer than 20 s";
            co_return a;
        }
        co_return co_await inner_.query(std::move(name), type);
    }

private:
    dns::Lookup& inner_;
    std::chrono::steady_clock::time_point deadline_;
};

// The first word of a field value, past whitespace and comments, without quotes, lower-cased: what a reader
// that does not parse RFC 8601 strictly takes for the authserv-id. A field that is not well-formed but starts
// with our name is removed as well, so no reader can be fooled by junk after the name.
std::string first_word(std::string_view v) {
    std::size_t at = 0;
    for (int depth = 0; at < v.size(); ++at) {
        const char c = v[at];
        if (c == '(') ++depth;
        else if (c == ')' && depth > 0) --depth;
        else if (depth == 0 && c != ' ' && c != '\t' && c != '\r' && c != '\n') break;
    }
    std::size_t end = at;
    while (end < v.size() && v[end] != ' ' && v[end] != '\t' && v[end] != '\r' && v[end] != '\n' && v[end] != ';' &&
           v[end] != '(')
        ++end;
    std::string_view word = v.substr(at, end - at);
    if (word.size() >= 2 && word.front() == '"' && word.back() == '"') word = word.substr(1, word.size() - 2);
    return util::ascii_lower(word);
}

// Which of two DMARC outcomes decides for a message: a failure with the harsher disposition first, then a
// temporary error, a permanent one, no policy, and a pass last.
int severity(const DmarcOutcome& o) {
    switch (o.result) {
    case DmarcResult::fail:
        return o.disposition == Disposition::reject ? 0 : o.disposition == Disposition::quarantine ? 1 : 2;
    case DmarcResult::temperror: return 3;
    case DmarcResult::permerror: return 4;
    case DmarcResult::none: return 5;
    case DmarcResult::pass: return 6;
    }
    return 4;
}

bool stricter(const DmarcOutcome& a, const DmarcOutcome& b) { return severity(a) < severity(b); }

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
    : facts_(std::move(facts)), from_domains_(from_domains(header_section, from_problem_)), verifier_(header_section) {}

void InboundCheck::feed_body(std::string_view octets) { verifier_.feed_body(octets); }

boost::asio::awaitable<InboundVerdict> InboundCheck::finish(dns::Lookup& resolver, const InboundSettings& settings,
                                                             double sample, std::time_t now) {
    using namespace boost::asio::experimental::awaitable_operators;
    DeadlineLookup dns(resolver, std::chrono::steady_clock::now() + kCheckTimeLimit);
    const SpfQuery query{facts_.client_ip, facts_.helo, facts_.sender, settings.authserv_id};
    InboundVerdict v;
    if (facts_.sender.empty()) {
        // RFC 7208 2.4: the null reverse-path is checked as postmaster@<HELO>, which is the HELO check itself;
        // bounces would otherwise ask every SPF question twice.
        std::tie(v.spf_helo, v.dkim) = co_await (check_spf_helo(dns, query, now) && verifier_.verify(dns, now));
        v.spf_mail_from = v.spf_helo;
        v.spf_mail_from.identity = "mailfrom";
    } else {
        // The three are independent: their DNS questions go out together.
        std::tie(v.spf_mail_from, v.spf_helo, v.dkim) = co_await (
            check_spf_mail_from(dns, query, now) && check_spf_helo(dns, query, now) && verifier_.verify(dns, now));
    }

    static const PublicSuffixList kNoList = PublicSuffixList::parse("");
    const PublicSuffixList& list = settings.public_suffixes ? *settings.public_suffixes : kNoList;
    const auto& domains = from_domains_;
    if (!domains) {
        // RFC 7489 6.6.1: DMARC is about the From: domain; without one there is nothing to align.
        v.dmarc.result = DmarcResult::permerror;
        v.dmarc.reason = from_problem_;
    } else if (domains->size() > kMaxFromDomains) {
        v.dmarc.result = DmarcResult::permerror;
        v.dmarc.from_domain = domains->front();
        v.dmarc.disposition = Disposition::quarantine;
        v.dmarc.reason = fmt::format("From: names {} domains, more than {} are not evaluated", domains->size(),
                                     kMaxFromDomains);
    } else {
        // Each domain on its own; the message gets the strictest outcome (RFC 7489 6.6.1), so a second address
        // cannot lift the policy of the first.
        for (std::size_t i = 0; i < domains->size(); ++i) {
            // A named argument, moved in: g++ 12 destroys a braced temporary passed to a coroutine twice.
            DmarcInput input{(*domains)[i], v.spf_mail_from, v.dkim};
            DmarcOutcome o = co_await check_dmarc(dns, list, std::move(input), sample);
            if (i == 0 || stricter(o, v.dmarc)) v.dmarc = std::move(o);
        }
        if (domains->size() > 1)
            v.dmarc.reason = fmt::format("{} From domains, the strictest: {}", domains->size(), v.dmarc.reason);
    }
    if (!settings.enforce) v.dmarc.disposition = Disposition::none;
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
            const auto id = authserv_id_of(value);
            if ((id && *id == ours) || first_word(value) == ours) {
                ++removed;
                continue;
            }
        }
        out.append(f.raw);
    }
    return out;
}

}  // namespace ferry::mailauth
