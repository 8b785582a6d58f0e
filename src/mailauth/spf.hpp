// SPF evaluation (RFC 7208): check_host() over dns::Lookup, for the MAIL FROM and the HELO identities.
//
// Work is bounded whatever the records say (RFC 7208 4.6.4): at most kSpfMaxDnsTerms terms that ask DNS
// (include, a, mx, ptr, exists, redirect) in the whole evaluation, recursion included; at most
// kSpfMaxVoidLookups answers that are NXDOMAIN or empty; at most kSpfMaxMxNames MX names per mx and
// kSpfMaxPtrNames PTR names per ptr or %{p}. So one check asks at most about 130 questions, and include/redirect
// nest at most kSpfMaxDnsTerms deep. The time each question may take is the resolver's timeout; a caller wanting
// the 20 s overall bound of RFC 7208 4.6.4 puts it around the call.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <cstddef>
#include <ctime>
#include <string>

#include "dns/lookup.hpp"
#include "mailauth/results.hpp"

namespace ferry::mailauth {

// RFC 7208 4.6.4.
inline constexpr int kSpfMaxDnsTerms = 10;
inline constexpr int kSpfMaxVoidLookups = 2;
inline constexpr std::size_t kSpfMaxMxNames = 10;
inline constexpr std::size_t kSpfMaxPtrNames = 10;

struct SpfQuery {
    std::string ip;         // the SMTP client's address as text: "192.0.2.1", "2001:db8::1" (IPv4-mapped IPv6 is IPv4)
    std::string helo;       // the HELO/EHLO argument as the client gave it
    std::string sender;     // MAIL FROM address local@domain; "" for the null reverse-path <>
    std::string receiver;   // our host name, for the %{r} macro ("unknown" when empty)
};

// RFC 7208 2.4: the MAIL FROM identity (outcome.identity "mailfrom", outcome.sender the address). With a null
// sender, postmaster@<helo> is checked (outcome.sender = "postmaster@<helo>"). A sender whose domain is not a
// usable name (4.3: an address literal, a single label, a label over 63 octets, ...) gives none.
boost::asio::awaitable<SpfOutcome> check_spf_mail_from(dns::Lookup& dns, SpfQuery query, std::time_t now);

// RFC 7208 2.3: the HELO identity (outcome.identity "helo", outcome.domain the HELO name, outcome.sender
// "postmaster@<helo>", which is what %{s} and %{l} see). A HELO that is not a usable domain name (an address
// literal, no dot, bad labels) gives none.
boost::asio::awaitable<SpfOutcome> check_spf_helo(dns::Lookup& dns, SpfQuery query, std::time_t now);

// check_host(<ip>, <domain>, <sender>) itself (RFC 7208 4), for callers with identities of their own:
// `domain` is checked as 4.3 says, `sender` is local@domain (an empty local-part reads as "postmaster"). The
// outcome's identity is left empty.
boost::asio::awaitable<SpfOutcome> spf_check_host(dns::Lookup& dns, const SpfQuery& query, std::string domain,
                                                  std::string sender, std::time_t now);

}  // namespace ferry::mailauth
