// The checks an mx listener makes of one arriving message, and the Authentication-Results field (RFC 8601) that
// records them: SPF for the MAIL FROM and HELO identities (RFC 7208), every DKIM signature (RFC 6376), and DMARC
// for the From: domain (RFC 7489) on top of those. The session hands over the header section once it is
// complete, then the body as it streams in; finish() runs the DNS work. Also what `ferry check message` runs.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <ctime>
#include <string>
#include <string_view>
#include <optional>
#include <vector>

#include "dns/lookup.hpp"
#include "mailauth/dkim_verify.hpp"
#include "mailauth/public_suffix.hpp"
#include "mailauth/results.hpp"

namespace ferry::mailauth {

struct InboundFacts {
    std::string client_ip;   // "192.0.2.1"
    std::string helo;        // as the client gave it
    std::string sender;      // MAIL FROM address; "" for the null reverse-path
};

struct InboundSettings {
    std::string authserv_id;   // our name in Authentication-Results (and %{r} of SPF)
    const PublicSuffixList* public_suffixes = nullptr;
    bool enforce = true;       // [mailauth] dmarc_enforce: off, the disposition (dis=) is always none
};

// RFC 7489 6.6.1: a From: with addresses of several domains is evaluated for each; past this many, the message
// is not evaluated (a hostile list must not buy a DNS lookup per address) and goes to Junk.
inline constexpr std::size_t kMaxFromDomains = 5;

struct InboundVerdict {
    SpfOutcome spf_mail_from, spf_helo;
    std::vector<DkimOutcome> dkim;
    DmarcOutcome dmarc;
    std::string field;     // "Authentication-Results: ...\r\n"
    std::string summary;   // "spf=pass dkim=pass dmarc=pass" for the log line
};

class InboundCheck {
public:
    // `header_section` as received (each field with its CRLF, without the empty line).
    InboundCheck(InboundFacts facts, std::string_view header_section);
    void feed_body(std::string_view octets);
    // `sample` in [0, 1) is the DMARC pct= draw.
    boost::asio::awaitable<InboundVerdict> finish(dns::Lookup& dns, const InboundSettings& settings, double sample,
                                                  std::time_t now);

private:
    InboundFacts facts_;
    // The From: domains, read when the header arrives: the verifier keeps the header section, no second copy here.
    std::string from_problem_;   // why from_domains_ is empty (declared first: the constructor fills both at once)
    std::optional<std::vector<std::string>> from_domains_;
    DkimVerifier verifier_;
};

// The header section without the Authentication-Results fields that claim `authserv_id` (RFC 8601 5: only we may
// write results under our name, so what arrives with it is forged), every other octet as it was. `removed`
// counts the fields taken out.
std::string remove_claimed_results(std::string_view header_section, std::string_view authserv_id,
                                   std::size_t& removed);

}  // namespace ferry::mailauth
