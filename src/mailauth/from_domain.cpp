#include "mailauth/from_domain.hpp"

#include "util/ascii.hpp"

#include <algorithm>

#include "mime/header.hpp"

namespace ferry::mailauth {
namespace {

using util::is_wsp;


// RFC 5322 3.2.3 atext, with the UTF-8 octets of RFC 6532 3.2.
bool is_atext(char c) {
    return static_cast<unsigned char>(c) >= 0x80 || util::is_atext(c);
}

bool is_control(char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && !is_wsp(c)) || u == 0x7f;
}

struct Token {
    enum class Kind { atom, quoted, literal, special } kind;
    std::string_view text;   // as written; a special is its one character
};

// RFC 5322 3.2: atoms, quoted strings, domain literals and specials, CFWS dropped. nullopt (with `problem`)
// on an unterminated quoted string, comment or literal, a control character, or a stray ')' ']' '\'.
std::optional<std::vector<Token>> tokenize(std::string_view s, std::string& problem) {
    std::vector<Token> tokens;
    for (std::size_t i = 0; i < s.size();) {
        const char c = s[i];
        if (is_wsp(c)) {
            ++i;
        } else if (is_control(c)) {
            problem = "control character";
            return std::nullopt;
        } else if (c == '(') {   // comment, nested; iterative so depth costs no stack
            std::size_t depth = 0;
            do {
                if (s[i] == '\\') ++i;
                else if (s[i] == '(') ++depth;
                else if (s[i] == ')') --depth;
                else if (is_control(s[i])) break;
                ++i;
            } while (depth > 0 && i < s.size());
            if (depth > 0) {
                problem = "unterminated comment";
                return std::nullopt;
            }
        } else if (c == '"' || c == '[') {
            const char close = c == '"' ? '"' : ']';
            std::size_t j = i + 1;
            for (; j < s.size() && s[j] != close; ++j) {
                if (is_control(s[j]) || (c == '[' && s[j] == '[')) break;
                if (s[j] == '\\') ++j;   // quoted-pair (RFC 5322 3.2.1; obs-dtext allows it in literals)
            }
            if (j >= s.size() || s[j] != close) {
                problem = c == '"' ? "unterminated quoted string" : "unterminated domain literal";
                return std::nullopt;
            }
            tokens.push_back({c == '"' ? Token::Kind::quoted : Token::Kind::literal, s.substr(i, j + 1 - i)});
            i = j + 1;
        } else if (is_atext(c)) {
            std::size_t j = i;
            while (j < s.size() && is_atext(s[j])) ++j;
            tokens.push_back({Token::Kind::atom, s.substr(i, j - i)});
            i = j;
        } else if (std::string_view("<>:;@,.").find(c) != std::string_view::npos) {
            tokens.push_back({Token::Kind::special, s.substr(i, 1)});
            ++i;
        } else {
            problem = std::string("unexpected '") + c + "'";
            return std::nullopt;
        }
    }
    return tokens;
}

class AddressParser {
public:
    AddressParser(const std::vector<Token>& tokens, std::string& problem) : t_(tokens), problem_(problem) {}

    // address-list = address *("," address), with the empty elements of obs-addr-list (RFC 5322 4.4).
    bool address_list(std::vector<MailboxAddress>& out) {
        for (;;) {
            while (is(',')) ++at_;
            if (at_ == t_.size()) return true;
            if (!address(out, true)) return false;
            if (at_ == t_.size()) return true;
            if (!is(',')) return error("',' expected between addresses");
        }
    }

private:
    bool is(char special) const {
        return at_ < t_.size() && t_[at_].kind == Token::Kind::special && t_[at_].text[0] == special;
    }
    bool is_word() const {
        return at_ < t_.size() && (t_[at_].kind == Token::Kind::atom || t_[at_].kind == Token::Kind::quoted);
    }
    bool error(const char* why) {
        problem_ = why;
        return false;
    }

    // address = mailbox / group; mailbox = name-addr / addr-spec (RFC 5322 3.4).
    bool address(std::vector<MailboxAddress>& out, bool group_allowed) {
        const std::size_t phrase_start = at_;
        while (is_word() || is('.')) ++at_;   // display-name (obs-phrase allows '.'), or a local-part
        if (is(':')) {
            if (!group_allowed) return error("group inside a group");
            if (at_ == phrase_start) return error("group without a name");
            ++at_;
            return group_list(out);
        }
        if (is('<')) {
            ++at_;
            return angle_addr(out);
        }
        if (is('@')) {
            at_ = phrase_start;
            return addr_spec(out);
        }
        return error(at_ == t_.size() ? "address expected" : "'@' expected");
    }

    // group = display-name ":" [group-list] ";" — the name was read.
    bool group_list(std::vector<MailboxAddress>& out) {
        for (;;) {
            while (is(',')) ++at_;
            if (is(';')) {
                ++at_;
                return true;
            }
            if (at_ == t_.size()) return error("group without ';'");
            if (!address(out, false)) return false;
            if (!is(',') && !is(';')) return error("',' or ';' expected in a group");
        }
    }

    // angle-addr = "<" [obs-route] addr-spec ">" — the '<' was read.
    bool angle_addr(std::vector<MailboxAddress>& out) {
        if (is('@')) {   // obs-route = obs-domain-list ":" (RFC 5322 4.4): dropped
            while (at_ < t_.size() && !is(':') && !is('>')) ++at_;
            if (!is(':')) return error("route without ':'");
            ++at_;
        }
        if (is('>')) return error("empty angle address");
        if (!addr_spec(out)) return false;
        if (!is('>')) return error("'>' expected");
        ++at_;
        return true;
    }

    // addr-spec = local-part "@" domain; local-part = word *("." word) (obs-local-part covers dot-atom and
    // quoted-string); domain = atom *("." atom) / domain-literal.
    bool addr_spec(std::vector<MailboxAddress>& out) {
        MailboxAddress a;
        for (;;) {
            if (!is_word()) return error("local part expected");
            a.local_part.append(t_[at_++].text);
            if (!is('.')) break;
            a.local_part.push_back('.');
            ++at_;
        }
        if (!is('@')) return error("'@' expected");
        ++at_;
        if (at_ < t_.size() && t_[at_].kind == Token::Kind::literal) {
            a.domain = std::string(t_[at_++].text);
        } else {
            for (;;) {
                if (at_ == t_.size() || t_[at_].kind != Token::Kind::atom) return error("domain expected");
                a.domain.append(t_[at_++].text);
                if (!is('.')) break;
                a.domain.push_back('.');
                ++at_;
            }
        }
        out.push_back(std::move(a));
        return true;
    }

    const std::vector<Token>& t_;
    std::string& problem_;
    std::size_t at_ = 0;
};

constexpr auto iequals = util::ascii_iequals;

// The field's value: everything after the colon, unfolded (RFC 5322 2.2.3: a line break before WSP removed).
std::string unfold(std::string_view raw) {
    std::string out;
    for (std::size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] == '\r' && i + 1 < raw.size() && raw[i + 1] == '\n') continue;   // the LF decides
        if (raw[i] == '\n' && (i + 1 == raw.size() || is_wsp(raw[i + 1]))) continue;
        out.push_back(raw[i]);
    }
    return out;
}

// A DNS name as DMARC asks about it (RFC 1035 2.3.4 lengths; letters, digits, hyphen, underscore; UTF-8
// octets of U-labels left to IDNA).
bool is_dns_name(std::string_view d) {
    if (d.empty() || d.size() > kMaxDomainOctets) return false;
    std::size_t label = 0;
    for (const char c : d) {
        if (c == '.') {
            if (label == 0) return false;
            label = 0;
            continue;
        }
        const auto u = static_cast<unsigned char>(c);
        const bool ok = u >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                        c == '-' || c == '_';
        if (!ok || ++label > kMaxLabelOctets) return false;
    }
    return label > 0;
}

}  // namespace

std::optional<std::vector<MailboxAddress>> parse_address_list(std::string_view value, std::string& problem) {
    const auto tokens = tokenize(value, problem);
    if (!tokens) return std::nullopt;
    std::vector<MailboxAddress> out;
    AddressParser parser(*tokens, problem);
    if (!parser.address_list(out)) return std::nullopt;
    return out;
}

std::optional<std::vector<std::string>> from_domains(std::string_view header_section, std::string& problem) {
    std::vector<std::string> domains;
    std::size_t fields = 0;
    for (const auto& field : mime::header_fields(header_section)) {
        if (!iequals(field.name, "from")) continue;
        ++fields;
        std::string why;
        const auto addresses = parse_address_list(unfold(field.raw.substr(field.raw.find(':') + 1)), why);
        if (!addresses) {
            problem = "From field does not parse: " + why;
            return std::nullopt;
        }
        if (addresses->empty()) {
            problem = "From field holds no address";
            return std::nullopt;
        }
        for (const auto& a : *addresses) {
            if (a.domain.front() == '[') {
                problem = "From address has a domain literal";
                return std::nullopt;
            }
            if (!is_dns_name(a.domain)) {
                problem = "From domain is not a DNS name";
                return std::nullopt;
            }
            std::string d = util::ascii_lower(a.domain);
            if (std::find(domains.begin(), domains.end(), d) == domains.end()) domains.push_back(std::move(d));
        }
    }
    if (fields == 0) {
        problem = "no From field";
        return std::nullopt;
    }
    return domains;
}

std::optional<std::string> from_domain(std::string_view header_section, std::string& problem) {
    const std::size_t count = mime::count_header_fields(header_section, "From");
    if (count > 1) {   // RFC 5322 3.6 allows one
        problem = std::to_string(count) + " From fields";
        return std::nullopt;
    }
    auto domains = from_domains(header_section, problem);
    if (!domains) return std::nullopt;
    if (domains->size() > 1) {
        problem = "From addresses have different domains";
        return std::nullopt;
    }
    return std::move(domains->front());
}

}  // namespace ferry::mailauth
