// The RFC5322.From domain that DMARC evaluates (RFC 7489 3.1, 6.6.1). Pure: a header section in, a domain out.
//
// The From field is read as an RFC 5322 3.4 address-list: mailboxes with or without display names
// ("Name" <a@b>, a@b (Name)), comments (nested, quoted-pairs), quoted local parts, obsolete routes and phrases
// (4.4), and groups (RFC 6854 allows them in From). UTF-8 in atoms and quoted strings is allowed (RFC 6532).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::mailauth {

// RFC 1035 2.3.4: the longest domain name in text form (255 octets on the wire).
inline constexpr std::size_t kMaxDomainOctets = 253;
inline constexpr std::size_t kMaxLabelOctets = 63;

struct MailboxAddress {
    std::string local_part;   // as written (a quoted local part keeps its quotes)
    std::string domain;       // as written: a dot-atom or a domain-literal ("[192.0.2.1]")
};

// The addr-specs of an RFC 5322 address-list (an unfolded field value); nullopt when it does not parse (then
// `problem` says where). An empty group ("undisclosed-recipients:;") adds nothing.
std::optional<std::vector<MailboxAddress>> parse_address_list(std::string_view value, std::string& problem);

// RFC 7489 6.6.1: the domain of the From: addresses, lower-case (ASCII letters only: U-labels stay as written).
// nullopt with `problem` when there is no From field, more than one, one that does not parse or holds no
// address, addresses with different domains, or a domain that is not a DNS name (a domain-literal, a label
// longer than 63 octets or with characters other than letters, digits, '-', '_' and UTF-8).
std::optional<std::string> from_domain(std::string_view header_section, std::string& problem);

// Every distinct domain of the From: addresses, over all From fields (RFC 5322 allows one field; mail with more, or
// with addresses of several domains, is evaluated for each domain, RFC 7489 6.6.1), in order, lower-case.
// nullopt with `problem` when there is no From field, or one does not parse, holds no address, or has a domain
// that is not a DNS name.
std::optional<std::vector<std::string>> from_domains(std::string_view header_section, std::string& problem);

}  // namespace ferry::mailauth
