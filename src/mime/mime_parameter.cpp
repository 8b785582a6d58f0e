#include "mime/mime_parameter.hpp"

#include <algorithm>

#include "util/ascii.hpp"
#include "util/utf8.hpp"

namespace ferry::mime {
namespace {

using util::kUpperHex;
constexpr std::size_t kMaxExtension = 10;

// RFC 2231 7 attribute-char: any printable US-ASCII CHAR except SPACE, "*", "'", "%" and tspecials.
bool is_attribute_char(char c) {
    return util::is_mime_token_char(c) && c != '*' && c != '\'' && c != '%';
}

// RFC 2045 5.1 token: printable ASCII without SPACE and tspecials.
bool is_token(std::string_view s) {
    if (s.empty()) return false;
    return std::all_of(s.begin(), s.end(), util::is_mime_token_char);
}

bool is_printable_ascii(std::string_view s) {
    for (const char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u >= 0x7F) return false;
    }
    return true;
}

std::string quoted(std::string_view value) {
    std::string out = "\"";
    for (const char c : value) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    out += '"';
    return out;
}

// One character's octets, percent-encoded where RFC 2231 7 requires it.
std::string percent_encoded(std::string_view octets) {
    std::string out;
    for (const char c : octets) {
        if (is_attribute_char(c)) {
            out += c;
        } else {
            const auto u = static_cast<unsigned char>(c);
            out += '%';
            out += kUpperHex[u >> 4];
            out += kUpperHex[u & 15];
        }
    }
    return out;
}

void write_extended(FieldWriter& w, std::string_view attribute, std::string_view value) {
    // Encode character by character so a section never ends inside a character or a %XX (RFC 2231 3 lets
    // sections be cut anywhere in the octets, but readers that decode each section alone are common).
    const std::string all = percent_encoded(value);
    const std::string initial = std::string(attribute) + "*=utf-8''";
    if (initial.size() + all.size() <= kMaxParameterLine) {
        w.glue(";");
        w.word(initial + all);
        return;
    }
    std::size_t section = 0;
    std::string current;
    const auto head = [&](std::size_t n) {
        return std::string(attribute) + "*" + std::to_string(n) + "*=" + (n == 0 ? "utf-8''" : "");
    };
    const auto flush = [&] {
        w.glue(";");
        w.word(head(section) + current);
        ++section;
        current.clear();
    };
    for (std::size_t pos = 0; pos < value.size();) {
        std::size_t len = util::utf8_sequence_length(value, pos);
        if (len == 0) len = 1;
        const std::string piece = percent_encoded(value.substr(pos, len));
        if (!current.empty() && head(section).size() + current.size() + piece.size() > kMaxParameterLine) flush();
        current += piece;
        pos += len;
    }
    if (!current.empty()) flush();
}

}  // namespace

bool fits_quoted(std::string_view attribute, std::string_view value) {
    return is_printable_ascii(value) && attribute.size() + 1 + quoted(value).size() <= kMaxParameterLine;
}

void write_parameter(FieldWriter& w, std::string_view attribute, std::string_view value, std::string_view fallback,
                     bool always_quote) {
    if (fits_quoted(attribute, value)) {
        w.glue(";");
        w.word(std::string(attribute) + "=" + (!always_quote && is_token(value) ? std::string(value) : quoted(value)));
        return;
    }
    write_extended(w, attribute, value);
    if (!fallback.empty()) {
        w.glue(";");
        w.word(std::string(attribute) + "=" + quoted(fallback));
    }
}

std::string ascii_fallback(std::string_view attribute, std::string_view value) {
    std::string plain;
    for (std::size_t pos = 0; pos < value.size();) {
        std::size_t len = util::utf8_sequence_length(value, pos);
        if (len == 0) len = 1;
        const char c = value[pos];
        const auto u = static_cast<unsigned char>(c);
        plain += len > 1 || u < 0x20 || u >= 0x7F || c == '"' || c == '\\' ? '_' : c;
        pos += len;
    }
    // attribute="plain": the room left for plain (no quoted-pairs remain in it).
    const std::size_t room = kMaxParameterLine > attribute.size() + 3 ? kMaxParameterLine - attribute.size() - 3 : 0;
    if (plain.size() <= room) return plain;
    std::string extension;
    const auto dot = plain.rfind('.');
    if (dot != std::string::npos && dot > 0 && plain.size() - dot <= kMaxExtension + 1 && plain.size() - dot < room)
        extension = plain.substr(dot);
    return plain.substr(0, room - extension.size()) + extension;
}

}  // namespace ferry::mime
