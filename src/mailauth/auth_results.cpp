#include "mailauth/auth_results.hpp"

#include "util/ascii.hpp"

#include <algorithm>

namespace ferry::mailauth {
namespace {

using util::is_wsp;
using util::is_digit;

constexpr std::string_view kFieldName = "Authentication-Results:";
constexpr std::string_view kFold = "\r\n\t";

bool is_alnum(char c) { return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_printable(char c) { return c >= 0x20 && c <= 0x7e; }

// RFC 2045 5.1: token := 1*<any (US-ASCII) CHAR except SPACE, CTLs, or tspecials>.
constexpr auto is_token_char = util::is_mime_token_char;
bool is_token(std::string_view s) { return !s.empty() && std::all_of(s.begin(), s.end(), is_token_char); }

// RFC 5322 3.2.3 atext (ASCII only: the field stays ASCII).
using util::is_atext;

// RFC 5322 3.2.3 dot-atom-text.
bool is_dot_atom(std::string_view s) {
    if (s.empty() || s.front() == '.' || s.back() == '.') return false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '.' ? s[i + 1] == '.' : !is_atext(s[i])) return false;
    }
    return true;
}

// RFC 5322 3.2.4 quoted-string, written without FWS: '"' *(qtext / quoted-pair) '"', printable ASCII.
bool is_quoted_string(std::string_view s) {
    if (s.size() < 2 || s.front() != '"' || s.back() != '"') return false;
    for (std::size_t i = 1; i + 1 < s.size(); ++i) {
        if (!is_printable(s[i]) || s[i] == '"') return false;
        if (s[i] == '\\' && ++i + 1 >= s.size()) return false;   // a quoted-pair needs its octet
    }
    return true;
}

// RFC 6376 3.5 (as RFC 8601 2.2 imports it): domain-name = sub-domain 1*("." sub-domain), sub-domain =
// Let-dig [Ldh-str] (RFC 5321 4.1.2).
bool is_domain_name(std::string_view s) {
    std::size_t labels = 0, at = 0;
    for (;;) {
        const std::size_t dot = std::min(s.find('.', at), s.size());
        const std::string_view label = s.substr(at, dot - at);
        if (label.empty() || !is_alnum(label.front()) || !is_alnum(label.back())) return false;
        for (const char c : label)
            if (!is_alnum(c) && c != '-') return false;
        ++labels;
        if (dot == s.size()) return labels >= 2;
        at = dot + 1;
    }
}

std::string quote(std::string_view s) {
    std::string out = "\"";
    for (const char c : s) {
        if (c == '"' || c == '\\') out.push_back('\\');
        out.push_back(c);
    }
    out.push_back('"');
    return out;
}

// RFC 8601 2.2 value (token / quoted-string) for the authserv-id.
std::string value_of(std::string_view s) {
    if (is_token(s)) return std::string(s);
    std::string printable(s);
    for (char& c : printable)
        if (!is_printable(c)) c = '?';
    return quote(printable);
}

// Words joined by single spaces, folded before a word that would pass kFoldLineOctets (RFC 5322 2.2.3: the
// fold replaces the space, so unfolding gives the same field).
class Folder {
public:
    explicit Folder(std::string_view first) : out_(first), line_(first.size()) {}

    void word(std::string_view w) {
        if (line_ + 1 + w.size() > kFoldLineOctets && line_ > 1) {
            new_line(w);
        } else {
            out_.push_back(' ');
            out_.append(w);
            line_ += 1 + w.size();
        }
    }
    void new_line(std::string_view w) {
        out_.append(kFold);
        out_.append(w);
        line_ = 1 + w.size();
    }
    void append(std::string_view s) {   // to the current word, without a space (the ';' between resinfos)
        out_.append(s);
        line_ += s.size();
    }
    std::string finish() { return out_ + "\r\n"; }

private:
    std::string out_;
    std::size_t line_;   // octets on the current line so far
};

// One resinfo: "method=result", a comment, properties; its words for the folder.
struct ResInfo {
    std::vector<std::string> words;

    ResInfo(std::string_view method, std::string_view result) { words.push_back(std::string(method) + "=" + std::string(result)); }

    void comment(std::string_view text) {
        const std::string clean = comment_text(text);
        if (clean.empty()) return;
        std::size_t at = 0;
        const std::size_t first = words.size();
        while (at < clean.size()) {
            std::size_t space = std::min(clean.find(' ', at), clean.size());
            words.push_back(clean.substr(at, space - at));
            at = space + 1;
        }
        words[first].insert(0, "(");
        words.back().push_back(')');
    }

    void property(std::string_view name, std::string_view value) {
        if (const auto v = property_value(value)) words.push_back(std::string(name) + "=" + *v);
    }
};

// RFC 6008 2: header.b holds enough of b= to tell this signature from the others in the field, at least
// kHeaderBOctets (and no more than a property value may hold).
std::string signature_prefix(const DkimOutcome& sig, const std::vector<DkimOutcome>& all) {
    const std::string& b = sig.signature_b;
    const std::size_t most = std::min(b.size(), kMaxPropertyValueOctets);
    std::size_t n = std::min(kHeaderBOctets, most);
    for (const auto& other : all) {
        if (&other == &sig || other.signature_b == b) continue;
        while (n < most && other.signature_b.compare(0, n, b, 0, n) == 0) ++n;
    }
    return b.substr(0, n);
}

ResInfo spf_resinfo(const SpfOutcome& spf) {
    ResInfo r("spf", to_string(spf.result));
    r.comment(spf.reason);
    if (spf.identity == "helo") {
        std::string helo = spf.domain;
        if (helo.empty() && spf.sender.rfind("postmaster@", 0) == 0) helo = spf.sender.substr(11);
        r.property("smtp.helo", helo);
    } else {
        r.property("smtp.mailfrom", spf.sender.empty() ? spf.domain : spf.sender);
    }
    return r;
}

ResInfo dkim_resinfo(const DkimOutcome& sig, const std::vector<DkimOutcome>& all) {
    ResInfo r("dkim", to_string(sig.result));
    r.comment(sig.testing ? (sig.reason.empty() ? "key in test mode" : sig.reason + "; key in test mode")
                          : sig.reason);
    r.property("header.d", sig.domain);
    r.property("header.i", sig.identity);
    r.property("header.s", sig.selector);
    r.property("header.a", sig.algorithm);
    r.property("header.b", signature_prefix(sig, all));
    return r;
}

ResInfo dmarc_resinfo(const DmarcOutcome& d) {
    ResInfo r("dmarc", to_string(d.result));
    if (d.result == DmarcResult::pass || d.result == DmarcResult::fail)
        r.comment("p=" + std::string(to_string(d.policy)) + " dis=" + std::string(to_string(d.disposition)));
    else
        r.comment(d.reason);
    r.property("header.from", d.from_domain);
    return r;
}

// RFC 5322 3.2.2 CFWS from `at`: WSP, folding (CRLF or LF before WSP) and comments, nested, with quoted-pairs.
// npos for an unterminated comment.
std::size_t skip_cfws(std::string_view s, std::size_t at) {
    while (at < s.size()) {
        if (is_wsp(s[at])) {
            ++at;
        } else if (s[at] == '\r' && at + 2 < s.size() && s[at + 1] == '\n' && is_wsp(s[at + 2])) {
            at += 3;
        } else if (s[at] == '\n' && at + 1 < s.size() && is_wsp(s[at + 1])) {
            at += 2;
        } else if (s[at] == '(') {
            std::size_t depth = 0;
            do {
                if (s[at] == '\\') ++at;
                else if (s[at] == '(') ++depth;
                else if (s[at] == ')') --depth;
                ++at;
            } while (depth > 0 && at < s.size());
            if (depth > 0) return std::string_view::npos;
        } else {
            break;
        }
    }
    return at;
}

}  // namespace

std::string comment_text(std::string_view text) {
    std::string out;
    for (const char c : text) {
        char d = c;
        if (c == '\r' || c == '\n' || c == '\t') d = ' ';
        else if (c == '(') d = '[';
        else if (c == ')') d = ']';
        else if (c == '\\') d = '/';
        else if (!is_printable(c)) d = '?';
        if (d == ' ' && (out.empty() || out.back() == ' ')) continue;
        out.push_back(d);
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    if (out.size() > kMaxCommentOctets) {
        out.resize(kMaxCommentOctets - 3);
        while (!out.empty() && out.back() == ' ') out.pop_back();
        out += "...";
    }
    return out;
}

std::optional<std::string> property_value(std::string_view v) {
    if (v.empty() || v.size() > kMaxPropertyValueOctets) return std::nullopt;
    if (!std::all_of(v.begin(), v.end(), is_printable)) return std::nullopt;
    if (is_token(v)) return std::string(v);
    // pvalue = [CFWS] ( value / [ [ local-part ] "@" ] domain-name ) [CFWS]
    const auto at = v.rfind('@');
    if (at != std::string_view::npos && is_domain_name(v.substr(at + 1))) {
        const std::string_view local = v.substr(0, at);
        if (local.empty() || is_dot_atom(local) || is_quoted_string(local)) return std::string(v);
    }
    return quote(v);
}

std::string authentication_results_field(const AuthResultsInput& input) {
    std::vector<ResInfo> infos;
    for (const auto& spf : input.spf) infos.push_back(spf_resinfo(spf));
    for (const auto& sig : input.dkim) infos.push_back(dkim_resinfo(sig, input.dkim));
    if (input.dmarc) infos.push_back(dmarc_resinfo(*input.dmarc));

    Folder f(std::string(kFieldName) + " " + value_of(input.authserv_id) + ";");
    if (infos.empty()) {   // RFC 8601 2.2 no-result
        f.word("none");
        return f.finish();
    }
    for (std::size_t i = 0; i < infos.size(); ++i) {
        const auto& words = infos[i].words;
        f.new_line(words.front());
        for (std::size_t w = 1; w < words.size(); ++w) f.word(words[w]);
        if (i + 1 < infos.size()) f.append(";");
    }
    return f.finish();
}

std::optional<std::string> authserv_id_of(std::string_view s) {
    std::size_t at = skip_cfws(s, 0);
    if (at == std::string_view::npos || at == s.size()) return std::nullopt;
    std::string id;
    if (s[at] == '"') {   // quoted-string (RFC 5322 3.2.4), FWS inside kept as its WSP
        for (++at;; ++at) {
            if (at >= s.size()) return std::nullopt;
            const char c = s[at];
            if (c == '"') break;
            if (c == '\\') {
                if (++at >= s.size()) return std::nullopt;
                id.push_back(s[at]);
            } else if (c == '\r' || c == '\n') {
                const std::size_t next = c == '\r' ? at + 1 : at;
                if (c == '\r' && (next >= s.size() || s[next] != '\n')) return std::nullopt;
                if (next + 1 >= s.size() || !is_wsp(s[next + 1])) return std::nullopt;
                at = next;   // the WSP after the line break is kept on the next turn
            } else if (static_cast<unsigned char>(c) < 0x20 && c != '\t') {
                return std::nullopt;
            } else {
                id.push_back(c);
            }
        }
        ++at;
    } else {
        const std::size_t start = at;
        while (at < s.size() && is_token_char(s[at])) ++at;
        if (at == start) return std::nullopt;
        id = std::string(s.substr(start, at - start));
    }
    std::size_t after = skip_cfws(s, at);
    if (after == std::string_view::npos) return std::nullopt;
    // [ CFWS authres-version ]: digits after at least some CFWS.
    if (after > at && after < s.size() && is_digit(s[after])) {
        while (after < s.size() && is_digit(s[after])) ++after;
        const std::size_t rest = skip_cfws(s, after);
        if (rest == std::string_view::npos) return std::nullopt;
        after = rest;
    }
    if (after < s.size() && s[after] != ';') return std::nullopt;
    for (char& c : id)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return id;
}

}  // namespace ferry::mailauth
