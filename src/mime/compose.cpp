#include "mime/compose.hpp"

#include <algorithm>
#include <array>

#include "mime/field_writer.hpp"
#include "mime/header_text.hpp"
#include "mime/mime_parameter.hpp"
#include "mime/text_body.hpp"
#include "smtp/address.hpp"
#include "util/ascii.hpp"
#include "util/base64.hpp"
#include "util/time_format.hpp"
#include "util/utf8.hpp"

namespace ferry::mime {
namespace {

// Fields compose() writes itself; an extra header may not add a second one (RFC 5322 3.6 allows one From, To,
// Cc, Bcc, Subject, Date, Message-ID; RFC 2045 one of each MIME field), and Bcc would tell every recipient who
// else got the message.
constexpr std::array<std::string_view, 10> kComposedFields = {"From", "To", "Cc", "Bcc", "Subject", "Date",
                                                              "Message-ID", "MIME-Version", "Content-Type",
                                                              "Content-Transfer-Encoding"};
// RFC 5322 3.6: the other fields that may appear at most once.
constexpr std::array<std::string_view, 4> kSingleFields = {"Sender", "Reply-To", "In-Reply-To", "References"};
// Fields whose value is a mailbox or address list (RFC 5322 3.6.2, 3.6.6): written like From and To, so display
// names are encoded and addresses checked.
constexpr std::array<std::string_view, 7> kAddressFields = {"Sender",    "Reply-To",   "Resent-From", "Resent-Sender",
                                                            "Resent-To", "Resent-Cc", "Resent-Bcc"};
// Structured fields (RFC 5322 3.6, RFC 2045, RFC 2369, trace fields) where an encoded-word would not be decoded
// or would break the syntax: non-ASCII in them is refused rather than sent wrong.
constexpr std::array<std::string_view, 8> kStructuredFields = {"In-Reply-To", "References", "Resent-Date",
                                                               "Resent-Message-ID", "Return-Path", "Received",
                                                               "DKIM-Signature", "Authentication-Results"};

constexpr std::size_t kMaxFilename = 255;   // NAME_MAX: longer cannot be a file's base name
constexpr std::size_t kMaxBoundaryToken = 40;   // RFC 2046 5.1.1: a boundary is 1-70 characters
constexpr std::string_view kUndisclosed = "undisclosed-recipients:;";

template <std::size_t N>
bool is_one_of(std::string_view name, const std::array<std::string_view, N>& names) {
    return std::any_of(names.begin(), names.end(), [&](std::string_view n) { return util::ascii_iequals(n, name); });
}

// RFC 5322 2.2 ftext: printable ASCII except ':'.
bool is_field_name(std::string_view name) {
    return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u >= 33 && u <= 126 && c != ':';
    });
}

// RFC 5322 3.2.3 atext and 3.4.1 dtext (printable ASCII but '[', ']' and '\').
using util::is_atext;
bool is_dot_atom_text(std::string_view s) {
    if (s.empty() || s.front() == '.' || s.back() == '.' || s.find("..") != std::string_view::npos) return false;
    return std::all_of(s.begin(), s.end(), [](char c) { return c == '.' || is_atext(c); });
}
bool is_no_fold_literal(std::string_view s) {
    if (s.size() < 2 || s.front() != '[' || s.back() != ']') return false;
    return std::all_of(s.begin() + 1, s.end() - 1, [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u >= 33 && u <= 126 && c != '[' && c != ']' && c != '\\';
    });
}

// RFC 5322 3.6.4 msg-id = "<" id-left "@" id-right ">" (no CFWS: the caller makes it, there is no reason for any).
std::string message_id_error(std::string_view id) {
    if (const std::string e = header_text_error(id, "Message-ID"); !e.empty()) return e;
    const auto at = id.rfind('@');
    if (id.size() < 5 || id.front() != '<' || id.back() != '>' || at == std::string_view::npos ||
        !is_dot_atom_text(id.substr(1, at - 1)) ||
        !(is_dot_atom_text(id.substr(at + 1, id.size() - at - 2)) ||
          is_no_fold_literal(id.substr(at + 1, id.size() - at - 2))))
        return "Message-ID \"" + std::string(id) + "\" is not <left@right> (RFC 5322 3.6.4)";
    if (id.size() > kMaxPlainWord) return "Message-ID is too long";
    return "";
}

// The canonical addr-spec of `address` or why it cannot be sent (`what` names it in the error).
std::optional<std::string> checked_addr_spec(std::string_view address, std::string_view what, std::string& why) {
    if (std::string e = header_text_error(address, what); !e.empty()) {
        why = std::move(e);
        return std::nullopt;
    }
    if (address.empty()) {
        why = std::string(what) + " is empty";
        return std::nullopt;
    }
    if (address.find_first_of("<>") != std::string_view::npos) {   // legal only inside quotes or literals; never needed
        why = std::string(what) + " \"" + std::string(address) + "\" has < or > in it";
        return std::nullopt;
    }
    if (address.find('@') == std::string_view::npos) {
        why = std::string(what) + " \"" + std::string(address) + "\" has no @ (local@domain)";
        return std::nullopt;
    }
    const auto mailbox = smtp::parse_mailbox(address);
    if (!mailbox) {
        why = std::string(what) + " \"" + std::string(address) + "\" is not a valid address (RFC 5321 4.1.2)";
        return std::nullopt;
    }
    if (mailbox->utf8) {
        why = std::string(what) + " \"" + std::string(address) +
              "\" is not ASCII: it would need SMTPUTF8 and UTF-8 header fields (RFC 6531, RFC 6532), which ferry "
              "send does not use";
        return std::nullopt;
    }
    std::string spec = mailbox->to_string();
    if (spec.size() + 2 > smtp::kMaxPathLength) {   // RFC 5321 4.5.3.1.3, the path with its brackets
        why = std::string(what) + " is longer than RFC 5321 4.5.3.1.3 allows";
        return std::nullopt;
    }
    return spec;
}

// The display name and canonical address of `a`, or why not.
std::optional<Address> checked_address(const Address& a, std::string_view what, std::string& why) {
    if (std::string e = header_text_error(a.display_name, std::string(what) + " display name"); !e.empty()) {
        why = std::move(e);
        return std::nullopt;
    }
    const auto spec = checked_addr_spec(a.address, std::string(what) + " address", why);
    if (!spec) return std::nullopt;
    return Address{std::string(trim_wsp(a.display_name)), *spec};
}

void write_mailbox(FieldWriter& w, const Address& a) {
    if (a.display_name.empty()) {
        w.word(a.address);
        return;
    }
    write_phrase(w, a.display_name);
    w.word("<" + a.address + ">");
}

void write_mailbox_list(FieldWriter& w, const std::vector<Address>& list) {
    for (std::size_t i = 0; i < list.size(); ++i) {
        if (i > 0) w.glue(",");
        write_mailbox(w, list[i]);
    }
}

// The field, or "" with `error` set when a line could not be kept under kMaxLineLength.
std::string finished(FieldWriter&& w, std::string_view name, std::string& error) {
    if (!w.ok()) {
        error = "header " + std::string(name) + ": a word is too long for a header line (RFC 5322 2.1.1)";
        return "";
    }
    return std::move(w).finish();
}

// Splits an address list value at the commas outside quoted strings and angle brackets.
std::vector<std::string_view> split_address_list(std::string_view value) {
    std::vector<std::string_view> items;
    bool quoted = false;
    int angle = 0;
    std::size_t start = 0;
    for (std::size_t i = 0; i < value.size(); ++i) {
        const char c = value[i];
        if (quoted) {
            if (c == '\\') ++i;
            else if (c == '"') quoted = false;
        } else if (c == '"') {
            quoted = true;
        } else if (c == '<') {
            ++angle;
        } else if (c == '>') {
            --angle;
        } else if (c == ',' && angle == 0) {
            items.push_back(value.substr(start, i - start));
            start = i + 1;
        }
    }
    items.push_back(value.substr(start));
    return items;
}

// One extra header as it goes into the message, or "" with `error`.
std::string extra_field(std::string_view name, std::string_view value, std::string& error) {
    FieldWriter w(name);
    if (is_one_of(name, kAddressFields)) {
        std::vector<Address> list;
        for (const std::string_view item : split_address_list(value)) {
            std::string why;
            const auto a = parse_address_argument(item, why);
            if (!a) {
                error = "extra header " + std::string(name) + ": " + why;
                return "";
            }
            list.push_back(*a);
        }
        write_mailbox_list(w, list);
    } else if (util::is_ascii(value)) {
        write_verbatim(w, value);
    } else if (is_one_of(name, kStructuredFields) || util::ascii_iequals(name.substr(0, 8), "Content-") ||
               util::ascii_iequals(name.substr(0, 5), "List-")) {
        error = "extra header " + std::string(name) +
                ": non-ASCII in a structured field (RFC 2047 encoding is for unstructured text and display names; "
                "UTF-8 header fields, RFC 6532, are not used)";
        return "";
    } else {
        write_unstructured(w, value);   // X- fields and other free text (RFC 5322 3.6.5, 3.6.8)
    }
    return finished(std::move(w), name, error);
}

// An entity of the body: its Content-* fields and its encoded content.
struct Part {
    std::string header;   // fields, each ending in CRLF
    std::string body;     // ends in CRLF (or is empty) for leaf parts; a multipart's ends with its close delimiter
};

Part text_part(std::string_view subtype, std::string_view text) {
    TextBody body = encode_text_body(text);
    FieldWriter type("Content-Type");
    type.word("text/" + std::string(subtype));
    write_parameter(type, "charset", "utf-8");
    FieldWriter encoding("Content-Transfer-Encoding");
    encoding.word(body.transfer_encoding);
    return {std::move(type).finish() + std::move(encoding).finish(), std::move(body.content)};
}

// RFC 2045 5.1: type "/" subtype, both tokens. Parameters are not taken (compose adds its own).
bool is_media_type(std::string_view t) {
    const auto slash = t.find('/');
    if (slash == std::string_view::npos || slash == 0 || slash + 1 == t.size()) return false;
    return std::all_of(t.begin(), t.end(), [](char c) { return c == '/' || util::is_mime_token_char(c); }) &&
           t.find('/', slash + 1) == std::string_view::npos;
}

std::optional<Part> attachment_part(const Attachment& a, std::size_t number, std::string& error) {
    const std::string what = "attachment " + std::to_string(number) + " filename";
    if (std::string e = header_text_error(a.filename, what); !e.empty()) {
        error = std::move(e);
        return std::nullopt;
    }
    if (a.filename.find('/') != std::string::npos) {
        error = what + " \"" + a.filename + "\" is a path, not a base name";
        return std::nullopt;
    }
    if (a.filename.size() > kMaxFilename) {
        error = what + " is longer than 255 octets";
        return std::nullopt;
    }
    const std::string type_what = "attachment " + std::to_string(number) + " content type";
    if (std::string e = header_text_error(a.content_type, type_what); !e.empty()) {
        error = std::move(e);
        return std::nullopt;
    }
    std::string type = a.content_type.empty() ? std::string(kOctetStream) : util::ascii_lower(a.content_type);
    if (!is_media_type(type)) {
        error = type_what + " \"" + a.content_type + "\" is not type/subtype (RFC 2045 5.1)";
        return std::nullopt;
    }
    // RFC 2046 5.1 and 5.2.1 allow only 7bit, 8bit or binary for these; base64 keeps the bytes exact.
    if (type.starts_with("multipart/") || type.starts_with("message/")) type = std::string(kOctetStream);

    const std::string& filename = a.filename;
    FieldWriter content_type("Content-Type");
    content_type.word(type);
    // RFC 2046 4.1.2: text without charset is read as US-ASCII; say utf-8 when that is what it is.
    if (type.starts_with("text/") && !util::is_ascii(a.data) && util::is_valid_utf8(a.data))
        write_parameter(content_type, "charset", "utf-8");
    if (!filename.empty()) write_parameter(content_type, "name", filename, ascii_fallback("name", filename), true);
    FieldWriter encoding("Content-Transfer-Encoding");
    encoding.word("base64");
    FieldWriter disposition("Content-Disposition");   // RFC 2183
    disposition.word("attachment");
    if (!filename.empty())
        write_parameter(disposition, "filename", filename, ascii_fallback("filename", filename), true);
    return Part{std::move(content_type).finish() + std::move(encoding).finish() + std::move(disposition).finish(),
                util::base64_encode_mime(a.data)};
}

bool occurs_in(const std::vector<Part>& parts, std::string_view text) {
    return std::any_of(parts.begin(), parts.end(), [&](const Part& p) {
        return p.header.find(text) != std::string::npos || p.body.find(text) != std::string::npos;
    });
}

// RFC 2046 5.1.1: a boundary that occurs nowhere in the parts it encloses (anywhere, not only at a line start:
// simpler to check and as good). `level` keeps the boundaries of nested multiparts apart, and differs before the
// token, so neither can be the start of the other. Base64 never holds '-' or '_', quoted-printable never "=_".
std::string boundary_for(std::string_view level, std::string_view token, const std::vector<Part>& parts) {
    const std::string base = "=_ferry_" + std::string(level) + "_" + std::string(token);
    std::string boundary = base;
    for (unsigned n = 1; occurs_in(parts, boundary); ++n) boundary = base + "_" + std::to_string(n);
    return boundary;
}

Part multipart(std::string_view subtype, std::string_view level, std::string_view token, std::vector<Part> parts) {
    const std::string boundary = boundary_for(level, token, parts);
    FieldWriter type("Content-Type");
    type.word("multipart/" + std::string(subtype));
    write_parameter(type, "boundary", boundary);
    std::size_t size = 0;
    for (const Part& p : parts) size += p.header.size() + p.body.size() + boundary.size() + 8;
    Part out{std::move(type).finish(), {}};
    out.body.reserve(size + boundary.size() + 4);
    // multipart-body = dash-boundary CRLF body-part *(CRLF dash-boundary CRLF body-part) CRLF dash-boundary "--":
    // the CRLF before each delimiter belongs to it, so a part's own final line break stays in the part.
    for (std::size_t i = 0; i < parts.size(); ++i) {
        if (i > 0) out.body += "\r\n";
        out.body += "--" + boundary + "\r\n";
        out.body += parts[i].header;
        out.body += "\r\n";
        out.body += parts[i].body;
        parts[i] = Part{};   // attachments can be large: free each one once copied
    }
    out.body += "\r\n--" + boundary + "--";
    return out;
}

std::string boundary_token(std::string_view token) {
    std::string out;
    for (const char c : token)
        if ((util::is_alpha(c) || util::is_digit(c)) && out.size() < kMaxBoundaryToken) out += c;
    return out.empty() ? "0" : out;
}

}  // namespace

std::optional<Address> parse_address_argument(std::string_view text, std::string& why) {
    if (std::string e = header_text_error(text, "address"); !e.empty()) {
        why = std::move(e);
        return std::nullopt;
    }
    text = trim_wsp(text);
    if (text.empty()) {
        why = "empty address";
        return std::nullopt;
    }
    Address out;
    std::string_view spec = text;
    if (text.back() == '>') {
        // "phrase <addr-spec>": the '<' is the last one outside a quoted string.
        std::size_t open = std::string_view::npos;
        bool quoted = false;
        for (std::size_t i = 0; i < text.size(); ++i) {
            if (quoted) {
                if (text[i] == '\\') ++i;
                else if (text[i] == '"') quoted = false;
            } else if (text[i] == '"') {
                quoted = true;
            } else if (text[i] == '<') {
                open = i;
            }
        }
        if (open == std::string_view::npos) {
            why = "unbalanced <> in \"" + std::string(text) + "\"";
            return std::nullopt;
        }
        spec = text.substr(open + 1, text.size() - open - 2);
        const std::string_view phrase = trim_wsp(text.substr(0, open));
        if (!phrase.empty() && phrase.front() == '"') {
            // One quoted-string (RFC 5322 3.2.4), quoted-pairs resolved.
            std::string name;
            std::size_t i = 1;
            for (; i < phrase.size() && phrase[i] != '"'; ++i) {
                if (phrase[i] == '\\' && i + 1 < phrase.size()) ++i;
                name += phrase[i];
            }
            if (i + 1 != phrase.size()) {
                why = "unbalanced quotes in \"" + std::string(text) + "\" (a quoted name must be all of the name)";
                return std::nullopt;
            }
            out.display_name = std::move(name);
        } else {
            if (phrase.find_first_of("\"<>") != std::string_view::npos) {
                why = "unbalanced quotes or <> in \"" + std::string(text) + "\"";
                return std::nullopt;
            }
            out.display_name = std::string(phrase);
        }
    }
    if (spec.find_first_of("<>") != std::string_view::npos) {
        why = "unbalanced <> in \"" + std::string(text) + "\"";
        return std::nullopt;
    }
    if (spec.find_first_of(" \t") != std::string_view::npos && spec.find('"') == std::string_view::npos) {
        why = "\"" + std::string(text) + "\" is not one address (write Name <local@domain>)";
        return std::nullopt;
    }
    const auto canonical = checked_addr_spec(spec, "address", why);
    if (!canonical) return std::nullopt;
    out.address = *canonical;
    if (std::string e = header_text_error(out.display_name, "display name"); !e.empty()) {
        why = std::move(e);
        return std::nullopt;
    }
    out.display_name = std::string(trim_wsp(out.display_name));
    return out;
}

std::optional<std::pair<std::string, std::string>> parse_header_argument(std::string_view text, std::string& why) {
    if (std::string e = header_text_error(text, "header argument"); !e.empty() && e.starts_with("header injection")) {
        why = std::move(e);
        return std::nullopt;
    }
    const auto colon = text.find(':');
    if (colon == std::string_view::npos) {
        why = "\"" + std::string(text) + "\" has no colon (write \"Name: value\")";
        return std::nullopt;
    }
    const std::string_view name = text.substr(0, colon);
    if (!is_field_name(name)) {
        why = "field name \"" + std::string(name) +
              "\" is empty or has characters RFC 5322 2.2 does not allow (printable ASCII but ':', no spaces)";
        return std::nullopt;
    }
    const std::string_view value = trim_wsp(text.substr(colon + 1));
    if (std::string e = header_text_error(value, "header " + std::string(name)); !e.empty()) {
        why = std::move(e);
        return std::nullopt;
    }
    return std::pair{std::string(name), std::string(value)};
}

Composed compose(const Composition& c) {
    Composed out;
    std::string error;
    const auto fail = [&](std::string why) {
        out.error = std::move(why);
        out.message.clear();
        return out;
    };

    const auto from = checked_address(c.from, "From", error);
    if (!from) return fail(error);
    std::vector<Address> to, cc;
    for (const Address& a : c.to) {
        const auto checked = checked_address(a, "To", error);
        if (!checked) return fail(error);
        to.push_back(*checked);
    }
    for (const Address& a : c.cc) {
        const auto checked = checked_address(a, "Cc", error);
        if (!checked) return fail(error);
        cc.push_back(*checked);
    }
    if (std::string e = header_text_error(c.subject, "Subject"); !e.empty()) return fail(e);
    if (c.date == 0) return fail("Date not set");
    if (std::string e = message_id_error(c.message_id); !e.empty()) return fail(e);
    if (!util::is_valid_utf8(c.text)) return fail("the text body is not valid UTF-8");
    if (c.html && !util::is_valid_utf8(*c.html)) return fail("the html body is not valid UTF-8");

    std::string header;
    {
        FieldWriter w("From");
        write_mailbox(w, *from);
        header += finished(std::move(w), "From", error);
    }
    if (!to.empty() || cc.empty()) {
        FieldWriter w("To");
        if (to.empty()) w.word(kUndisclosed);   // Bcc only: RFC 5322 A.1.3's empty group
        write_mailbox_list(w, to);
        header += finished(std::move(w), "To", error);
    }
    if (!cc.empty()) {
        FieldWriter w("Cc");
        write_mailbox_list(w, cc);
        header += finished(std::move(w), "Cc", error);
    }
    {
        FieldWriter w("Subject");
        write_unstructured(w, c.subject);
        header += finished(std::move(w), "Subject", error);
    }
    header += "Date: " + util::rfc5322_date(c.date) + "\r\n";
    header += "Message-ID: " + c.message_id + "\r\n";
    header += "MIME-Version: 1.0\r\n";
    for (std::size_t i = 0; i < c.extra_headers.size(); ++i) {
        const auto& [name, value] = c.extra_headers[i];
        if (std::string e = header_text_error(name, "extra header name"); !e.empty()) return fail(e);
        if (!is_field_name(name))
            return fail("extra header name \"" + name + "\" has characters RFC 5322 2.2 does not allow");
        if (is_one_of(name, kComposedFields))
            return fail("extra header " + name + ": compose writes that field itself (give it with its own option)");
        if (is_one_of(name, kSingleFields)) {
            for (std::size_t j = 0; j < i; ++j)
                if (util::ascii_iequals(c.extra_headers[j].first, name))
                    return fail("extra header " + name + " given twice (RFC 5322 3.6 allows one)");
        }
        if (std::string e = header_text_error(value, "extra header " + name); !e.empty()) return fail(e);
        header += extra_field(name, value, error);
    }
    if (!error.empty()) return fail(error);

    const std::string token = boundary_token(c.boundary_token);
    Part body = text_part("plain", c.text);
    if (c.html) {
        std::vector<Part> alternatives;   // pushed, not a braced list: an initializer_list would copy both texts
        alternatives.push_back(std::move(body));
        alternatives.push_back(text_part("html", *c.html));
        body = multipart("alternative", "alt", token, std::move(alternatives));
    }
    if (!c.attachments.empty()) {
        std::vector<Part> parts;
        parts.reserve(c.attachments.size() + 1);
        parts.push_back(std::move(body));
        for (std::size_t i = 0; i < c.attachments.size(); ++i) {
            auto part = attachment_part(c.attachments[i], i + 1, error);
            if (!part) return fail(error);
            parts.push_back(std::move(*part));
        }
        body = multipart("mixed", "mix", token, std::move(parts));
    }

    header.reserve(header.size() + body.header.size() + body.body.size() + 4);
    out.message = std::move(header);
    out.message += body.header;
    out.message += "\r\n";
    out.message += body.body;
    if (!out.message.ends_with("\r\n")) out.message += "\r\n";
    return out;
}

}  // namespace ferry::mime
