#include "mime/text_body.hpp"

#include "mime/field_writer.hpp"
#include "util/ascii.hpp"

namespace ferry::mime {
namespace {

using util::kUpperHex;

bool is_7bit(std::string_view canonical) {
    std::size_t line = 0;
    for (std::size_t i = 0; i < canonical.size(); ++i) {
        const auto u = static_cast<unsigned char>(canonical[i]);
        if (u == 0 || u >= 0x80) return false;   // RFC 2045 2.7: no NUL, nothing over 127
        if (canonical[i] == '\r') {              // always the CR of a CRLF here
            line = 0;
            ++i;
            continue;
        }
        if (++line > kMaxLineLength) return false;
    }
    return true;
}

void encode_line(std::string_view line, std::string& out) {
    std::size_t column = 0;
    for (std::size_t i = 0; i < line.size(); ++i) {
        const char c = line[i];
        const auto u = static_cast<unsigned char>(c);
        const bool last = i + 1 == line.size();
        char token[3] = {c, 0, 0};
        std::size_t len = 1;
        // RFC 2045 6.7 (2) literal 33-60 and 62-126; (3) SP and HTAB, but not at the end of a line.
        const bool literal = (u >= 33 && u <= 126 && c != '=') || ((c == ' ' || c == '\t') && !last);
        if (!literal) {
            token[0] = '=';
            token[1] = kUpperHex[u >> 4];
            token[2] = kUpperHex[u & 15];
            len = 3;
        }
        // The last token of the line may reach the limit; any other must leave room for the soft break's '='.
        const std::size_t limit = last ? kQuotedPrintableLineLength : kQuotedPrintableLineLength - 1;
        if (column + len > limit) {
            out += "=\r\n";
            column = 0;
        }
        out.append(token, len);
        column += len;
    }
}

}  // namespace

std::string canonical_lines(std::string_view text) {
    std::string out;
    out.reserve(text.size() + text.size() / 32 + 2);
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '\r') {
            out += "\r\n";
            if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
        } else if (c == '\n') {
            out += "\r\n";
        } else {
            out += c;
        }
    }
    if (!out.empty() && !out.ends_with("\r\n")) out += "\r\n";
    return out;
}

std::string quoted_printable_encode(std::string_view canonical_text) {
    std::string out;
    out.reserve(canonical_text.size() * 2);
    while (!canonical_text.empty()) {
        const auto end = canonical_text.find("\r\n");
        encode_line(canonical_text.substr(0, end), out);
        if (end == std::string_view::npos) break;   // (not canonical: no final CRLF; none is added)
        out += "\r\n";
        canonical_text.remove_prefix(end + 2);
    }
    return out;
}

TextBody encode_text_body(std::string_view text) {
    std::string canonical = canonical_lines(text);
    if (is_7bit(canonical)) return {std::move(canonical), "7bit"};
    return {quoted_printable_encode(canonical), "quoted-printable"};
}

}  // namespace ferry::mime
