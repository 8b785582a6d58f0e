// Base64 (RFC 4648 4): the one implementation Ferry uses, for SASL (RFC 4954), DKIM (RFC 6376 2.4) and MIME
// bodies (RFC 2045 6.8). Pure; nothing here throws for bad input.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace ferry::util {

// RFC 2045 6.8: encoded lines are at most 76 characters.
inline constexpr std::size_t kMimeBase64LineLength = 76;

// Padded base64 in one line, no line breaks.
std::string base64_encode(std::string_view octets);

// The Content-Transfer-Encoding: base64 form (RFC 2045 6.8): lines of kMimeBase64LineLength characters (the last
// one shorter), each ended by CRLF. The empty input gives the empty text (no line at all).
std::string base64_encode_mime(std::string_view octets);

// Strict decoding: only the 64 letters of the alphabet, the length a multiple of 4, '=' only as the last one or
// two characters completing the last quantum; no whitespace or line breaks (callers that allow them strip them
// first: SASL never does, DKIM strips FWS from b=, bh= and p=, a MIME reader removes the CRLFs). Non-zero bits
// under the padding (RFC 4648 3.5 lets a decoder refuse them) are accepted, as both SASL and DKIM did before
// sharing this code. nullopt otherwise. The empty text decodes to the empty string.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace ferry::util
