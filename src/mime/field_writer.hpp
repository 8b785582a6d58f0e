// Writes one header field, folded (RFC 5322 2.2.3: CRLF inserted before whitespace, so unfolding gives the value
// back exactly) so that lines stay within kFoldWidth octets where the words allow, and with RFC 2047
// encoded-words for text that cannot go into a header as it is. Pure. What may be written (atoms, quoted
// strings, which octets) is the caller's business: see header_text.hpp.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ferry::mime {

// RFC 5322 2.1.1: lines SHOULD be at most 78 octets; RFC 2047 2: a line holding an encoded-word at most 76. One
// width for every field we write keeps both.
inline constexpr std::size_t kFoldWidth = 76;
// RFC 5322 2.1.1: lines MUST be at most 998 octets, CRLF excluded.
inline constexpr std::size_t kMaxLineLength = 998;
// RFC 2047 2: an encoded-word is at most 75 octets.
inline constexpr std::size_t kMaxEncodedWordLength = 75;

class FieldWriter {
public:
    // Starts the field: "Name:". The name is not checked here.
    explicit FieldWriter(std::string_view name);

    // A word that must not be broken, after `space` (one or more SP/HTAB, written as given). The field is folded
    // before `space` when the word and one more octet (a ',' or ';' glued after it) would pass kFoldWidth and the
    // line already holds a word of this field.
    void word(std::string_view text, std::string_view space = " ");

    // Text glued to what precedes it, with no fold point before it (the ',' after a mailbox, the ';' after a
    // parameter, the '=' and value of a parameter).
    void glue(std::string_view text);

    // RFC 2047 encoded-words, B encoding of UTF-8 (RFC 2047 4.1), for `text` (valid UTF-8; not checked): the first
    // after `space`, each next one after a SP, which decoders drop between adjacent encoded-words (RFC 2047 6.2),
    // so decoding gives `text` back exactly. Each word holds whole characters (RFC 2047 5) and is at most
    // kMaxEncodedWordLength octets; the first is cut to what fits on the current line.
    void encoded_words(std::string_view text, std::string_view space = " ");

    // False once a line went over kMaxLineLength (a word too long to fold); the field must not be used then.
    bool ok() const { return ok_; }

    // The field with its final CRLF.
    std::string finish() &&;

private:
    void fold();
    void append(std::string_view text);
    std::size_t line_length() const { return out_.size() - line_start_; }

    std::string out_;
    std::size_t line_start_ = 0;
    bool has_word_ = false;      // a word or encoded-word was written since the field started
    bool fresh_line_ = false;    // the current line is a continuation with nothing on it yet
    bool ok_ = true;
};

}  // namespace ferry::mime
