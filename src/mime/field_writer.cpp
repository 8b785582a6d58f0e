#include "mime/field_writer.hpp"

#include <algorithm>
#include <utility>

#include "util/base64.hpp"
#include "util/utf8.hpp"

namespace ferry::mime {
namespace {

constexpr std::string_view kEncodedWordStart = "=?utf-8?B?";
constexpr std::string_view kEncodedWordEnd = "?=";
constexpr std::size_t kEncodedWordOverhead = kEncodedWordStart.size() + kEncodedWordEnd.size();

// The most octets of `text` from `pos`, in whole characters, whose B encoding fits `room` octets of encoded-word.
std::size_t octets_fitting(std::string_view text, std::size_t pos, std::size_t room) {
    if (room <= kEncodedWordOverhead) return 0;
    const std::size_t max_octets = (room - kEncodedWordOverhead) / 4 * 3;
    std::size_t n = 0;
    while (pos + n < text.size()) {
        std::size_t len = util::utf8_sequence_length(text, pos + n);
        if (len == 0) len = 1;   // not UTF-8 (the caller checks first): still never loop or cut mid-octet
        if (n + len > max_octets) break;
        n += len;
    }
    return n;
}

}  // namespace

FieldWriter::FieldWriter(std::string_view name) {
    out_.reserve(name.size() + 80);
    append(name);
    append(":");
}

void FieldWriter::append(std::string_view text) {
    out_ += text;
    if (line_length() > kMaxLineLength) ok_ = false;
}

void FieldWriter::fold() {
    out_ += "\r\n";
    line_start_ = out_.size();
    fresh_line_ = true;
}

void FieldWriter::word(std::string_view text, std::string_view space) {
    if (space.empty()) space = " ";
    // One octet is kept free for a ',' or ';' glued after the word, which cannot move to the next line.
    if (has_word_ && !fresh_line_ && line_length() + space.size() + text.size() + 1 > kFoldWidth) fold();
    append(space);
    append(text);
    has_word_ = true;
    fresh_line_ = false;
}

void FieldWriter::glue(std::string_view text) {
    append(text);
    if (!text.empty()) fresh_line_ = false;
}

void FieldWriter::encoded_words(std::string_view text, std::string_view space) {
    if (space.empty()) space = " ";
    std::size_t pos = 0;
    while (pos < text.size()) {
        const auto room_here = [&] {
            const std::size_t used = line_length() + space.size();
            return used >= kFoldWidth ? std::size_t{0} : std::min(kFoldWidth - used, kMaxEncodedWordLength);
        };
        std::size_t n = octets_fitting(text, pos, room_here());
        // Too little room left on this line for even one character (or, on a line that already holds words,
        // for a reasonable share of the text): go on the next line, where a whole word fits.
        if (!fresh_line_ && (n == 0 || (has_word_ && n < (text.size() - pos) && n < 9))) {
            fold();
            n = octets_fitting(text, pos, room_here());
        }
        if (n == 0) n = util::utf8_sequence_length(text, pos) ? util::utf8_sequence_length(text, pos) : 1;
        append(space);
        append(kEncodedWordStart);
        append(util::base64_encode(text.substr(pos, n)));
        append(kEncodedWordEnd);
        pos += n;
        space = " ";
        has_word_ = true;
        fresh_line_ = false;
    }
}

std::string FieldWriter::finish() && {
    out_ += "\r\n";
    return std::move(out_);
}

}  // namespace ferry::mime
