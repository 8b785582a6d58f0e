// UTF-8 (RFC 3629): validity and character boundaries, for text that must be cut only between characters
// (RFC 2047 5: an encoded-word holds whole characters). Octets only; no normalization.
#pragma once

#include <cstddef>
#include <string_view>

namespace ferry::util {

// The length of the well-formed UTF-8 sequence at text[pos], or 0 when none starts there (RFC 3629 4:
// no overlong forms, no surrogates, nothing above U+10FFFF, no cut sequence at the end).
inline std::size_t utf8_sequence_length(std::string_view text, std::size_t pos) {
    const auto at = [&](std::size_t i) { return pos + i < text.size() ? static_cast<unsigned char>(text[pos + i]) : 0U; };
    const unsigned c = at(0);
    const auto cont = [&](std::size_t i, unsigned lo = 0x80, unsigned hi = 0xBF) { return at(i) >= lo && at(i) <= hi; };
    if (pos >= text.size()) return 0;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
    if (c == 0xE0) return cont(1, 0xA0) && cont(2) ? 3 : 0;
    if (c == 0xED) return cont(1, 0x80, 0x9F) && cont(2) ? 3 : 0;   // not the surrogates D800-DFFF
    if (c >= 0xE1 && c <= 0xEF) return cont(1) && cont(2) ? 3 : 0;
    if (c == 0xF0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
    if (c >= 0xF1 && c <= 0xF3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
    if (c == 0xF4) return cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : 0;
    return 0;
}

inline bool is_valid_utf8(std::string_view text) {
    for (std::size_t i = 0; i < text.size();) {
        const std::size_t n = utf8_sequence_length(text, i);
        if (n == 0) return false;
        i += n;
    }
    return true;
}

inline bool is_ascii(std::string_view text) {
    for (const char c : text)
        if (static_cast<unsigned char>(c) >= 0x80) return false;
    return true;
}

}  // namespace ferry::util
