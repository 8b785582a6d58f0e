// A text body (text/plain, text/html) made ready for a MIME part: line ends made CRLF, then sent as it is when it
// is 7bit data (RFC 2045 2.7) or quoted-printable otherwise (RFC 2045 6.7). Pure.
#pragma once

#include <string>
#include <string_view>

namespace ferry::mime {

// RFC 2045 6.7 (5): encoded lines are at most 76 characters, the '=' of a soft line break included.
inline constexpr std::size_t kQuotedPrintableLineLength = 76;

struct TextBody {
    std::string content;                // CRLF line ends, ends with CRLF unless empty
    std::string_view transfer_encoding; // "7bit" or "quoted-printable"
};

// CRLF, a lone LF and a lone CR each become CRLF (a bare CR or LF may not travel in SMTP, RFC 5321 2.3.8), and a
// final line break is added when the text does not end with one. The result is 7bit when every octet is 1-127
// and no line is over 998 octets (RFC 5322 2.1.1), else quoted-printable.
TextBody encode_text_body(std::string_view text);

// The line ends of `text` as CRLF, with a final CRLF when `text` is not empty and does not end in a line break.
std::string canonical_lines(std::string_view text);

// RFC 2045 6.7 quoted-printable of canonical text (CRLF line ends): CRLF stays a hard line break, '=' and octets
// outside 33-126 become =XX (SP and HTAB only at the end of a line), lines are soft-broken at
// kQuotedPrintableLineLength.
std::string quoted_printable_encode(std::string_view canonical_text);

}  // namespace ferry::mime
