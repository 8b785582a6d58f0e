// Parameters of Content-Type (RFC 2045 5.1) and Content-Disposition (RFC 2183 2): "; attribute=value", as a
// quoted-string when the value is printable ASCII short enough for one line, else RFC 2231 extended parameters
// (charset utf-8, percent-encoded octets, continued over lines: RFC 2231 3, 4). Pure.
#pragma once

#include <string>
#include <string_view>

#include "mime/field_writer.hpp"

namespace ferry::mime {

// The longest quoted form "attribute=\"...\"" we write; longer values go RFC 2231 continued, and a fallback
// (ascii_fallback) is cut to it, so each parameter with its ';' fits on one kFoldWidth line.
inline constexpr std::size_t kMaxParameterLine = kFoldWidth - 2;

// Writes ';' then the parameter, folded before it when the line is full: attribute=value when the value is an
// RFC 2045 token and `always_quote` is false, attribute="value" for other printable ASCII that fits a line.
// `value` must be valid UTF-8 without control characters (header_text_error() says so). A value that needs RFC 2231 is followed by the same
// attribute as a plain quoted-string holding `fallback` when that is not empty (for readers without RFC 2231);
// the RFC 2231 form comes first, because readers that see both commonly take the first (Python's email
// package with its default policy does).
void write_parameter(FieldWriter& w, std::string_view attribute, std::string_view value,
                     std::string_view fallback = "", bool always_quote = false);

// True when `value` can be written as `attribute="value"` (printable ASCII, short enough).
bool fits_quoted(std::string_view attribute, std::string_view value);

// A printable ASCII stand-in for a file name: each non-ASCII character and each '"', '\' and control becomes
// '_'; cut (keeping an extension of up to 10 octets) so that fits_quoted(attribute, result) holds.
std::string ascii_fallback(std::string_view attribute, std::string_view value);

}  // namespace ferry::mime
