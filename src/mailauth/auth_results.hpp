// The Authentication-Results header field (RFC 8601) that mx adds, and the authserv-id that a field on arriving
// mail claims (so ours can be removed first, RFC 8601 5). Pure: outcomes in, text out.
//
// What is written (RFC 8601 2.2, 2.7):
//   Authentication-Results: <authserv-id>;
//   	spf=<result> (<reason>) smtp.mailfrom=<address>          (smtp.helo=<name> for the HELO identity)
//   	dkim=<result> (<reason>) header.d= header.i= header.s= header.a= header.b=   (b: RFC 6008 prefix)
//   	dmarc=<result> (p=<policy> dis=<disposition>) header.from=<domain>
// or "<authserv-id>; none" when there is nothing to report. The field is printable ASCII only (no UTF-8, even
// for SMTPUTF8 mail): a property value that is not an RFC 8601 pvalue (a token, [local-part] "@" domain-name,
// or a quoted-string) is quoted, and dropped when it cannot be (non-ASCII, control characters, longer than
// kMaxPropertyValueOctets). Comment text keeps printable ASCII only: parentheses become brackets, a backslash a
// slash, anything else a '?', so no comment can be unbalanced and nothing from DNS or the message can end the
// line. Lines are folded at whitespace to stay within kFoldLineOctets where the words allow it.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mailauth/results.hpp"

namespace ferry::mailauth {

inline constexpr std::size_t kFoldLineOctets = 78;           // RFC 5322 2.1.1: SHOULD be no more than 78
inline constexpr std::size_t kMaxCommentOctets = 160;        // a reason longer than this is cut ("...")
inline constexpr std::size_t kMaxPropertyValueOctets = 256;  // RFC 5321 4.5.3.1.3: the longest path
inline constexpr std::size_t kHeaderBOctets = 8;             // RFC 6008 2: at least the first 8 characters of b=

struct AuthResultsInput {
    std::string authserv_id;                   // our host name
    std::vector<SpfOutcome> spf;               // mailfrom, then helo
    std::vector<DkimOutcome> dkim;
    std::optional<DmarcOutcome> dmarc;
};

// The whole field, "Authentication-Results: <authserv-id>;\r\n\t<resinfo>;\r\n\t<resinfo>\r\n", or
// "Authentication-Results: <authserv-id>; none\r\n" with nothing to report. An authserv-id that is not a token
// is written as a quoted-string, octets outside printable ASCII replaced by '?'.
std::string authentication_results_field(const AuthResultsInput& input);

// The authserv-id an Authentication-Results field value claims (RFC 8601 2.2: the value before the first ';',
// comments (RFC 5322 CFWS) and an optional version removed), lower-cased; quoted-string values unquoted.
// nullopt when that part does not follow the grammar ([CFWS] value [CFWS version] [CFWS], then ';' or the end).
std::optional<std::string> authserv_id_of(std::string_view field_value);

// A property value as RFC 8601 2.2 pvalue writes it: as it is when a token or [local-part] "@" domain-name,
// else a quoted-string; nullopt when it cannot be written (empty, too long, non-ASCII or control octets).
std::optional<std::string> property_value(std::string_view value);

// Comment text as described above: printable ASCII, no parentheses or backslashes, whitespace runs as one
// space, at most kMaxCommentOctets.
std::string comment_text(std::string_view text);

}  // namespace ferry::mailauth
