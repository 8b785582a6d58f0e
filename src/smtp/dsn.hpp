// The ESMTP parameters of the DSN extension (RFC 3461): xtext, NOTIFY, RET, ENVID and ORCPT, with the utf-8
// address type of RFC 6533 for ORCPT. Pure parsing and formatting, no I/O.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace ferry::smtp {

// RFC 3461 4: xtext. Decoding is strict: every octet is in 33..126, '=' never appears, and '+' is followed by
// two upper-case hex digits (the RFC's hexchar). nullopt otherwise.
std::optional<std::string> xtext_decode(std::string_view text);
// Octets 33..126 other than '+' and '=' stay; everything else becomes "+XX". decode(encode(x)) == x.
std::string xtext_encode(std::string_view text);

// RFC 3461 4.1: NOTIFY=NEVER, or a list of SUCCESS, FAILURE and DELAY. Bits of an unsigned; 0 means NOTIFY
// was not given (the default of RFC 3461 4.1: FAILURE and maybe DELAY). The spool stores the same bits.
enum NotifyFlag : unsigned { kNotifyNever = 1, kNotifySuccess = 2, kNotifyFailure = 4, kNotifyDelay = 8 };

// Case-insensitive; NEVER only alone, no empty or repeated items. nullopt when invalid; never 0.
std::optional<unsigned> parse_notify(std::string_view value);
// Canonical text: "NEVER", or the given ones of "SUCCESS,FAILURE,DELAY" in that order; "" for 0.
std::string format_notify(unsigned notify);

// RFC 3461 4.3: RET=FULL|HDRS, what of the message a failure DSN returns.
enum class Ret { unspecified, full, hdrs };
std::optional<Ret> parse_ret(std::string_view value);   // case-insensitive
std::string_view to_string(Ret ret);                    // "", "FULL", "HDRS"

// RFC 3461 4.4: ENVID=xtext; its decoded form is printable US-ASCII (graphic and white space) of at most
// 100 octets.
inline constexpr std::size_t kMaxEnvidLength = 100;
bool valid_envid(std::string_view value);

// RFC 3461 4 lets the RCPT command grow by 500 characters for ORCPT and NOTIFY: the bound on an ORCPT value.
inline constexpr std::size_t kMaxOrcptLength = 500;

// RFC 3461 4.2 ORCPT=addr-type;xtext, with addr-type an atom. For "utf-8" (RFC 6533 3) the value is
// utf-8-addr-xtext or, with SMTPUTF8, utf-8-addr-unitext: printable ASCII but '+', '=' and '\', raw UTF-8, and
// \x{HEX} escapes, decoding to a valid RFC 6531 mailbox. For any other type it is xtext decoding to printable
// US-ASCII. Returns "type;decoded" with the type in lower case (RFC 3464 2.3.1 Original-Recipient), nullopt when
// the value is invalid or longer than kMaxOrcptLength. The received form is what travels on (spool, next hop).
std::optional<std::string> decode_orcpt(std::string_view value);

// What the session keeps of one accepted RCPT's DSN parameters.
struct RecipientDsn {
    unsigned notify = 0;   // NotifyFlag bits; 0 when NOTIFY was not given
    std::string orcpt;     // as received (still encoded), "" when absent
    bool operator==(const RecipientDsn&) const = default;
};

}  // namespace ferry::smtp
