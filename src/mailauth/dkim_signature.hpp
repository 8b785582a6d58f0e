// The DKIM-Signature header field (RFC 6376 3.5): its tag list read and checked as a verifier must before
// anything is looked up (6.1.1), and its b= value emptied for hashing (3.7). Pure: text in, values out.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mailauth/dkim_canon.hpp"
#include "mailauth/dkim_crypto.hpp"

namespace ferry::mailauth {

// Limits (RFC 6376 3.5): t= and x= are 1*12DIGIT, l= is 1*76DIGIT (held here saturated at 2^64-1: no body
// is that long, so such an l= simply exceeds the body).
inline constexpr std::size_t kMaxTimestampDigits = 12;
inline constexpr std::size_t kMaxBodyLengthDigits = 76;
// RFC 1035 2.3.4 / RFC 6376 3.5 (d=, s= are domain names and selectors): 63-octet labels, 253-octet names.
inline constexpr std::size_t kMaxLabelLength = 63;
inline constexpr std::size_t kMaxDomainLength = 253;

struct DkimSignature {
    std::string algorithm_name;                 // a= as written (lower case)
    DkimAlgorithm algorithm = DkimAlgorithm::rsa_sha256;
    std::string signature_b;                    // b= without whitespace (base64 text)
    std::string signature;                      // b= decoded
    std::string body_hash;                      // bh= decoded
    DkimCanon header_canon = DkimCanon::simple;   // c= (default simple/simple; "relaxed" = relaxed/simple)
    DkimCanon body_canon = DkimCanon::simple;
    std::string domain;                         // d= as written
    std::vector<std::string> signed_headers;    // h= names, in order, as written
    std::string identity;                       // i=, or "@" + d= when absent
    std::optional<std::uint64_t> body_length;   // l=
    std::string selector;                       // s= as written
    std::optional<std::int64_t> timestamp;      // t=
    std::optional<std::int64_t> expiration;     // x=
};

struct DkimSignatureParse {
    DkimSignature signature;   // what could be read, also when `error` is set (for the outcome's fields)
    std::string error;         // "" for a signature that may be verified; else why not (a permerror)
    bool ok() const { return error.empty(); }
};

// `value`: the field's value, after "DKIM-Signature:" (folding kept, final CRLF optional). Checks (6.1.1): the
// tag list's syntax, v=1, the required tags (v a b bh d h s), a= one of rsa-sha256 / ed25519-sha256 (rsa-sha1
// refused, RFC 8301 3.1), base64 of b= and bh=, c=, h= naming From, i= in d= or a subdomain, l=, q= offering
// dns/txt, t= and x= digits with x= after t=, d= and s= domain-name syntax. Unknown tags are ignored.
DkimSignatureParse parse_dkim_signature(std::string_view value);

// The whole raw field (name, colon, value, final line break) with the value of its b= tag, and all whitespace
// around it, deleted (3.7), everything else byte for byte. A field without a b= tag comes back unchanged.
std::string remove_b_value(std::string_view raw_field);

// Domain-name syntax as d= and s= need it: dot-separated labels of letters, digits, '-' and '_' (selectors
// in the wild use '_'), 1 to 63 octets each, 253 at most.
bool valid_domain_name(std::string_view name);

// `identity_domain` is `domain` or one of its subdomains (case-insensitive).
bool is_same_or_subdomain(std::string_view identity_domain, std::string_view domain);

}  // namespace ferry::mailauth
