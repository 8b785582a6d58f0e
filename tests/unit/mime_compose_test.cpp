// compose() and the pieces under it, checked by reading the output back with a small MIME reader written here
// (unfolding, RFC 2047 and RFC 2231 decoding, multipart splitting, base64 and quoted-printable), independent of
// the encoders under test.
#include "mime/compose.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "mime/field_writer.hpp"
#include "mime/header_text.hpp"
#include "mime/mime_parameter.hpp"
#include "mime/text_body.hpp"
#include "util/ascii.hpp"
#include "util/base64.hpp"
#include "util/utf8.hpp"

using namespace ferry::mime;
using ferry::util::ascii_iequals;

namespace {

constexpr std::time_t kDate = 1795430789;   // Mon, 23 Nov 2026 10:46:29 +0000

// ---- a small, independent MIME reader -------------------------------------------------------------------------

// Every line ends in CRLF, none is over 998 octets, and in the header section every line starts a field
// ("name:") or continues one (WSP). Returns the first problem, or "".
std::string line_problem(std::string_view message, std::size_t header_width = 998) {
    if (!message.ends_with("\r\n")) return "no final CRLF";
    bool in_header = true;
    std::size_t pos = 0;
    while (pos < message.size()) {
        const auto end = message.find("\r\n", pos);
        const std::string_view line = message.substr(pos, end - pos);
        if (line.find_first_of("\r\n") != std::string_view::npos) return "bare CR or LF in: " + std::string(line);
        if (line.size() > 998) return "line over 998 octets";
        if (in_header) {
            if (line.empty()) {
                in_header = false;
            } else {
                if (line.size() > header_width) return "header line over " + std::to_string(header_width) + ": " + std::string(line);
                const auto colon = line.find(':');
                const bool starts_field = colon != std::string_view::npos && colon > 0 &&
                                          line.substr(0, colon).find_first_of(" \t") == std::string_view::npos;
                const bool continues = line.front() == ' ' || line.front() == '\t';
                if (!starts_field && !continues) return "header line neither field nor fold: " + std::string(line);
                if (pos == 0 && continues) return "header starts with a fold";
                if (continues && line.find_first_not_of(" \t") == std::string_view::npos) return "whitespace-only fold";
            }
        }
        pos = end + 2;
    }
    return "";
}

std::string unfold(std::string_view raw) {
    std::string out;
    for (std::size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] == '\r' && i + 2 < raw.size() + 1 && raw.substr(i, 2) == "\r\n") {
            ++i;
            continue;
        }
        out += raw[i];
    }
    return out;
}

struct Entity {
    std::vector<std::pair<std::string, std::string>> fields;   // name, unfolded value without leading WSP
    std::vector<std::string> raw_fields;                      // as written, folds and final CRLF included
    std::string body;

    std::optional<std::string> get(std::string_view name) const {
        for (const auto& [n, v] : fields)
            if (ascii_iequals(n, name)) return v;
        return std::nullopt;
    }
    std::size_t count(std::string_view name) const {
        std::size_t n = 0;
        for (const auto& f : fields) n += ascii_iequals(f.first, name);
        return n;
    }
    std::vector<std::string> names() const {
        std::vector<std::string> out;
        for (const auto& f : fields) out.push_back(f.first);
        return out;
    }
};

Entity parse_entity(std::string_view text) {
    Entity e;
    const auto split = text.find("\r\n\r\n");
    std::string_view header = text.substr(0, split == std::string_view::npos ? text.size() : split + 2);
    if (text.starts_with("\r\n")) header = "";
    e.body = split == std::string_view::npos ? "" : std::string(text.substr(split + 4));
    if (text.starts_with("\r\n")) e.body = std::string(text.substr(2));
    std::size_t pos = 0;
    while (pos < header.size()) {
        std::size_t end = header.find("\r\n", pos);
        while (end + 2 < header.size() && (header[end + 2] == ' ' || header[end + 2] == '\t'))
            end = header.find("\r\n", end + 2);
        const std::string_view raw = header.substr(pos, end + 2 - pos);
        const std::string line = unfold(raw.substr(0, raw.size() - 2));
        const auto colon = line.find(':');
        std::string value = line.substr(colon + 1);
        value.erase(0, value.find_first_not_of(" \t") == std::string::npos ? value.size() : value.find_first_not_of(" \t"));
        e.fields.emplace_back(line.substr(0, colon), value);
        e.raw_fields.emplace_back(raw);
        pos = end + 2;
    }
    return e;
}

std::string decode_b(std::string_view text) {
    const auto d = ferry::util::base64_decode(text);
    return d ? *d : "<bad base64>";
}

std::string decode_q(std::string_view text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '_') out += ' ';
        else if (text[i] == '=' && i + 2 < text.size()) {
            out += static_cast<char>(std::stoi(std::string(text.substr(i + 1, 2)), nullptr, 16));
            i += 2;
        } else out += text[i];
    }
    return out;
}

// One whitespace-delimited token as an encoded-word (RFC 2047 2), or nullopt.
std::optional<std::string> encoded_word(std::string_view w) {
    if (!w.starts_with("=?") || !w.ends_with("?=") || w.size() < 8) return std::nullopt;
    const auto q1 = w.find('?', 2);
    if (q1 == std::string_view::npos || q1 + 2 >= w.size() || w[q1 + 2] != '?') return std::nullopt;
    const std::string_view charset = w.substr(2, q1 - 2);
    if (!ascii_iequals(charset, "utf-8")) return std::nullopt;
    const char enc = w[q1 + 1];
    const std::string_view text = w.substr(q1 + 3, w.size() - q1 - 5);
    if (enc == 'B' || enc == 'b') return decode_b(text);
    if (enc == 'Q' || enc == 'q') return decode_q(text);
    return std::nullopt;
}

// RFC 2047 6.2 display of unstructured text: encoded-words decoded, whitespace between adjacent ones dropped.
std::string decode_words(std::string_view text) {
    std::string out;
    std::string pending_space;
    bool last_encoded = false;
    std::size_t pos = 0;
    while (pos < text.size()) {
        const std::size_t ws = pos;
        while (pos < text.size() && (text[pos] == ' ' || text[pos] == '\t')) ++pos;
        const std::string_view space = text.substr(ws, pos - ws);
        const std::size_t start = pos;
        while (pos < text.size() && text[pos] != ' ' && text[pos] != '\t') ++pos;
        const std::string_view word = text.substr(start, pos - start);
        if (word.empty()) {
            out += space;
            break;
        }
        if (const auto d = encoded_word(word)) {
            if (!last_encoded) out += space;
            out += *d;
            last_encoded = true;
        } else {
            out += space;
            out += word;
            last_encoded = false;
        }
    }
    return out;
}

std::string unquote(std::string_view q) {
    std::string out;
    for (std::size_t i = 1; i + 1 < q.size(); ++i) {
        if (q[i] == '\\') ++i;
        out += q[i];
    }
    return out;
}

struct Mailbox {
    std::string name, address;
    bool operator==(const Mailbox&) const = default;
};

std::vector<Mailbox> mailboxes(std::string_view value) {
    std::vector<Mailbox> out;
    std::vector<std::string_view> items;
    bool quoted = false;
    std::size_t start = 0;
    for (std::size_t i = 0; i < value.size(); ++i) {
        if (quoted && value[i] == '\\') ++i;
        else if (value[i] == '"') quoted = !quoted;
        else if (!quoted && value[i] == ',') {
            items.push_back(value.substr(start, i - start));
            start = i + 1;
        }
    }
    items.push_back(value.substr(start));
    for (std::string_view item : items) {
        item = trim_wsp(item);
        const auto lt = item.rfind('<');
        if (lt == std::string_view::npos) {
            out.push_back({"", std::string(item)});
            continue;
        }
        const std::string_view phrase = trim_wsp(item.substr(0, lt));
        const std::string name = phrase.starts_with('"') ? unquote(phrase) : decode_words(phrase);
        out.push_back({name, std::string(item.substr(lt + 1, item.size() - lt - 2))});
    }
    return out;
}

// Content-Type / Content-Disposition: the value before the first ';' and the parameters, RFC 2231 sections
// joined and percent-decoded (charset must be utf-8).
struct Parameters {
    std::string value;
    std::map<std::string, std::string> plain;      // attribute (lower case) → value
    std::map<std::string, std::string> extended;   // from attribute* / attribute*N*
    std::vector<std::string> order;                // attribute names as written, in order
};

std::string percent_decode(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() + 0 + 1) {
            out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
            i += 2;
        } else out += s[i];
    }
    return out;
}

Parameters parameters(std::string_view v) {
    Parameters p;
    std::vector<std::string> pieces;
    std::string cur;
    bool quoted = false;
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (quoted && v[i] == '\\') {
            cur += v[i];
            cur += v[++i];
            continue;
        }
        if (v[i] == '"') quoted = !quoted;
        if (!quoted && v[i] == ';') {
            pieces.push_back(cur);
            cur.clear();
        } else cur += v[i];
    }
    pieces.push_back(cur);
    p.value = std::string(trim_wsp(pieces[0]));
    std::map<std::string, std::map<int, std::string>> sections;
    for (std::size_t i = 1; i < pieces.size(); ++i) {
        const std::string_view piece = trim_wsp(pieces[i]);
        const auto eq = piece.find('=');
        std::string attr = ferry::util::ascii_lower(piece.substr(0, eq));
        std::string_view val = piece.substr(eq + 1);
        p.order.push_back(attr);
        if (attr.ends_with('*')) {
            attr.pop_back();
            int n = 0;
            const auto star = attr.find('*');
            if (star != std::string::npos) {
                n = std::stoi(attr.substr(star + 1));
                attr = attr.substr(0, star);
            }
            std::string text(val);
            if (n == 0) {
                EXPECT_TRUE(text.starts_with("utf-8''")) << text;
                text = text.substr(text.find('\'', text.find('\'') + 1) + 1);
            }
            sections[attr][n] = text;
        } else if (attr.find('*') != std::string::npos) {
            ADD_FAILURE() << "unencoded RFC 2231 section " << attr;
        } else {
            p.plain[attr] = val.starts_with('"') ? unquote(val) : std::string(val);
        }
    }
    for (const auto& [attr, parts] : sections) {
        std::string all;
        int expect = 0;
        for (const auto& [n, text] : parts) {
            EXPECT_EQ(n, expect++);
            all += text;
        }
        p.extended[attr] = percent_decode(all);
    }
    return p;
}

// The name a reader shows: the RFC 2231 one when there is one, else the plain one.
std::string parameter(const Parameters& p, const std::string& attr) {
    if (p.extended.count(attr)) return p.extended.at(attr);
    return p.plain.count(attr) ? p.plain.at(attr) : "<none>";
}

std::vector<Entity> multipart_parts(const Entity& e) {
    const std::string boundary = parameters(*e.get("Content-Type")).plain.at("boundary");
    std::vector<Entity> parts;
    const std::string delimiter = "--" + boundary;
    EXPECT_TRUE(e.body.starts_with(delimiter + "\r\n"));
    std::size_t pos = delimiter.size() + 2;
    while (true) {
        const auto next = e.body.find("\r\n" + delimiter, pos);
        if (next == std::string::npos) {
            ADD_FAILURE() << "no close delimiter";
            break;
        }
        parts.push_back(parse_entity(std::string_view(e.body).substr(pos, next - pos)));
        pos = next + 2 + delimiter.size();
        if (e.body.compare(pos, 2, "--") == 0) {
            EXPECT_TRUE(pos + 2 == e.body.size() || e.body.compare(pos + 2, 2, "\r\n") == 0);
            break;
        }
        EXPECT_EQ(e.body.compare(pos, 2, "\r\n"), 0);
        pos += 2;
    }
    return parts;
}

std::string qp_decode(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '=') {
            if (s.substr(i + 1, 2) == "\r\n") {
                i += 2;
                continue;
            }
            out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
            i += 2;
        } else out += s[i];
    }
    return out;
}

std::string base64_body(std::string_view s) {
    std::string joined;
    std::size_t pos = 0;
    while (pos < s.size()) {
        const auto end = s.find("\r\n", pos);
        EXPECT_LE(end - pos, 76U);
        joined += s.substr(pos, end - pos);
        pos = end + 2;
    }
    return decode_b(joined);
}

// The content of a leaf part, its transfer encoding undone.
std::string content(const Entity& e) {
    const std::string cte = ferry::util::ascii_lower(e.get("Content-Transfer-Encoding").value_or("7bit"));
    if (cte == "base64") return base64_body(e.body);
    if (cte == "quoted-printable") return qp_decode(e.body);
    return e.body;
}

// ---- inputs ---------------------------------------------------------------------------------------------------

Address addr(std::string name, std::string a) { return Address{std::move(name), std::move(a)}; }

Composition simple() {
    Composition c;
    c.from = addr("Alice", "alice@example.test");
    c.to = {addr("", "bob@example.test")};
    c.subject = "Lunch";
    c.text = "Hello Bob,\nsee you at noon.\n";
    c.date = kDate;
    c.message_id = "<20261123.abc@example.test>";
    c.boundary_token = "K7q2ZpX9";
    return c;
}

Composed composed(const Composition& c) {
    Composed r = compose(c);
    EXPECT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(line_problem(r.message, kFoldWidth), "") << r.message.substr(0, 3000);
    return r;
}

std::string error_of(const Composition& c) {
    const Composed r = compose(c);
    EXPECT_TRUE(r.message.empty()) << "a message came with error " << r.error;
    return r.error;
}

// ---- arguments ------------------------------------------------------------------------------------------------

std::optional<Address> address_arg(std::string_view text, std::string* why_out = nullptr) {
    std::string why;
    auto a = parse_address_argument(text, why);
    if (!a) {
        EXPECT_FALSE(why.empty()) << text;
    }
    if (why_out) *why_out = why;
    return a;
}

TEST(ComposeAddressArgument, TheUsualForms) {
    EXPECT_EQ(address_arg("alice@example.test"), addr("", "alice@example.test"));
    EXPECT_EQ(address_arg("  <alice@example.test>  "), addr("", "alice@example.test"));
    EXPECT_EQ(address_arg("Alice <alice@example.test>"), addr("Alice", "alice@example.test"));
    EXPECT_EQ(address_arg("Alice Smith<alice@example.test>"), addr("Alice Smith", "alice@example.test"));
    EXPECT_EQ(address_arg("\"Smith, Bob\" <bob@example.test>"), addr("Smith, Bob", "bob@example.test"));
    EXPECT_EQ(address_arg("\"Bob \\\"the\\\" <Builder>\" <bob@example.test>"),
              addr("Bob \"the\" <Builder>", "bob@example.test"));
    EXPECT_EQ(address_arg("Smith, Bob <bob@example.test>"), addr("Smith, Bob", "bob@example.test"));
    EXPECT_EQ(address_arg("Zoë <z@example.test>"), addr("Zoë", "z@example.test"));
    EXPECT_EQ(address_arg("\"a b\"@example.test"), addr("", "\"a b\"@example.test"));
    EXPECT_EQ(address_arg("\"ab\"@example.test"), addr("", "ab@example.test"));   // canonical form
    EXPECT_EQ(address_arg("joe@[192.0.2.1]"), addr("", "joe@[192.0.2.1]"));
    EXPECT_EQ(address_arg("\t\"\" <a@example.test>"), addr("", "a@example.test"));
}

TEST(ComposeAddressArgument, RefusesWithAReason) {
    std::string why;
    EXPECT_FALSE(address_arg("alice", &why));
    EXPECT_NE(why.find("no @"), std::string::npos) << why;
    EXPECT_FALSE(address_arg("Alice <alice@example.test>\r\nBcc: eve@example.test", &why));
    EXPECT_TRUE(why.starts_with("header injection")) << why;
    EXPECT_FALSE(address_arg("Alice\n <alice@example.test>", &why));
    EXPECT_TRUE(why.starts_with("header injection")) << why;
    EXPECT_FALSE(address_arg(std::string("a@example.test\0x", 16), &why));
    EXPECT_TRUE(why.starts_with("header injection")) << why;
    EXPECT_FALSE(address_arg("Alice <alice@example.test", &why));
    EXPECT_NE(why.find("<>"), std::string::npos) << why;
    EXPECT_FALSE(address_arg("Alice alice@example.test>", &why));
    EXPECT_NE(why.find("<>"), std::string::npos) << why;
    EXPECT_FALSE(address_arg("Alice <<alice@example.test>>", &why));
    EXPECT_FALSE(address_arg("\"Alice <alice@example.test>", &why));
    EXPECT_FALSE(address_arg("\"Alice\" x <alice@example.test>", &why));
    EXPECT_NE(why.find("quote"), std::string::npos) << why;
    EXPECT_FALSE(address_arg("a@example.test b@example.test", &why));
    EXPECT_NE(why.find("one address"), std::string::npos) << why;
    EXPECT_FALSE(address_arg("a@example.test, b@example.test", &why));
    EXPECT_FALSE(address_arg("", &why));
    EXPECT_FALSE(address_arg("   ", &why));
    EXPECT_FALSE(address_arg("a@", &why));
    EXPECT_FALSE(address_arg("@example.test", &why));
    EXPECT_FALSE(address_arg("a..b@example.test", &why));
    EXPECT_FALSE(address_arg(std::string(65, 'a') + "@example.test", &why));
    EXPECT_FALSE(address_arg("Zoë <zoë@example.test>", &why));
    EXPECT_NE(why.find("SMTPUTF8"), std::string::npos) << why;
    EXPECT_FALSE(address_arg("z@bücher.example", &why));
    EXPECT_NE(why.find("SMTPUTF8"), std::string::npos) << why;
    EXPECT_FALSE(address_arg("Bad\x01Name <a@example.test>", &why));
    EXPECT_NE(why.find("control"), std::string::npos) << why;
    EXPECT_FALSE(address_arg("\xC3 <a@example.test>", &why));
    EXPECT_NE(why.find("UTF-8"), std::string::npos) << why;
}

TEST(ComposeHeaderArgument, NameAndValue) {
    std::string why;
    using P = std::pair<std::string, std::string>;
    EXPECT_EQ(parse_header_argument("X-Mailer: ferry", why), P("X-Mailer", "ferry"));
    EXPECT_EQ(parse_header_argument("X-Mailer:ferry", why), P("X-Mailer", "ferry"));
    EXPECT_EQ(parse_header_argument("X-Empty:   ", why), P("X-Empty", ""));
    EXPECT_EQ(parse_header_argument("X-Url: http://a.test/x?y=1 ", why), P("X-Url", "http://a.test/x?y=1"));
    EXPECT_EQ(parse_header_argument("X-Tab:\tval\tue", why), P("X-Tab", "val\tue"));
    EXPECT_EQ(parse_header_argument("X-Note: grüße", why), P("X-Note", "grüße"));
}

TEST(ComposeHeaderArgument, Refuses) {
    std::string why;
    EXPECT_FALSE(parse_header_argument("X-Mailer ferry", why));
    EXPECT_NE(why.find("no colon"), std::string::npos) << why;
    EXPECT_FALSE(parse_header_argument(": value", why));
    EXPECT_NE(why.find("field name"), std::string::npos) << why;
    EXPECT_FALSE(parse_header_argument("X Mailer: ferry", why));
    EXPECT_FALSE(parse_header_argument("X-Mailer : ferry", why));
    EXPECT_FALSE(parse_header_argument("X-Mailér: ferry", why));
    EXPECT_FALSE(parse_header_argument("X-Mailer: ferry\r\nBcc: eve@example.test", why));
    EXPECT_TRUE(why.starts_with("header injection")) << why;
    EXPECT_FALSE(parse_header_argument("X-Mailer: ferry\n", why));
    EXPECT_TRUE(why.starts_with("header injection")) << why;
    EXPECT_FALSE(parse_header_argument("X-Mai\rler: ferry", why));
    EXPECT_TRUE(why.starts_with("header injection")) << why;
    EXPECT_FALSE(parse_header_argument(std::string("X: a\0b", 6), why));
    EXPECT_TRUE(why.starts_with("header injection")) << why;
    EXPECT_FALSE(parse_header_argument("X: a\x1b[31m", why));
    EXPECT_NE(why.find("control"), std::string::npos) << why;
}

// ---- header fields --------------------------------------------------------------------------------------------

TEST(ComposeHeaders, SimpleMessageExactly) {
    const Composed r = composed(simple());
    EXPECT_EQ(r.message,
              "From: Alice <alice@example.test>\r\n"
              "To: bob@example.test\r\n"
              "Subject: Lunch\r\n"
              "Date: Mon, 23 Nov 2026 10:46:29 +0000\r\n"
              "Message-ID: <20261123.abc@example.test>\r\n"
              "MIME-Version: 1.0\r\n"
              "Content-Type: text/plain; charset=utf-8\r\n"
              "Content-Transfer-Encoding: 7bit\r\n"
              "\r\n"
              "Hello Bob,\r\n"
              "see you at noon.\r\n");
}

TEST(ComposeHeaders, FieldOrderWithCcAndExtras) {
    Composition c = simple();
    c.cc = {addr("Carol", "carol@example.test")};
    c.extra_headers = {{"X-Mailer", "ferry send"}, {"Reply-To", "Alice <alice@example.test>"}, {"X-Priority", "3"}};
    const Entity e = parse_entity(composed(c).message);
    EXPECT_EQ(e.names(), (std::vector<std::string>{"From", "To", "Cc", "Subject", "Date", "Message-ID", "MIME-Version",
                                                    "X-Mailer", "Reply-To", "X-Priority", "Content-Type",
                                                    "Content-Transfer-Encoding"}));
    EXPECT_EQ(*e.get("Cc"), "Carol <carol@example.test>");
    EXPECT_EQ(*e.get("X-Mailer"), "ferry send");
    EXPECT_EQ(*e.get("Reply-To"), "Alice <alice@example.test>");
}

TEST(ComposeHeaders, BccOnlyGetsUndisclosedRecipients) {
    Composition c = simple();
    c.to.clear();
    Entity e = parse_entity(composed(c).message);
    EXPECT_EQ(*e.get("To"), "undisclosed-recipients:;");
    c.cc = {addr("", "carol@example.test")};
    e = parse_entity(composed(c).message);
    EXPECT_FALSE(e.get("To"));   // Cc alone is a destination field (RFC 5322 3.6.3)
    EXPECT_EQ(*e.get("Cc"), "carol@example.test");
}

TEST(ComposeHeaders, EmptySubjectIsAnEmptyField) {
    Composition c = simple();
    c.subject = "";
    const Composed r = composed(c);
    EXPECT_NE(r.message.find("\r\nSubject:\r\nDate:"), std::string::npos);
    c.subject = "  \t ";
    EXPECT_EQ(composed(c).message, r.message);
}

TEST(ComposeHeaders, NonAsciiSubjectRoundTrips) {
    for (const std::string& subject : std::vector<std::string>{"Grüße aus Köln", "Привет, мир! Как дела? Это длинная тема письма, которая не помещается в одну строку",
          "日本語の件名はとても長くなることがありますので、エンコードされた単語が分割されます。絵文字も🎉🎉🎉",
          "Re: [ferry] ½ done — \"quoted\" (parens) <angles> ?= =? _under_ mixed with ASCII words that go on and on",
          "🎉", "a🎉b", "x  y\tz  é  w"}) {
        Composition c = simple();
        c.subject = subject;
        const Composed r = composed(c);
        const Entity e = parse_entity(r.message);
        EXPECT_EQ(decode_words(*e.get("Subject")), subject);
        // Every encoded-word is at most 75 octets and holds whole UTF-8 characters.
        const std::string value = *e.get("Subject");
        std::size_t pos = 0;
        while ((pos = value.find("=?", pos)) != std::string::npos) {
            const auto end = value.find("?=", pos + 10);
            ASSERT_NE(end, std::string::npos);
            const std::string_view word = std::string_view(value).substr(pos, end + 2 - pos);
            EXPECT_LE(word.size(), kMaxEncodedWordLength);
            const auto decoded = encoded_word(word);
            ASSERT_TRUE(decoded) << word;
            EXPECT_TRUE(ferry::util::is_valid_utf8(*decoded)) << word;
            pos = end + 2;
        }
    }
}

TEST(ComposeHeaders, AsciiSubjectsStayReadableAndFoldAtSpaces) {
    Composition c = simple();
    c.subject = "This is a rather long subject line that certainly will not fit on one line of seventy-eight "
                "octets, so it is folded at the spaces between its words";
    const Entity e = parse_entity(composed(c).message);
    EXPECT_EQ(*e.get("Subject"), c.subject);   // unfolding alone gives it back: no encoded-words
    EXPECT_NE(e.raw_fields[2].find("\r\n "), std::string::npos);
    EXPECT_EQ(e.raw_fields[2].find("=?"), std::string::npos);
}

TEST(ComposeHeaders, WordsThatCannotGoAsTheyAreAreEncoded) {
    Composition c = simple();
    c.subject = "see =?utf-8?B?Zm9v?= here";   // would be decoded as "foo" if sent as it is
    Entity e = parse_entity(composed(c).message);
    EXPECT_EQ(e.get("Subject")->find("=?utf-8?B?Zm9v?="), std::string::npos);
    EXPECT_EQ(decode_words(*e.get("Subject")), c.subject);
    c.subject = "long " + std::string(2000, 'x') + " word";   // cannot be folded: encoded-words can be cut
    e = parse_entity(composed(c).message);
    EXPECT_EQ(decode_words(*e.get("Subject")), c.subject);
    c.subject = std::string(800, 'y');   // long, but fits a line: left alone
    const Composed r = compose(c);
    EXPECT_EQ(parse_entity(r.message).get("Subject"), c.subject);
    EXPECT_EQ(line_problem(r.message), "");
}

TEST(ComposeHeaders, DisplayNames) {
    Composition c = simple();
    c.to = {addr("Bob", "bob@example.test"), addr("Smith, Bob", "bob2@example.test"),
            addr("Dr. Who", "who@example.test"), addr("Say \"hi\" \\o/", "hi@example.test"),
            addr("Zoë Ångström", "zoe@example.test"), addr("  Spaced   Out  ", "s@example.test"),
            addr("=?utf-8?B?Zm9v?=", "lookalike@example.test"),
            addr("Дмитрий Дмитриевич Шостакович, композитор и пианист", "dmitri@example.test"),
            addr("", "plain@example.test")};
    const Entity e = parse_entity(composed(c).message);
    const std::string to = *e.get("To");
    EXPECT_NE(to.find("Bob <bob@example.test>"), std::string::npos);   // atoms as they are
    EXPECT_NE(to.find("\"Smith, Bob\" <bob2@example.test>"), std::string::npos);
    EXPECT_NE(to.find("\"Dr. Who\""), std::string::npos);
    EXPECT_NE(to.find("\"Say \\\"hi\\\" \\\\o/\""), std::string::npos);
    EXPECT_NE(to.find("\"Spaced   Out\""), std::string::npos);
    const std::vector<Mailbox> expected = {
        {"Bob", "bob@example.test"}, {"Smith, Bob", "bob2@example.test"}, {"Dr. Who", "who@example.test"},
        {"Say \"hi\" \\o/", "hi@example.test"}, {"Zoë Ångström", "zoe@example.test"},
        {"Spaced   Out", "s@example.test"}, {"=?utf-8?B?Zm9v?=", "lookalike@example.test"},
        {"Дмитрий Дмитриевич Шостакович, композитор и пианист", "dmitri@example.test"},
        {"", "plain@example.test"}};
    EXPECT_EQ(mailboxes(to), expected);
}

TEST(ComposeHeaders, ManyRecipientsFoldBetweenAddresses) {
    Composition c = simple();
    c.to.clear();
    for (int i = 0; i < 40; ++i) c.to.push_back(addr(i % 2 ? "User " + std::to_string(i) : "", "user" + std::to_string(i) + "@example.test"));
    const Entity e = parse_entity(composed(c).message);
    const auto list = mailboxes(*e.get("To"));
    ASSERT_EQ(list.size(), 40U);
    EXPECT_EQ(list[39], (Mailbox{"User 39", "user39@example.test"}));
    EXPECT_GT(std::count(e.raw_fields[1].begin(), e.raw_fields[1].end(), '\n'), 10);
}

TEST(ComposeHeaders, AddressesAreCheckedAndCanonical) {
    Composition c = simple();
    c.to = {addr("", "\"bob\"@example.test")};
    EXPECT_EQ(*parse_entity(composed(c).message).get("To"), "bob@example.test");
    c.to = {addr("", "not an address")};
    EXPECT_NE(error_of(c).find("To address"), std::string::npos);
    c.to = {addr("", "zoë@example.test")};
    EXPECT_NE(error_of(c).find("SMTPUTF8"), std::string::npos);
    c.to = {addr("", "joe@[x-tag:>]")};   // a legal RFC 5321 general literal, but never worth the confusion
    EXPECT_NE(error_of(c).find("< or >"), std::string::npos);
    c.to = {addr("", "=?utf-8?B?Zm9v?=@example.test")};   // atext: sent as it is, never decoded in an addr-spec
    EXPECT_EQ(*parse_entity(composed(c).message).get("To"), "=?utf-8?B?Zm9v?=@example.test");
    c = simple();
    c.from = addr("", "");
    EXPECT_NE(error_of(c).find("From address"), std::string::npos);
    c = simple();
    c.cc = {addr("", "x@")};
    EXPECT_NE(error_of(c).find("Cc address"), std::string::npos);
}

TEST(ComposeHeaders, HeaderInjectionIsAnErrorNamingTheField) {
    const auto injected = [](auto change, std::string_view field) {
        Composition c = simple();
        change(c);
        const std::string e = error_of(c);
        EXPECT_TRUE(e.starts_with("header injection")) << e;
        EXPECT_NE(e.find(field), std::string::npos) << e;
    };
    for (const std::string& bad : std::vector<std::string>{"\r\nBcc: eve@example.test", "\n", "\r", std::string("\0", 1)}) {
        injected([&](Composition& c) { c.subject = "Hi" + bad; }, "Subject");
        injected([&](Composition& c) { c.from.display_name = "Alice" + bad; }, "From display name");
        injected([&](Composition& c) { c.from.address = "alice@example.test" + bad; }, "From address");
        injected([&](Composition& c) { c.to[0].display_name = bad + "Bob"; }, "To display name");
        injected([&](Composition& c) { c.to[0].address = "bob@example.test" + bad; }, "To address");
        injected([&](Composition& c) { c.cc = {addr("Carol" + bad, "carol@example.test")}; }, "Cc display name");
        injected([&](Composition& c) { c.message_id = "<a@b>" + bad; }, "Message-ID");
        injected([&](Composition& c) { c.extra_headers = {{"X-A", "v" + bad}}; }, "X-A");
        injected([&](Composition& c) { c.extra_headers = {{"X-A" + bad, "v"}}; }, "extra header name");
        injected([&](Composition& c) { c.attachments = {{"a.txt" + bad, "text/plain", "x"}}; }, "attachment 1 filename");
        injected([&](Composition& c) { c.attachments = {{"a.txt", "text/plain" + bad, "x"}}; }, "attachment 1 content type");
    }
}

TEST(ComposeHeaders, OtherBadValues) {
    Composition c = simple();
    c.subject = "bell\x07";
    EXPECT_NE(error_of(c).find("control character in Subject"), std::string::npos);
    c.subject = "latin-1 \xE9";
    EXPECT_NE(error_of(c).find("Subject is not valid UTF-8"), std::string::npos);
    c = simple();
    c.date = 0;
    EXPECT_EQ(error_of(c), "Date not set");
    for (const char* id : {"", "abc@example.test", "<abc>", "<@example.test>", "<abc@>", "<a b@example.test>",
                           "<a@b@c>", "<a..b@example.test>", "<abc@example.test"}) {
        c = simple();
        c.message_id = id;
        EXPECT_NE(error_of(c).find("Message-ID"), std::string::npos) << id;
    }
    c = simple();
    c.message_id = "<x.y@[192.0.2.1]>";
    EXPECT_NE(composed(c).message.find("Message-ID: <x.y@[192.0.2.1]>\r\n"), std::string::npos);
}

TEST(ComposeHeaders, ExtraHeadersThatComposeWritesAreRefused) {
    for (const char* name : {"From", "to", "CC", "Bcc", "Subject", "Date", "Message-ID", "message-id", "MIME-Version",
                             "Content-Type", "content-transfer-encoding"}) {
        Composition c = simple();
        c.extra_headers = {{"X-Ok", "1"}, {name, "x@example.test"}};
        const std::string e = error_of(c);
        EXPECT_NE(e.find(name), std::string::npos) << e;
        EXPECT_NE(e.find("compose writes that field itself"), std::string::npos) << e;
    }
}

TEST(ComposeHeaders, ExtraHeaderValues) {
    Composition c = simple();
    c.extra_headers = {{"Reply-To", "Zoë Ångström <zoe@example.test>, \"Smith, Bob\" <bob@example.test>"},
                       {"X-Note", "grüße aus Köln"},
                       {"X-Encoded", "=?utf-8?B?Zm9v?= as the user wrote it"},
                       {"References", "<a@example.test> <b@example.test> <c@example.test> <d@example.test> <e@example.test>"},
                       {"X-Empty", ""}};
    const Entity e = parse_entity(composed(c).message);
    EXPECT_EQ(mailboxes(*e.get("Reply-To")),
              (std::vector<Mailbox>{{"Zoë Ångström", "zoe@example.test"}, {"Smith, Bob", "bob@example.test"}}));
    EXPECT_EQ(decode_words(*e.get("X-Note")), "grüße aus Köln");
    EXPECT_EQ(*e.get("X-Encoded"), "=?utf-8?B?Zm9v?= as the user wrote it");   // ASCII goes as it is
    EXPECT_EQ(*e.get("References"), c.extra_headers[3].second);
    EXPECT_EQ(*e.get("X-Empty"), "");

    c.extra_headers = {{"Reply-To", "a@example.test"}, {"reply-to", "b@example.test"}};
    EXPECT_NE(error_of(c).find("given twice"), std::string::npos);
    c.extra_headers = {{"Reply-To", "not an address"}};
    EXPECT_NE(error_of(c).find("Reply-To"), std::string::npos);
    c.extra_headers = {{"In-Reply-To", "<é@example.test>"}};
    EXPECT_NE(error_of(c).find("structured"), std::string::npos);
    c.extra_headers = {{"Content-Description", "é"}};
    EXPECT_NE(error_of(c).find("structured"), std::string::npos);
    c.extra_headers = {{"X Bad", "v"}};
    EXPECT_NE(error_of(c).find("RFC 5322 2.2"), std::string::npos);
    c.extra_headers = {{"X-Long", "a " + std::string(1000, 'b')}};   // cannot be folded, and ASCII goes as it is
    EXPECT_NE(error_of(c).find("too long"), std::string::npos);
    c.extra_headers = {{"X-Ctl", "a\x01"}};
    EXPECT_NE(error_of(c).find("control"), std::string::npos);
}

// ---- body -----------------------------------------------------------------------------------------------------

TEST(ComposeBody, TextOnlyIsOnePart) {
    Composition c = simple();
    c.text = "line one\nline two\r\nline three\rline four";
    const Entity e = parse_entity(composed(c).message);
    EXPECT_EQ(*e.get("Content-Type"), "text/plain; charset=utf-8");
    EXPECT_EQ(*e.get("Content-Transfer-Encoding"), "7bit");
    EXPECT_EQ(e.body, "line one\r\nline two\r\nline three\r\nline four\r\n");
    EXPECT_EQ(e.count("Content-Type"), 1U);
}

TEST(ComposeBody, EmptyText) {
    Composition c = simple();
    c.text = "";
    const Composed r = composed(c);
    EXPECT_TRUE(r.message.ends_with("Content-Transfer-Encoding: 7bit\r\n\r\n"));
}

TEST(ComposeBody, NonAsciiAndLongLinesAreQuotedPrintable) {
    for (const std::string& text : {std::string("Grüße, Zoë!\nZweite Zeile mit Leerzeichen am Ende   \n"),
                                   std::string(1200, 'a') + "\n", std::string("nul\0byte\n", 9),
                                   std::string("tab at end\t\nequals = sign\n.\nFrom here\n")}) {
        Composition c = simple();
        c.text = text;
        if (text.find("tab at end") != std::string::npos) c.text += std::string(10, ' ') + "é";
        const Entity e = parse_entity(composed(c).message);
        const bool ascii = ferry::util::is_ascii(c.text) && c.text.find('\0') == std::string::npos &&
                           c.text.size() < 998;
        EXPECT_EQ(*e.get("Content-Transfer-Encoding"), ascii ? "7bit" : "quoted-printable");
        EXPECT_EQ(content(e), canonical_lines(c.text));
        for (std::size_t pos = 0; pos < e.body.size();) {
            const auto end = e.body.find("\r\n", pos);
            EXPECT_LE(end - pos, kQuotedPrintableLineLength);
            const std::string_view line = std::string_view(e.body).substr(pos, end - pos);
            EXPECT_FALSE(line.ends_with(" ") || line.ends_with("\t")) << line;
            pos = end + 2;
        }
    }
}

TEST(ComposeBody, InvalidUtf8IsRefused) {
    Composition c = simple();
    c.text = "caf\xE9\n";
    EXPECT_NE(error_of(c).find("text body is not valid UTF-8"), std::string::npos);
    c = simple();
    c.html = "<p>\xFF</p>";
    EXPECT_NE(error_of(c).find("html body"), std::string::npos);
}

TEST(ComposeBody, HtmlMakesMultipartAlternative) {
    Composition c = simple();
    c.html = "<p>Hello <b>Bob</b></p>\n";
    const Entity e = parse_entity(composed(c).message);
    EXPECT_TRUE(e.get("Content-Type")->starts_with("multipart/alternative; boundary="));
    EXPECT_FALSE(e.get("Content-Transfer-Encoding"));
    const auto parts = multipart_parts(e);
    ASSERT_EQ(parts.size(), 2U);
    EXPECT_EQ(*parts[0].get("Content-Type"), "text/plain; charset=utf-8");   // RFC 2046 5.1.4: the plainest first
    EXPECT_EQ(*parts[1].get("Content-Type"), "text/html; charset=utf-8");
    EXPECT_EQ(content(parts[0]), "Hello Bob,\r\nsee you at noon.\r\n");
    EXPECT_EQ(content(parts[1]), "<p>Hello <b>Bob</b></p>\r\n");
}

TEST(ComposeQuotedPrintable, Rules) {
    EXPECT_EQ(quoted_printable_encode("a=b\r\n"), "a=3Db\r\n");
    EXPECT_EQ(quoted_printable_encode("end \r\nend\t\r\n \r\n"), "end=20\r\nend=09\r\n=20\r\n");
    EXPECT_EQ(quoted_printable_encode("mid space ok\r\n"), "mid space ok\r\n");
    EXPECT_EQ(quoted_printable_encode("\xC3\xA9\r\n"), "=C3=A9\r\n");
    EXPECT_EQ(quoted_printable_encode(std::string(76, 'x') + "\r\n"), std::string(76, 'x') + "\r\n");
    EXPECT_EQ(quoted_printable_encode(std::string(77, 'x') + "\r\n"),
              std::string(75, 'x') + "=\r\n" + "xx\r\n");
    // A =XX is never cut by a soft break.
    const std::string enc = quoted_printable_encode(std::string(74, 'x') + "\xC3\xA9" + "\r\n");
    EXPECT_EQ(enc, std::string(74, 'x') + "=\r\n=C3=A9\r\n");
    EXPECT_EQ(qp_decode(enc), std::string(74, 'x') + "\xC3\xA9\r\n");
    // Not canonical input still never gives a bare CR or LF.
    EXPECT_EQ(quoted_printable_encode("a\rb\nc"), "a=0Db=0Ac");
}

TEST(ComposeQuotedPrintable, CanonicalLines) {
    EXPECT_EQ(canonical_lines(""), "");
    EXPECT_EQ(canonical_lines("a"), "a\r\n");
    EXPECT_EQ(canonical_lines("a\n\nb\n"), "a\r\n\r\nb\r\n");
    EXPECT_EQ(canonical_lines("a\r\n"), "a\r\n");
    EXPECT_EQ(canonical_lines("a\r\r\n"), "a\r\n\r\n");
    EXPECT_EQ(canonical_lines("\n"), "\r\n");
}

// ---- attachments ----------------------------------------------------------------------------------------------

std::string every_octet(std::size_t repeat) {
    std::string s;
    for (std::size_t r = 0; r < repeat; ++r)
        for (int i = 0; i < 256; ++i) s += static_cast<char>(i);
    return s;
}

TEST(ComposeAttachments, MixedStructureAndExactBytes) {
    Composition c = simple();
    c.html = "<p>hi</p>";
    const std::string binary = every_octet(40) + "tail";
    const std::string text_file = "line 1\nline 2\r\nno final newline \r";
    c.attachments = {{"notes.txt", "text/plain", text_file}, {"data.bin", "application/octet-stream", binary},
                     {"empty.dat", "", ""}};
    const Entity e = parse_entity(composed(c).message);
    EXPECT_TRUE(e.get("Content-Type")->starts_with("multipart/mixed; boundary="));
    const auto parts = multipart_parts(e);
    ASSERT_EQ(parts.size(), 4U);
    EXPECT_TRUE(parts[0].get("Content-Type")->starts_with("multipart/alternative"));
    ASSERT_EQ(multipart_parts(parts[0]).size(), 2U);
    EXPECT_EQ(content(multipart_parts(parts[0])[1]), "<p>hi</p>\r\n");

    EXPECT_EQ(*parts[1].get("Content-Type"), "text/plain; name=\"notes.txt\"");
    EXPECT_EQ(*parts[1].get("Content-Transfer-Encoding"), "base64");   // text too: the bytes stay exact
    EXPECT_EQ(*parts[1].get("Content-Disposition"), "attachment; filename=\"notes.txt\"");
    EXPECT_EQ(content(parts[1]), text_file);
    EXPECT_EQ(*parts[2].get("Content-Type"), "application/octet-stream; name=\"data.bin\"");
    EXPECT_EQ(content(parts[2]), binary);
    EXPECT_EQ(*parts[3].get("Content-Type"), "application/octet-stream; name=\"empty.dat\"");
    EXPECT_EQ(parts[3].body, "");
    EXPECT_EQ(content(parts[3]), "");
}

TEST(ComposeAttachments, AttachmentsWithoutHtml) {
    Composition c = simple();
    c.attachments = {{"a.pdf", "application/pdf", "%PDF-1.4"}};
    const auto parts = multipart_parts(parse_entity(composed(c).message));
    ASSERT_EQ(parts.size(), 2U);
    EXPECT_EQ(*parts[0].get("Content-Type"), "text/plain; charset=utf-8");
    EXPECT_EQ(content(parts[0]), "Hello Bob,\r\nsee you at noon.\r\n");
    EXPECT_EQ(content(parts[1]), "%PDF-1.4");
}

TEST(ComposeAttachments, TwentyMebibytes) {
    Composition c = simple();
    std::string big(20 * 1024 * 1024, '\0');
    std::uint32_t x = 12345;
    for (char& ch : big) {
        x = x * 1664525 + 1013904223;
        ch = static_cast<char>(x >> 24);
    }
    c.attachments = {{"big.bin", "application/octet-stream", big}};
    const Composed r = compose(c);
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(line_problem(r.message), "");
    const auto parts = multipart_parts(parse_entity(r.message));
    ASSERT_EQ(parts.size(), 2U);
    EXPECT_TRUE(content(parts[1]) == big);
}

TEST(ComposeAttachments, FileNames) {
    const std::string long_ascii = "a rather long file name that does not fit on one header line at all, really.txt";
    const std::string long_utf8 = "Zoë's résumé — final version with a very long name that needs continuation lines.pdf";
    for (const std::string& name : {std::string("report.pdf"), std::string("with space.pdf"),
                                   std::string("quote\"back\\slash.txt"), std::string("Zoë.pdf"),
                                   std::string("日本語のファイル名.txt"), long_ascii, long_utf8, std::string("🎉"),
                                   std::string(255, 'n'), std::string("percent%25'star*.txt")}) {
        Composition c = simple();
        c.attachments = {{name, "application/pdf", "x"}};
        const auto parts = multipart_parts(parse_entity(composed(c).message));
        ASSERT_EQ(parts.size(), 2U) << name;
        const Parameters disposition = parameters(*parts[1].get("Content-Disposition"));
        const Parameters type = parameters(*parts[1].get("Content-Type"));
        EXPECT_EQ(disposition.value, "attachment");
        EXPECT_EQ(parameter(disposition, "filename"), name);
        EXPECT_EQ(parameter(type, "name"), name);
        const bool plain = ferry::util::is_ascii(name) && name.size() < 60;
        EXPECT_EQ(disposition.extended.count("filename"), plain ? 0U : 1U) << name;
        // RFC 2231 first, then an ASCII fallback for readers without it.
        ASSERT_TRUE(disposition.plain.count("filename")) << name;
        EXPECT_TRUE(ferry::util::is_ascii(disposition.plain.at("filename")));
        if (!plain) {
            EXPECT_NE(disposition.order.front(), "filename");
            EXPECT_EQ(disposition.order.back(), "filename");
            EXPECT_LE(disposition.plain.at("filename").size(), kMaxParameterLine);
        }
    }
}

TEST(ComposeAttachments, Fallbacks) {
    EXPECT_EQ(ascii_fallback("filename", "Zoë's résumé.pdf"), "Zo_'s r_sum_.pdf");
    EXPECT_EQ(ascii_fallback("filename", "日本.txt"), "__.txt");
    const std::string cut = ascii_fallback("filename", std::string(100, 'x') + ".tar.gz");
    EXPECT_TRUE(cut.ends_with(".gz"));
    EXPECT_TRUE(fits_quoted("filename", cut));
    EXPECT_EQ(ascii_fallback("filename", "a\"b\\c"), "a_b_c");
}

TEST(ComposeAttachments, ContentTypes) {
    Composition c = simple();
    c.attachments = {{"a", "", "x"}, {"b.eml", "message/rfc822", "From: a@b\n\nx\n"}, {"c", "multipart/mixed", "x"},
                     {"d.txt", "text/plain", "grüße\n"}, {"e.txt", "Text/Plain", "ascii\n"}, {"", "image/png", "png"}};
    const auto parts = multipart_parts(parse_entity(composed(c).message));
    ASSERT_EQ(parts.size(), 7U);
    EXPECT_EQ(*parts[1].get("Content-Type"), "application/octet-stream; name=\"a\"");
    EXPECT_EQ(*parts[2].get("Content-Type"), "application/octet-stream; name=\"b.eml\"");   // no base64 for message/*
    EXPECT_EQ(content(parts[2]), "From: a@b\n\nx\n");
    EXPECT_EQ(*parts[3].get("Content-Type"), "application/octet-stream; name=\"c\"");
    EXPECT_EQ(*parts[4].get("Content-Type"), "text/plain; charset=utf-8; name=\"d.txt\"");
    EXPECT_EQ(*parts[5].get("Content-Type"), "text/plain; name=\"e.txt\"");
    EXPECT_EQ(*parts[6].get("Content-Type"), "image/png");
    EXPECT_EQ(*parts[6].get("Content-Disposition"), "attachment");

    for (const char* bad : {"text", "text/", "/plain", "text/plain; charset=x", "text/pl ain", "a/b/c", "tëxt/plain"}) {
        c.attachments = {{"a", bad, "x"}};
        EXPECT_NE(error_of(c).find("attachment 1 content type"), std::string::npos) << bad;
    }
}

TEST(ComposeAttachments, BadFileNames) {
    Composition c = simple();
    c.attachments = {{"ok.txt", "text/plain", "x"}, {"dir/evil.txt", "text/plain", "x"}};
    EXPECT_NE(error_of(c).find("attachment 2 filename"), std::string::npos);
    c.attachments = {{std::string(256, 'n'), "text/plain", "x"}};
    EXPECT_NE(error_of(c).find("longer than 255"), std::string::npos);
    c.attachments = {{"caf\xE9.txt", "text/plain", "x"}};
    EXPECT_NE(error_of(c).find("UTF-8"), std::string::npos);
}

// ---- boundaries -----------------------------------------------------------------------------------------------

TEST(ComposeBoundaries, DistinctPerLevelAndAbsentFromTheContent) {
    Composition c = simple();
    c.html = "<p>x</p>";
    c.attachments = {{"a.txt", "text/plain", "x"}};
    Entity e = parse_entity(composed(c).message);
    const std::string outer = parameters(*e.get("Content-Type")).plain.at("boundary");
    const std::string inner = parameters(*multipart_parts(e)[0].get("Content-Type")).plain.at("boundary");
    EXPECT_EQ(outer, "=_ferry_mix_K7q2ZpX9");
    EXPECT_EQ(inner, "=_ferry_alt_K7q2ZpX9");
    EXPECT_FALSE(outer.starts_with(inner) || inner.starts_with(outer));

    // Text that holds the boundaries (a forwarded message of ours, say) makes them change, deterministically.
    c.text = "--=_ferry_alt_K7q2ZpX9\n--=_ferry_alt_K7q2ZpX9_1\n--=_ferry_mix_K7q2ZpX9--\n";
    const Composed r1 = composed(c);
    const Composed r2 = composed(c);
    EXPECT_EQ(r1.message, r2.message);
    e = parse_entity(r1.message);
    EXPECT_EQ(parameters(*e.get("Content-Type")).plain.at("boundary"), "=_ferry_mix_K7q2ZpX9_1");
    const auto parts = multipart_parts(e);
    EXPECT_EQ(parameters(*parts[0].get("Content-Type")).plain.at("boundary"), "=_ferry_alt_K7q2ZpX9_2");
    EXPECT_EQ(content(multipart_parts(parts[0])[0]), canonical_lines(c.text));
}

TEST(ComposeBoundaries, TokenIsCleaned) {
    Composition c = simple();
    c.html = "<p>x</p>";
    c.boundary_token = "a\"b; c\r\nd=" + std::string(100, 'z');
    Entity e = parse_entity(composed(c).message);
    const std::string b = parameters(*e.get("Content-Type")).plain.at("boundary");
    EXPECT_EQ(b, "=_ferry_alt_abcd" + std::string(36, 'z'));
    EXPECT_LE(b.size(), 70U);   // RFC 2046 5.1.1
    c.boundary_token = "";
    e = parse_entity(composed(c).message);
    EXPECT_EQ(parameters(*e.get("Content-Type")).plain.at("boundary"), "=_ferry_alt_0");
}

// ---- the writers under compose --------------------------------------------------------------------------------

TEST(ComposeFieldWriter, FoldsAndKeepsLinesShort) {
    FieldWriter w("X-Test");
    for (int i = 0; i < 30; ++i) w.word("word" + std::to_string(i));
    const std::string field = std::move(w).finish();
    EXPECT_EQ(line_problem(field + "\r\n", kFoldWidth), "");
    EXPECT_EQ(parse_entity(field + "\r\n").get("X-Test")->substr(0, 12), "word0 word1 ");

    FieldWriter long_word("X-Long");
    long_word.word(std::string(kMaxLineLength, 'x'));
    EXPECT_FALSE(long_word.ok());
    FieldWriter fits("X");
    fits.word(std::string(kMaxLineLength - 3, 'x'));
    EXPECT_TRUE(fits.ok());
}

TEST(ComposeFieldWriter, EncodedWordsFitTheLine) {
    for (std::size_t name_length : {1U, 8U, 40U, 60U, 70U, 74U, 80U}) {
        FieldWriter w(std::string(name_length, 'N'));
        const std::string text = "Ünïcödé 日本語 🎉 " + std::string(100, 'a') + " Ünïcödé";
        w.encoded_words(text);
        const std::string field = std::move(w).finish();
        EXPECT_EQ(line_problem(field + "\r\n", std::max<std::size_t>(kFoldWidth, name_length + 1)), "") << field;
        EXPECT_EQ(decode_words(*parse_entity(field + "\r\n").get(std::string(name_length, 'N'))), text);
    }
}

TEST(ComposeParameters, Forms) {
    const auto field = [](std::string_view attr, std::string_view value, std::string_view fallback = "") {
        FieldWriter w("Content-Type");
        w.word("text/plain");
        write_parameter(w, attr, value, fallback);
        return std::move(w).finish();
    };
    EXPECT_EQ(field("charset", "utf-8"), "Content-Type: text/plain; charset=utf-8\r\n");
    EXPECT_EQ(field("name", "a b.txt"), "Content-Type: text/plain; name=\"a b.txt\"\r\n");
    EXPECT_EQ(field("name", "Zoë.txt", "Zo_.txt"),
              "Content-Type: text/plain; name*=utf-8''Zo%C3%AB.txt; name=\"Zo_.txt\"\r\n");
    EXPECT_EQ(field("name", "a'b*c%d e\"f"), "Content-Type: text/plain; name=\"a'b*c%d e\\\"f\"\r\n");
    EXPECT_EQ(field("name", "é'*% ()<>@,;:\\\"/[]?="),
              "Content-Type: text/plain;\r\n"
              " name*0*=utf-8''%C3%A9%27%2A%25%20%28%29%3C%3E%40%2C%3B%3A%5C%22%2F%5B%5D;\r\n"
              " name*1*=%3F%3D\r\n");
    const std::string many = field("filename", "🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉");
    EXPECT_EQ(line_problem(many + "\r\n", kFoldWidth), "");
    const Parameters p = parameters(parse_entity(many + "\r\n").get("Content-Type").value());
    EXPECT_EQ(p.extended.at("filename"), "🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉");
    // Sections end between characters: each one decodes to whole UTF-8 characters.
    for (const std::string& raw : parse_entity(many + "\r\n").raw_fields) {
        std::size_t pos = 0;
        while ((pos = raw.find("*=", pos)) != std::string::npos) {
            const auto end = raw.find_first_of(";\r", pos);
            std::string section = raw.substr(pos + 2, end - pos - 2);
            if (section.starts_with("utf-8''")) section = section.substr(7);
            EXPECT_TRUE(ferry::util::is_valid_utf8(percent_decode(section))) << section;
            pos = end;
        }
    }
}

TEST(ComposeParameters, GluedSemicolonStaysWithinTheLine) {
    // fuzz_compose: a parameter that filled its line to 76 octets pushed the ';' glued after it to 77.
    FieldWriter w("Content-Disposition");
    w.word("attachment");
    write_parameter(w, "filename", "quote\"bafromla\xC3\xA9.txt", "quote_bafromla_.txt", true);
    const std::string field = std::move(w).finish();
    EXPECT_EQ(line_problem(field + "\r\n", kFoldWidth), "") << field;
    EXPECT_EQ(parameter(parameters(*parse_entity(field + "\r\n").get("Content-Disposition")), "filename"),
              "quote\"bafromla\xC3\xA9.txt");
}

TEST(ComposeHeaderText, Unstructured) {
    const auto unstructured = [](std::string_view text) {
        FieldWriter w("Subject");
        write_unstructured(w, text);
        return std::move(w).finish();
    };
    EXPECT_EQ(unstructured("plain words"), "Subject: plain words\r\n");
    EXPECT_EQ(unstructured("  trimmed\t"), "Subject: trimmed\r\n");
    EXPECT_EQ(unstructured(""), "Subject:\r\n");
    EXPECT_EQ(unstructured("é"), "Subject: =?utf-8?B?w6k=?=\r\n");
    EXPECT_EQ(unstructured("Re: é è x"), "Subject: Re: =?utf-8?B?w6kgw6g=?= x\r\n");   // one run for adjacent words
    EXPECT_EQ(header_text_error("ok\ttab", "X"), "");
    EXPECT_EQ(header_text_error("a\r\nb", "X"), "header injection: CR, LF or NUL in X");
    EXPECT_EQ(header_text_error("a\x7f", "X"), "control character in X");
    EXPECT_EQ(header_text_error("\xED\xA0\x80", "X"), "X is not valid UTF-8");   // a surrogate
    EXPECT_EQ(header_text_error("\xC0\xAF", "X"), "X is not valid UTF-8");       // overlong
}

TEST(ComposeHeaderText, Phrases) {
    const auto phrase = [](std::string_view text) {
        FieldWriter w("From");
        write_phrase(w, text);
        return std::move(w).finish();
    };
    EXPECT_EQ(phrase("Alice Smith"), "From: Alice Smith\r\n");
    EXPECT_EQ(phrase("O'Brien"), "From: O'Brien\r\n");
    EXPECT_EQ(phrase("Smith, Bob"), "From: \"Smith, Bob\"\r\n");
    EXPECT_EQ(phrase("a  b"), "From: \"a  b\"\r\n");
    EXPECT_EQ(phrase("Zoë"), "From: =?utf-8?B?Wm/Dqw==?=\r\n");
}

}  // namespace
