// The message composer behind `ferry send` (mime/compose and the writers under it) on arbitrary values. Input:
// one mode octet, then fields separated by 0x1F (lists inside a field by 0x1E, the parts of an entry by 0x1D),
// so CR, LF and NUL can appear in any value:
//   'w' the RFC 2047 writers: the rest as unstructured text (Subject) and as a display name
//   'p' the RFC 2231 parameter writer: the rest as a file name
//   'a' parse_address_argument: the rest
//   'h' parse_header_argument: the rest, then compose() with the field as an extra header
//   anything else: compose() with fields from-name, from-address, to (name 0x1D address entries), cc, subject,
//       text, html (present when not empty), attachments (filename 0x1D type 0x1D data), extra headers
//       (name 0x1D value), message-id, boundary token
//
// Checked: any CR, LF or NUL in a header value, display name, address, file name, content type, Message-ID or
// extra header gives an error and no message; a message has only CRLF line ends, no line over 998 octets, and
// every header line starts a field or continues one (never a whitespace-only fold); encoded-words are at most 75
// octets and hold whole UTF-8 characters; read back with the decoders below (written here, independent of the
// encoders: RFC 2047 6.2 display, quoted-strings, RFC 2231 sections, multipart, base64, quoted-printable) the
// Subject, the display names and addresses, the extra headers, the text and html bodies (canonical CRLF form) and
// every attachment (byte-exact, with its file name) are what went in; an accepted address argument re-parses to
// itself from its printed form.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "reference_base64.hpp"
#include "mime/compose.hpp"
#include "mime/field_writer.hpp"
#include "mime/header_text.hpp"
#include "mime/mime_parameter.hpp"
#include "mime/text_body.hpp"
#include "smtp/address.hpp"
#include "util/ascii.hpp"

using namespace ferry;
using mime::Address;

namespace {

using util::ascii_iequals;
using util::ascii_lower;
using util::is_wsp;

constexpr std::time_t kDate = 1795430789;

// ---- splitting the input --------------------------------------------------------------------------------------

std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> out;
    while (true) {
        const auto at = s.find(sep);
        out.push_back(s.substr(0, at));
        if (at == std::string_view::npos) break;
        s.remove_prefix(at + 1);
    }
    return out;
}

bool has_break(std::string_view s) { return s.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos; }

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_wsp(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_wsp(s.back())) s.remove_suffix(1);
    return s;
}

// ---- reference decoders ---------------------------------------------------------------------------------------

// RFC 4648, padding required; CRLF line breaks skipped.
std::optional<std::string> b64_decode(std::string_view t) {
    std::string clean;
    for (const char c : t)
        if (c != '\r' && c != '\n') clean += c;
    auto decoded = fuzz::reference_base64_decode(clean);
    if (!decoded) return std::nullopt;
    return std::move(decoded->octets);
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::string qp_decode(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '=') {
            out += s[i];
            continue;
        }
        if (s.substr(i + 1, 2) == "\r\n") {
            i += 2;
            continue;
        }
        FUZZ_CHECK(i + 2 < s.size());
        const int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
        FUZZ_CHECK(hi >= 0 && lo >= 0);   // our encoder writes upper-case hex only
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
    }
    return out;
}

bool valid_utf8(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        std::size_t n = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        if (n == 0 || i + n > s.size()) return false;
        std::uint32_t cp = n == 1 ? c : n == 2 ? c & 0x1F : n == 3 ? c & 0x0F : c & 0x07;
        for (std::size_t j = 1; j < n; ++j) {
            const auto d = static_cast<unsigned char>(s[i + j]);
            if ((d & 0xC0) != 0x80) return false;
            cp = cp << 6 | (d & 0x3F);
        }
        if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n;
    }
    return true;
}

// A whitespace-delimited token as a UTF-8 encoded-word (RFC 2047 2), decoded; nullopt when it is not one.
std::optional<std::string> encoded_word(std::string_view w) {
    if (w.size() < 8 || !w.starts_with("=?") || !w.ends_with("?=")) return std::nullopt;
    const auto q = w.find('?', 2);
    if (q == std::string_view::npos || q + 3 > w.size() - 2 || w[q + 2] != '?') return std::nullopt;
    if (!ascii_iequals(w.substr(2, q - 2), "utf-8") || (w[q + 1] != 'B' && w[q + 1] != 'b')) return std::nullopt;
    return b64_decode(w.substr(q + 3, w.size() - q - 5));
}

// RFC 2047 6.2: encoded-words decoded, the whitespace between two adjacent ones dropped, the rest kept.
std::string decode_words(std::string_view text) {
    std::string out;
    bool last_encoded = false;
    std::size_t pos = 0;
    while (pos < text.size()) {
        const std::size_t ws = pos;
        while (pos < text.size() && is_wsp(text[pos])) ++pos;
        const std::string_view space = text.substr(ws, pos - ws);
        const std::size_t start = pos;
        while (pos < text.size() && !is_wsp(text[pos])) ++pos;
        const std::string_view word = text.substr(start, pos - start);
        const auto d = word.empty() ? std::nullopt : encoded_word(word);
        if (!(d && last_encoded)) out += space;
        if (d) out += *d;
        else out += word;
        last_encoded = d.has_value();
    }
    return out;
}

std::string unquote(std::string_view q) {
    FUZZ_CHECK(q.size() >= 2 && q.front() == '"' && q.back() == '"');
    std::string out;
    for (std::size_t i = 1; i + 1 < q.size(); ++i) {
        if (q[i] == '\\') ++i;
        out += q[i];
    }
    return out;
}

// A display name as written by write_phrase: a quoted-string, encoded-words or atoms. Its encoded-words are at
// most 75 octets and hold whole UTF-8 characters.
std::string decode_phrase(std::string_view p) {
    p = trim(p);
    if (p.starts_with('"')) return unquote(p);
    for (const std::string_view token : split(p, ' ')) {
        if (!token.starts_with("=?")) continue;
        FUZZ_CHECK(token.size() <= mime::kMaxEncodedWordLength);
        const auto decoded = encoded_word(token);
        FUZZ_CHECK(decoded && !decoded->empty() && valid_utf8(*decoded));
    }
    return decode_words(p);
}

// Checks the lines of a message or field; returns the header section's fields (unfolded, value without the
// leading WSP) and the raw text of each.
struct Field {
    std::string name, value;
    std::string_view raw;
};

void check_lines(std::string_view text) {
    FUZZ_CHECK(text.ends_with("\r\n"));
    std::size_t pos = 0;
    while (pos < text.size()) {
        const auto end = text.find("\r\n", pos);
        FUZZ_CHECK(end != std::string_view::npos);
        const std::string_view line = text.substr(pos, end - pos);
        FUZZ_CHECK(line.find_first_of("\r\n") == std::string_view::npos);   // no bare CR or LF
        FUZZ_CHECK(line.size() <= 998);                                       // RFC 5322 2.1.1
        pos = end + 2;
    }
}

std::vector<Field> header_fields(std::string_view header) {
    std::vector<Field> out;
    std::vector<std::size_t> starts;
    std::size_t pos = 0;
    while (pos < header.size()) {
        const auto end = header.find("\r\n", pos);
        FUZZ_CHECK(end != std::string_view::npos);
        const std::string_view line = header.substr(pos, end - pos);
        FUZZ_CHECK(!line.empty());
        if (is_wsp(line.front())) {
            FUZZ_CHECK(!out.empty());   // a fold continues a field
            FUZZ_CHECK(line.find_first_not_of(" \t") != std::string_view::npos);   // never only whitespace
            out.back().value += line;   // unfolding removes the CRLF only
        } else {
            const auto colon = line.find(':');
            FUZZ_CHECK(colon != std::string_view::npos && colon > 0);   // every other line starts a field
            for (const char c : line.substr(0, colon))
                FUZZ_CHECK(static_cast<unsigned char>(c) > 32 && static_cast<unsigned char>(c) < 127);
            out.push_back({std::string(line.substr(0, colon)), std::string(line.substr(colon + 1)), {}});
            starts.push_back(pos);
        }
        pos = end + 2;
    }
    for (std::size_t i = 0; i < out.size(); ++i) {
        const std::size_t end = i + 1 < out.size() ? starts[i + 1] : header.size();
        out[i].raw = header.substr(starts[i], end - starts[i]);
        const auto first = out[i].value.find_first_not_of(" \t");
        out[i].value.erase(0, first == std::string::npos ? out[i].value.size() : first);
    }
    return out;
}

// Encoded-words in a field: each at most 75 octets and whole UTF-8 characters.
void check_encoded_words(std::string_view raw) {
    std::size_t pos = raw.find(':');   // the value only: a field name may hold anything printable
    FUZZ_CHECK(pos != std::string_view::npos);
    while ((pos = raw.find("=?utf-8?B?", pos)) != std::string_view::npos) {
        const auto end = raw.find("?=", pos + 10);
        FUZZ_CHECK(end != std::string_view::npos);
        const std::string_view word = raw.substr(pos, end + 2 - pos);
        FUZZ_CHECK(word.size() <= mime::kMaxEncodedWordLength);
        const auto decoded = encoded_word(word);
        FUZZ_CHECK(decoded && !decoded->empty() && valid_utf8(*decoded));
        pos = end + 2;
    }
}

struct Entity {
    std::vector<Field> fields;
    std::string_view body;
    const Field* get(std::string_view name) const {
        for (const Field& f : fields)
            if (ascii_iequals(f.name, name)) return &f;
        return nullptr;
    }
};

Entity entity(std::string_view text) {
    Entity e;
    const auto split_at = text.find("\r\n\r\n");
    if (text.starts_with("\r\n")) {
        e.body = text.substr(2);
        return e;
    }
    FUZZ_CHECK(split_at != std::string_view::npos);
    e.fields = header_fields(text.substr(0, split_at + 2));
    e.body = text.substr(split_at + 4);
    return e;
}

// Parameters of a Content-* value, RFC 2231 sections joined and decoded.
struct Parameters {
    std::string value;
    std::map<std::string, std::string> plain, extended;
};

Parameters parameters(std::string_view v) {
    std::vector<std::string> pieces(1);
    bool quoted = false;
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (quoted && v[i] == '\\' && i + 1 < v.size()) {
            pieces.back() += v[i];
            pieces.back() += v[++i];
            continue;
        }
        if (v[i] == '"') quoted = !quoted;
        if (!quoted && v[i] == ';') pieces.emplace_back();
        else pieces.back() += v[i];
    }
    FUZZ_CHECK(!quoted);
    Parameters p;
    p.value = std::string(trim(pieces[0]));
    std::map<std::string, std::map<int, std::string>> sections;
    for (std::size_t i = 1; i < pieces.size(); ++i) {
        const std::string_view piece = trim(pieces[i]);
        const auto eq = piece.find('=');
        FUZZ_CHECK(eq != std::string_view::npos && eq > 0);
        std::string attr = ascii_lower(piece.substr(0, eq));
        const std::string_view val = piece.substr(eq + 1);
        if (!attr.ends_with('*')) {
            FUZZ_CHECK(attr.find('*') == std::string::npos);
            FUZZ_CHECK(!p.plain.count(attr));
            p.plain[attr] = val.starts_with('"') ? unquote(val) : std::string(val);
            continue;
        }
        attr.pop_back();
        int n = -1;
        if (const auto star = attr.find('*'); star != std::string::npos) {
            n = std::stoi(attr.substr(star + 1));
            attr.resize(star);
        }
        std::string text;
        std::string_view rest = val;
        if (n <= 0) {
            FUZZ_CHECK(rest.starts_with("utf-8''"));
            rest.remove_prefix(7);
        }
        for (std::size_t j = 0; j < rest.size(); ++j) {
            const char c = rest[j];
            FUZZ_CHECK(static_cast<unsigned char>(c) > 32 && static_cast<unsigned char>(c) < 127 && c != '"' && c != ';');
            if (c == '%') {
                FUZZ_CHECK(j + 2 < rest.size() + 0 && hex_value(rest[j + 1]) >= 0 && hex_value(rest[j + 2]) >= 0);
                text += static_cast<char>(hex_value(rest[j + 1]) * 16 + hex_value(rest[j + 2]));
                j += 2;
            } else {
                text += c;
            }
        }
        FUZZ_CHECK(!sections[attr].count(std::max(n, 0)));
        sections[attr][std::max(n, 0)] = text;
    }
    for (const auto& [attr, parts] : sections) {
        int expect = 0;
        std::string all;
        for (const auto& [n, text] : parts) {
            FUZZ_CHECK(n == expect++);
            FUZZ_CHECK(valid_utf8(text));   // sections end between characters
            all += text;
        }
        p.extended[attr] = all;
    }
    return p;
}

std::string shown(const Parameters& p, const std::string& attr) {
    if (p.extended.count(attr)) return p.extended.at(attr);
    return p.plain.count(attr) ? p.plain.at(attr) : std::string();
}

std::vector<Entity> multipart_parts(const Entity& e) {
    const Field* type = e.get("Content-Type");
    FUZZ_CHECK(type);
    const Parameters p = parameters(type->value);
    FUZZ_CHECK(p.value.starts_with("multipart/") && p.plain.count("boundary"));
    const std::string delimiter = "--" + p.plain.at("boundary");
    FUZZ_CHECK(delimiter.size() <= 72);   // RFC 2046 5.1.1: at most 70 characters
    FUZZ_CHECK(e.body.starts_with(delimiter + "\r\n"));
    std::vector<Entity> parts;
    std::size_t pos = delimiter.size() + 2;
    while (true) {
        const auto next = e.body.find("\r\n" + delimiter, pos);
        FUZZ_CHECK(next != std::string_view::npos);
        parts.push_back(entity(e.body.substr(pos, next - pos)));
        pos = next + 2 + delimiter.size();
        if (e.body.substr(pos, 2) == "--") {
            FUZZ_CHECK(pos + 2 == e.body.size() || e.body.substr(pos + 2) == "\r\n");
            break;
        }
        FUZZ_CHECK(e.body.substr(pos, 2) == "\r\n");
        pos += 2;
    }
    return parts;
}

std::string content(const Entity& e) {
    const Field* cte = e.get("Content-Transfer-Encoding");
    const std::string encoding = cte ? ascii_lower(cte->value) : "7bit";
    if (encoding == "base64") {
        for (std::size_t pos = 0; pos < e.body.size();) {
            const auto end = e.body.find("\r\n", pos);
            FUZZ_CHECK(end != std::string_view::npos && end - pos <= 76);   // RFC 2045 6.8
            pos = end + 2;
        }
        const auto d = b64_decode(e.body);
        FUZZ_CHECK(d);
        return *d;
    }
    if (encoding == "quoted-printable") {
        for (std::size_t pos = 0; pos < e.body.size();) {
            const auto end = e.body.find("\r\n", pos);
            FUZZ_CHECK(end != std::string_view::npos && end - pos <= 76);   // RFC 2045 6.7 (5)
            const std::string_view line = e.body.substr(pos, end - pos);
            FUZZ_CHECK(line.empty() || !is_wsp(line.back()));              // RFC 2045 6.7 (3)
            for (const char c : line)
                FUZZ_CHECK((static_cast<unsigned char>(c) >= 32 && static_cast<unsigned char>(c) < 127) || c == '\t');
            pos = end + 2;
        }
        return qp_decode(e.body);
    }
    FUZZ_CHECK(encoding == "7bit");
    for (const char c : e.body) FUZZ_CHECK(c != '\0' && static_cast<unsigned char>(c) < 0x80);
    return std::string(e.body);
}

// The text a writer is handed: header_text_error() passes it (the writers' precondition).
bool writable(std::string_view s) { return mime::header_text_error(s, "x").empty(); }

// Mailboxes of an address list as compose writes them.
std::vector<Address> mailboxes(std::string_view value) {
    std::vector<Address> out;
    std::vector<std::string_view> items;
    bool quoted = false;
    int literal = 0;
    std::size_t start = 0;
    for (std::size_t i = 0; i < value.size(); ++i) {
        if (quoted) {
            if (value[i] == '\\') ++i;
            else if (value[i] == '"') quoted = false;
        } else if (value[i] == '"') {
            quoted = true;
        } else if (value[i] == '[') {
            ++literal;
        } else if (value[i] == ']') {
            --literal;
        } else if (value[i] == ',' && literal == 0) {
            items.push_back(value.substr(start, i - start));
            start = i + 1;
        }
    }
    items.push_back(value.substr(start));
    for (std::string_view item : items) {
        item = trim(item);
        if (!item.ends_with('>')) {
            out.push_back({"", std::string(item)});
            continue;
        }
        // The '<' of the angle-addr: the last one outside a quoted string.
        std::size_t lt = std::string_view::npos;
        bool q = false;
        for (std::size_t i = 0; i < item.size(); ++i) {
            if (q) {
                if (item[i] == '\\') ++i;
                else if (item[i] == '"') q = false;
            } else if (item[i] == '"') {
                q = true;
            } else if (item[i] == '<') {
                lt = i;
            }
        }
        FUZZ_CHECK(lt != std::string_view::npos);
        out.push_back({decode_phrase(item.substr(0, lt)), std::string(item.substr(lt + 1, item.size() - lt - 2))});
    }
    return out;
}

// ---- the modes ------------------------------------------------------------------------------------------------

void fuzz_words(std::string_view text) {
    if (!writable(text)) return;
    std::size_t longest_space = 0;
    for (std::size_t i = 0, run = 0; i < text.size(); ++i) {
        run = is_wsp(text[i]) ? run + 1 : 0;
        longest_space = std::max(longest_space, run);
    }
    {
        mime::FieldWriter w("Subject");
        mime::write_unstructured(w, text);
        FUZZ_CHECK(w.ok());   // words over kMaxPlainWord are encoded, so nothing is too long
        const std::string field = std::move(w).finish();
        check_lines(field);
        const auto fields = header_fields(field);
        FUZZ_CHECK(fields.size() == 1 && fields[0].name == "Subject");
        FUZZ_CHECK(decode_words(fields[0].value) == trim(text));
        check_encoded_words(field);
        // A line with an encoded-word stays within 76 octets (RFC 2047 2) unless the text's own whitespace is long.
        if (longest_space < 20)
            for (const std::string_view line : split(field, '\n'))
                if (line.find("=?utf-8?B?") != std::string_view::npos) FUZZ_CHECK(line.size() <= mime::kFoldWidth + 1);
    }
    if (!trim(text).empty()) {
        mime::FieldWriter w("From");
        mime::write_phrase(w, text);
        const std::string field = std::move(w).finish();
        check_lines(field);
        check_encoded_words(field);
        const auto fields = header_fields(field);
        FUZZ_CHECK(fields.size() == 1);
        FUZZ_CHECK(decode_phrase(fields[0].value) == trim(text));
        // An encoded display name is encoded-words only: every line within 76 octets.
        if (field.find("=?utf-8?B?") != std::string::npos)
            for (const std::string_view line : split(field, '\n')) FUZZ_CHECK(line.size() <= mime::kFoldWidth + 1);
    }
}

void fuzz_parameter(std::string_view value) {
    if (!writable(value) || value.empty()) return;
    mime::FieldWriter w("Content-Disposition");
    w.word("attachment");
    const std::string fallback = mime::ascii_fallback("filename", value);
    for (const char c : fallback) FUZZ_CHECK(c >= 0x20 && c < 0x7F && c != '"' && c != '\\');
    FUZZ_CHECK(mime::fits_quoted("filename", fallback));
    mime::write_parameter(w, "filename", value, fallback, true);
    FUZZ_CHECK(w.ok());
    const std::string field = std::move(w).finish();
    check_lines(field);
    for (const std::string_view line : split(field, '\n')) FUZZ_CHECK(line.size() <= mime::kFoldWidth + 1);
    const auto fields = header_fields(field);
    FUZZ_CHECK(fields.size() == 1);
    const Parameters p = parameters(fields[0].value);
    FUZZ_CHECK(p.value == "attachment");
    FUZZ_CHECK(shown(p, "filename") == value);
    if (p.extended.count("filename")) FUZZ_CHECK(p.plain.at("filename") == fallback);
}

mime::Composition base() {
    mime::Composition c;
    c.from = {"Fuzz", "fuzz@example.test"};
    c.to = {{"", "to@example.test"}};
    c.subject = "fuzz";
    c.text = "text\n";
    c.date = kDate;
    c.message_id = "<fuzz@example.test>";
    c.boundary_token = "fuzz";
    return c;
}

void check_composed(const mime::Composition& c);

void fuzz_address(std::string_view text) {
    std::string why;
    const auto a = mime::parse_address_argument(text, why);
    if (!a) {
        FUZZ_CHECK(!why.empty());
        return;
    }
    FUZZ_CHECK(!has_break(text));
    FUZZ_CHECK(!has_break(a->display_name) && !has_break(a->address));
    const auto mailbox = smtp::parse_mailbox(a->address);
    FUZZ_CHECK(mailbox && !mailbox->utf8 && mailbox->to_string() == a->address);
    FUZZ_CHECK(trim(a->display_name) == a->display_name);
    // Printed again (the name quoted), it parses to the same address.
    std::string printed = a->address;
    if (!a->display_name.empty()) {
        std::string q = "\"";
        for (const char c : a->display_name) {
            if (c == '"' || c == '\\') q += '\\';
            q += c;
        }
        printed = q + "\" <" + a->address + ">";
    }
    const auto again = mime::parse_address_argument(printed, why);
    FUZZ_CHECK(again && *again == *a);
    mime::Composition c = base();
    c.from = *a;
    c.to = {*a};
    check_composed(c);
}

void fuzz_header(std::string_view text) {
    std::string why;
    const auto h = mime::parse_header_argument(text, why);
    if (!h) {
        FUZZ_CHECK(!why.empty());
        return;
    }
    FUZZ_CHECK(!has_break(text));
    FUZZ_CHECK(!h->first.empty() && h->first.find(':') == std::string::npos);
    FUZZ_CHECK(trim(h->second) == h->second);
    mime::Composition c = base();
    c.extra_headers = {*h};
    check_composed(c);
}

std::vector<std::vector<std::string_view>> entries(std::string_view field) {
    std::vector<std::vector<std::string_view>> out;
    if (field.empty()) return out;
    for (const std::string_view e : split(field, '\x1e')) out.push_back(split(e, '\x1d'));
    return out;
}

std::string_view part(const std::vector<std::string_view>& e, std::size_t i) { return i < e.size() ? e[i] : ""; }

void fuzz_compose(std::string_view input) {
    const auto f = split(input, '\x1f');
    const auto at = [&](std::size_t i) { return i < f.size() ? f[i] : std::string_view(); };
    mime::Composition c = base();
    c.from = {std::string(at(0)), std::string(at(1))};
    c.to.clear();
    for (const auto& e : entries(at(2))) c.to.push_back({std::string(part(e, 0)), std::string(part(e, 1))});
    for (const auto& e : entries(at(3))) c.cc.push_back({std::string(part(e, 0)), std::string(part(e, 1))});
    c.subject = std::string(at(4));
    c.text = std::string(at(5));
    if (!at(6).empty()) c.html = std::string(at(6));
    for (const auto& e : entries(at(7)))
        c.attachments.push_back({std::string(part(e, 0)), std::string(part(e, 1)), std::string(part(e, 2))});
    for (const auto& e : entries(at(8))) c.extra_headers.emplace_back(std::string(part(e, 0)), std::string(part(e, 1)));
    if (f.size() > 9) c.message_id = std::string(at(9));
    c.boundary_token = std::string(at(10));
    check_composed(c);
}

bool injected(const mime::Composition& c) {
    bool any = has_break(c.from.display_name) || has_break(c.from.address) || has_break(c.subject) ||
               has_break(c.message_id);
    for (const auto& list : {c.to, c.cc})
        for (const Address& a : list) any = any || has_break(a.display_name) || has_break(a.address);
    for (const auto& a : c.attachments) any = any || has_break(a.filename) || has_break(a.content_type);
    for (const auto& [n, v] : c.extra_headers) any = any || has_break(n) || has_break(v);
    return any;
}

std::string canonical_address(std::string_view a) {
    const auto m = smtp::parse_mailbox(a);
    FUZZ_CHECK(m);
    return m->to_string();
}

void check_list(const Field* field, const std::vector<Address>& given) {
    FUZZ_CHECK(field);
    const auto got = mailboxes(field->value);   // (an addr-spec may hold "=?" as it is: atext)
    FUZZ_CHECK(got.size() == given.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
        FUZZ_CHECK(got[i].display_name == trim(given[i].display_name));
        FUZZ_CHECK(got[i].address == canonical_address(given[i].address));
    }
}

void check_composed(const mime::Composition& c) {
    const mime::Composed r = mime::compose(c);
    if (injected(c)) {
        FUZZ_CHECK(!r.ok() && r.message.empty());
        return;
    }
    if (!r.ok()) {
        FUZZ_CHECK(r.message.empty());
        return;
    }
    check_lines(r.message);
    const Entity top = entity(r.message);
    // Header: the fields compose writes, once each, in order.
    std::vector<std::string> names;
    for (const Field& fld : top.fields) names.push_back(ascii_lower(fld.name));
    FUZZ_CHECK(!names.empty() && names[0] == "from");
    for (const char* once : {"from", "to", "cc", "subject", "date", "message-id", "mime-version", "content-type",
                             "content-transfer-encoding", "bcc"})
        FUZZ_CHECK(std::count(names.begin(), names.end(), once) <= 1);
    FUZZ_CHECK(std::count(names.begin(), names.end(), "bcc") == 0);
    check_list(top.get("From"), {c.from});
    if (!c.to.empty()) check_list(top.get("To"), c.to);
    else if (c.cc.empty()) FUZZ_CHECK(top.get("To") && top.get("To")->value == "undisclosed-recipients:;");
    else FUZZ_CHECK(!top.get("To"));
    if (!c.cc.empty()) check_list(top.get("Cc"), c.cc);
    FUZZ_CHECK(top.get("Subject") && decode_words(top.get("Subject")->value) == trim(c.subject));
    check_encoded_words(top.get("Subject")->raw);
    FUZZ_CHECK(top.get("Message-ID")->value == c.message_id);
    FUZZ_CHECK(top.get("MIME-Version")->value == "1.0");
    // Extra headers: in order, between MIME-Version and Content-Type, their values read back.
    const auto mime_version = std::find(names.begin(), names.end(), "mime-version") - names.begin();
    const std::size_t content_type = static_cast<std::size_t>(mime_version) + 1 + c.extra_headers.size();
    FUZZ_CHECK(content_type < top.fields.size() && ascii_iequals(top.fields[content_type].name, "Content-Type"));
    for (std::size_t i = 0; i < c.extra_headers.size(); ++i) {
        const Field& fld = top.fields[static_cast<std::size_t>(mime_version) + 1 + i];
        const auto& [name, value] = c.extra_headers[i];
        FUZZ_CHECK(fld.name == name);
        bool address_field = false;
        for (const char* a : {"Sender", "Reply-To", "Resent-From", "Resent-Sender", "Resent-To", "Resent-Cc", "Resent-Bcc"})
            address_field = address_field || ascii_iequals(name, a);
        if (address_field) continue;   // parsed as addresses: checked through parse_address_argument's mode
        bool ascii = true;
        for (const char ch : value) ascii = ascii && static_cast<unsigned char>(ch) < 0x80;
        if (ascii) FUZZ_CHECK(fld.value == trim(value));
        else {
            FUZZ_CHECK(decode_words(fld.value) == trim(value));
            check_encoded_words(fld.raw);
        }
    }
    // Body.
    const std::string text = mime::canonical_lines(c.text);
    const auto check_text = [&](const Entity& e, std::string_view subtype, const std::string& want) {
        const Field* type = e.get("Content-Type");
        FUZZ_CHECK(type && type->value == "text/" + std::string(subtype) + "; charset=utf-8");
        FUZZ_CHECK(content(e) == want);
    };
    const auto check_body = [&](const Entity& e) {
        if (!c.html) {
            check_text(e, "plain", text);
            return;
        }
        const auto alt = multipart_parts(e);
        FUZZ_CHECK(parameters(e.get("Content-Type")->value).value == "multipart/alternative");
        FUZZ_CHECK(alt.size() == 2);
        check_text(alt[0], "plain", text);
        check_text(alt[1], "html", mime::canonical_lines(*c.html));
    };
    if (c.attachments.empty()) {
        check_body(top);
        return;
    }
    FUZZ_CHECK(parameters(top.get("Content-Type")->value).value == "multipart/mixed");
    const auto parts = multipart_parts(top);
    FUZZ_CHECK(parts.size() == c.attachments.size() + 1);
    check_body(parts[0]);
    for (std::size_t i = 0; i < c.attachments.size(); ++i) {
        const Entity& e = parts[i + 1];
        const mime::Attachment& a = c.attachments[i];
        FUZZ_CHECK(content(e) == a.data);
        FUZZ_CHECK(ascii_lower(e.get("Content-Transfer-Encoding")->value) == "base64");
        const Parameters type = parameters(e.get("Content-Type")->value);
        const Parameters disposition = parameters(e.get("Content-Disposition")->value);
        std::string want_type = a.content_type.empty() ? "application/octet-stream" : ascii_lower(a.content_type);
        if (want_type.starts_with("message/") || want_type.starts_with("multipart/")) want_type = "application/octet-stream";
        FUZZ_CHECK(type.value == want_type);
        FUZZ_CHECK(disposition.value == "attachment");
        FUZZ_CHECK(shown(disposition, "filename") == a.filename);
        FUZZ_CHECK(shown(type, "name") == a.filename);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::string_view rest = fuzz::as_text(data + 1, size - 1);
    switch (data[0]) {
    case 'w': fuzz_words(rest); break;
    case 'p': fuzz_parameter(rest); break;
    case 'a': fuzz_address(rest); break;
    case 'h': fuzz_header(rest); break;
    default: fuzz_compose(rest); break;
    }
    return 0;
}
