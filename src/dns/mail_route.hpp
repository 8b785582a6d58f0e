// Where mail for a domain goes: its MX hosts in order, each with its addresses (RFC 5321 5.1), or why there is
// nowhere to go, classified permanent (bounce) or temporary (retry), with the RFC 3463 code for the DSN.
#pragma once

#include <boost/asio.hpp>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "dns/resolver.hpp"

namespace ferry::dns {

struct MailTarget {
    std::string host;
    std::uint16_t preference = 0;
    bool implicit = false;                 // no MX: the domain's own address records
    std::vector<std::string> addresses;    // IPv6 first, then IPv4, in the order the DNS gave them
};

struct MailRoute {
    enum class Kind { deliver, permanent, temporary };
    Kind kind = Kind::temporary;
    std::vector<MailTarget> targets;   // for `deliver`: only hosts that have addresses, in the order to try
    std::string status;                // for the others: RFC 3463 code, e.g. "5.1.10", "4.4.3"
    std::string reason;                // one line, for the log and the DSN
    std::vector<std::string> notes;    // MX hosts left out and why (no address, lookup failed)
};

asio::awaitable<MailRoute> resolve_mail_route(Resolver& resolver, std::string domain, std::mt19937& random);

// A relay host (`[outbound] relay_host`): its own addresses, no MX; an IP literal (bracketed or not) as it is.
// Never permanent: a relay host that does not resolve is the operator's to fix, so mail waits.
asio::awaitable<MailRoute> resolve_host_route(Resolver& resolver, std::string host);

}  // namespace ferry::dns
