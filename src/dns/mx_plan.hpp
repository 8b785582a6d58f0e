// Which hosts receive mail for a domain (RFC 5321 5.1, RFC 7505), from the answer to its MX query. Pure.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "dns/answer.hpp"

namespace ferry::dns {

struct MxHost {
    std::string host;
    std::uint16_t preference = 0;
    bool implicit = false;   // no MX records: the domain itself (its A/AAAA), RFC 5321 5.1
};

struct MxPlan {
    enum class Kind {
        hosts,       // try these, in order
        null_mx,     // RFC 7505: the domain accepts no mail (permanent, 5.1.10)
        no_domain,   // NXDOMAIN (permanent, 5.1.2)
        temporary,   // the lookup failed for now (4.4.3)
        bad_records, // MX records none of which can be used (permanent, 5.4.4)
    };
    Kind kind = Kind::temporary;
    std::vector<MxHost> hosts;
    std::string reason;   // for everything but `hosts`: one line for the log and the DSN
};

// At most this many MX hosts are kept (the lowest preferences): a domain listing hundreds must not make one
// message cost hundreds of lookups and connections.
inline constexpr std::size_t kMaxMxHosts = 10;

// Sorted by preference, shuffled among equal preferences (RFC 5321 5.1: spread the load). A null MX alone
// means no mail; mixed with other MX records it is ignored. Unparsable records are skipped.
MxPlan plan_mx(std::string_view domain, const Answer& mx_answer, std::mt19937& random);

}  // namespace ferry::dns
