// The outcomes of the message authentication checks, as the evaluators return them and as
// Authentication-Results (RFC 8601) and DMARC (RFC 7489) consume them. Names are the RFC 8601 2.7 result words.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace ferry::mailauth {

// RFC 7208 2.6.
enum class SpfResult { none, neutral, pass, fail, softfail, temperror, permerror };

struct SpfOutcome {
    SpfResult result = SpfResult::none;
    std::string identity;      // "mailfrom" or "helo": which identity was checked (RFC 7208 2.3, 2.4)
    std::string domain;        // the domain whose record was evaluated ("" when there was none to check)
    std::string sender;        // the address checked: MAIL FROM, or postmaster@<helo> (RFC 7208 2.4)
    std::string explanation;   // for fail: the exp= text (RFC 7208 6.2), else ""
    std::string reason;        // one line for logs and comments: the matching term, or what went wrong
};

// RFC 8601 2.7.1 (RFC 6376 results, plus "policy" for a valid signature local policy does not accept).
enum class DkimResult { none, pass, fail, policy, neutral, temperror, permerror };

struct DkimOutcome {
    DkimResult result = DkimResult::none;
    std::string domain;        // d=
    std::string selector;      // s=
    std::string identity;      // i= (default "@" + d=)
    std::string algorithm;     // a=, e.g. "rsa-sha256", "ed25519-sha256"
    std::string signature_b;   // the b= value without whitespace (A-R shows a prefix as header.b, RFC 6008)
    bool testing = false;      // the key record says t=y
    std::string reason;        // one line: why it failed or errored, "" for pass
};

// RFC 7489 11.2.
enum class DmarcResult { none, pass, fail, temperror, permerror };

// RFC 7489 6.3 p= / sp= values, and what is done with a message.
enum class Disposition { none, quarantine, reject };

struct DmarcOutcome {
    DmarcResult result = DmarcResult::none;
    std::string from_domain;     // RFC5322.From domain ("" when the header has none usable)
    std::string policy_domain;   // where the record was found: from_domain or its organizational domain
    Disposition policy = Disposition::none;        // p= or sp=, whichever applies to from_domain
    Disposition disposition = Disposition::none;   // what to do: policy after pct= sampling; none on pass
    bool spf_aligned = false;
    bool dkim_aligned = false;
    std::string reason;          // one line: what failed, or why there is no result
};

std::string_view to_string(SpfResult r);
std::string_view to_string(DkimResult r);
std::string_view to_string(DmarcResult r);
std::string_view to_string(Disposition d);

}  // namespace ferry::mailauth
