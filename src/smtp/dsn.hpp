// The ESMTP parameters of the DSN extension (RFC 3461): xtext, NOTIFY, RET, ENVID and ORCPT, with the utf-8
// address type of RFC 6533 for ORCPT. Pure parsing and formatting, no I/O.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "dsn/request.hpp"

namespace ferry::smtp {

// RFC 3461 4: xtext. Decoding is strict: every octet is in 33..126, '=' never appears, and '+' is followed by
// two upper-case hex digits (the RFC's hexchar). nullopt otherwise.
std::optional<std::string> xtext_decode(std::string_view text);
// Octets 33..126 other than '+' and '=' stay; everything else becomes "+XX". decode(encode(x)) == x.
std::string xtext_encode(std::string_view text);

// The DSN vocabulary (dsn/request.hpp), under the names the parsers have always used.
using dsn::format_notify;
using dsn::kNotifyDelay;
using dsn::kNotifyFailure;
using dsn::kNotifyNever;
using dsn::kNotifySuccess;
using dsn::NotifyFlag;
using dsn::RecipientDsn;
using dsn::Ret;
using dsn::to_string;

// RFC 3461 4.1 NOTIFY: case-insensitive; NEVER only alone, no empty or repeated items. nullopt when invalid;
// never 0.
std::optional<unsigned> parse_notify(std::string_view value);

// RFC 3461 4.3 RET=FULL|HDRS, case-insensitive.
std::optional<Ret> parse_ret(std::string_view value);

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

}  // namespace ferry::smtp
