// DNS block and allow lists (RFC 5782), the pure part: the name asked for a client address in a list's zone, what
// an answer means, and the weighted score of several lists (postscreen's dnsbl_sites / dnsbl_threshold model).
// The lookups themselves and the verdict in the session are not built yet (issue "Connection and envelope
// policy").
//
// An answer counts only when it is one the operator listed for that zone (`responses`): a list answers other
// codes for other things, and some of them mean "your query was refused", not "this client is listed".
// Spamhaus answers 127.255.255.0/24 to queries from public resolvers and over-quota users, dnswl.org 127.0.0.255
// over its limit; sites that read those as listings refused all their mail. Those are errors here, never
// listings, whatever `responses` says.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/client_network.hpp"

namespace ferry::policy {

// The name to ask (an A query) for `client_ip` in `zone`: IPv4 octets reversed (RFC 5782 2.1), IPv6 as 32
// nibbles reversed (RFC 5782 2.4), then the zone. nullopt when `client_ip` is not an address or `zone` is empty.
// An IPv4-mapped IPv6 address (::ffff:192.0.2.1) is asked as the IPv4 address it is.
std::optional<std::string> dnsbl_query_name(std::string_view client_ip, std::string_view zone);
// The same for an address already parsed (policy/client_network): nullopt only when `zone` is empty.
std::optional<std::string> dnsbl_query_name(const IpAddress& client, std::string_view zone);

// Answer addresses that count, as inclusive ranges of IPv4 addresses in host order.
struct ResponseRange {
    std::uint32_t first = 0, last = 0;
    bool operator==(const ResponseRange&) const = default;
};

// "127.0.0.2" or "127.0.0.2-127.0.0.11" (each end an IPv4 address in 127.0.0.0/8, RFC 5782 2.3, first <= last);
// nullopt otherwise.
std::optional<ResponseRange> parse_response_range(std::string_view text);

// What one list said about one client.
enum class DnsblAnswer {
    not_listed,   // NXDOMAIN, no A record, or only answers the operator did not list
    listed,       // an answer in `responses`
    error,        // the list refused the query (127.255.255.0/24, 127.0.0.255), or an answer outside 127.0.0.0/8
};

// `answers`: the A records of the query (host order). An error answer wins over a listing: a list that refuses
// some queries cannot be trusted for the same query.
DnsblAnswer classify_dnsbl_answer(const std::vector<std::uint32_t>& answers, const std::vector<ResponseRange>& responses);

// The score of a client: the weights of the lists that listed it, summed (an allow list has a negative weight).
struct ListResult {
    DnsblAnswer answer = DnsblAnswer::not_listed;
    int weight = 0;
};
int dnsbl_score(const std::vector<ListResult>& results);

}  // namespace ferry::policy
