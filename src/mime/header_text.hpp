// Text a user typed, made fit for a header field: what may go in at all (no header injection), and how it is
// written (RFC 5322 atoms and quoted-strings, RFC 2047 encoded-words for the rest). Pure.
#pragma once

#include <string>
#include <string_view>

#include "mime/field_writer.hpp"

namespace ferry::mime {

// A word longer than this is not written as it is but as encoded-words, which may be cut anywhere: a line of
// the field then stays under kMaxLineLength whatever the name before it (RFC 5322 2.1.1).
inline constexpr std::size_t kMaxPlainWord = 900;

// Why `text` cannot go into a header field, naming it by `what` ("Subject", "To address"), or "" when it can.
// CR, LF and NUL would end the field or the line: "header injection: CR, LF or NUL in <what>". Other control
// characters (HTAB excepted) are refused too (RFC 5322 3.2.5 unstructured text is VCHAR and WSP), and so is text
// that is not UTF-8 (encoded-words declare utf-8).
std::string header_text_error(std::string_view text, std::string_view what);

// SP and HTAB (RFC 5234 WSP) removed from both ends.
std::string_view trim_wsp(std::string_view text);

// RFC 5322 3.2.5 unstructured text (Subject, Comments, most X- fields), trimmed: words (runs between WSP) that
// hold non-ASCII octets, contain "=?" (a decoder could take them for encoded-words, RFC 2047 6.1) or are longer
// than kMaxPlainWord become encoded-words, one run of them for consecutive such words (the whitespace between
// them inside the encoded text); the other words and the whitespace around them are written as they are.
// Decoding the field (unfold, decode encoded-words, drop the whitespace between adjacent ones) gives the
// trimmed text back.
void write_unstructured(FieldWriter& w, std::string_view text);

// ASCII text written exactly as given (trimmed), folded at its whitespace: for field values the user formatted
// (References, List-Unsubscribe), which must not be encoded. A word too long for a line makes w.ok() false.
void write_verbatim(FieldWriter& w, std::string_view text);

// A display name (RFC 5322 3.4 phrase), trimmed, not empty: atoms when it is atext words between single spaces
// ("Alice Smith"), a quoted-string when it is other printable ASCII ("Smith, Bob" → "\"Smith, Bob\""), else
// encoded-words for all of it (RFC 2047 5(3) allows them as words of a phrase).
void write_phrase(FieldWriter& w, std::string_view display_name);

}  // namespace ferry::mime
