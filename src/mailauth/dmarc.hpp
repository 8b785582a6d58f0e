// DMARC evaluation (RFC 7489 6.6): policy discovery in DNS, identifier alignment of the SPF and DKIM results
// with the RFC5322.From domain, and the disposition after pct= sampling. Asks DNS through dns::Lookup (a
// coroutine), so it stays out of the fuzz build; the parsing it relies on is in dmarc_record, public_suffix and
// from_domain.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "dns/lookup.hpp"
#include "mailauth/dmarc_record.hpp"
#include "mailauth/public_suffix.hpp"
#include "mailauth/results.hpp"

namespace ferry::mailauth {

struct DmarcInput {
    std::string from_domain;          // from_domain() of the header ("" when it had none usable)
    SpfOutcome spf;                   // the MAIL FROM identity's outcome (its `sender` is the address checked, its
                                      // domain the one after '@'; postmaster@<helo> for a null reverse-path)
    std::vector<DkimOutcome> dkim;    // every signature's outcome
};

// RFC 7489 6.6.2, 6.6.3, 6.6.4, 3.1. `dns` and `psl` must outlive the coroutine. `sample` in [0, 1): the pct= draw (the caller passes a random number; tests
// pass fixed ones); the policy applies when sample * 100 < pct.
//
// The outcome: `from_domain` in A-label form (U-labels converted with IDNA2008, libidn2); `policy_domain` the
// name whose record was used; alignment filled in for every result (with the record's adkim=/aspf=, relaxed
// when there is no record). Results:
//   none       no From domain (or one that is not a DNS name), no DMARC record at the From domain or its organizational domain, or more than
//              one (6.6.3 step 5: no DMARC processing)
//   temperror  a DNS lookup failed for now
//   permerror  the one DMARC record has no valid p= (or an invalid sp=) and no valid rua= (6.6.3 step 6.2)
//   pass/fail  a DKIM pass or an SPF pass aligns with the From domain, or neither does
// `disposition` is none except on fail: the policy (sp= for a subdomain of the organizational domain whose
// record was used, p= otherwise), one step lower (reject -> quarantine -> none) when pct= sampled it out.
boost::asio::awaitable<DmarcOutcome> check_dmarc(dns::Lookup& dns, const PublicSuffixList& psl, DmarcInput input,
                                                 double sample);

// Identifier alignment (RFC 7489 3.1.1, 3.1.2): equal names when strict, equal organizational domains when
// relaxed. Both names lower-case A-labels without a trailing dot.
bool aligned(const PublicSuffixList& psl, std::string_view a, std::string_view b, bool strict);

}  // namespace ferry::mailauth
