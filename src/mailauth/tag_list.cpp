#include "mailauth/tag_list.hpp"

#include "util/ascii.hpp"

namespace ferry::mailauth {

namespace {

using util::is_wsp;
using util::is_alpha;
using util::is_digit;

bool is_valchar(char c) {
    const auto u = static_cast<unsigned char>(c);
    return u >= 0x21 && u <= 0x7e && u != ';';
}

// Skips FWS (RFC 5322 3.2.2 as RFC 6376 2.8 uses it: [*WSP CRLF] 1*WSP, here any run of WSP and CRLF-WSP).
// A CRLF must be followed by WSP; a bare CR or LF, or CRLF at the end, is not whitespace.
std::size_t skip_fws(std::string_view s, std::size_t at) {
    for (;;) {
        if (at < s.size() && is_wsp(s[at])) {
            ++at;
        } else if (at + 2 < s.size() && s[at] == '\r' && s[at + 1] == '\n' && is_wsp(s[at + 2])) {
            at += 3;
        } else {
            return at;
        }
    }
}

std::nullopt_t fail(std::string* error, const char* why) {
    if (error) *error = why;
    return std::nullopt;
}

}  // namespace

const std::string* TagList::find(std::string_view name) const {
    for (const auto& t : tags)
        if (t.name == name) return &t.value;
    return nullptr;
}

std::optional<TagList> parse_tag_list(std::string_view s, std::string* error) {
    TagList list;
    std::size_t at = 0;
    for (;;) {
        at = skip_fws(s, at);
        if (at == s.size()) break;
        if (s[at] == ';') {   // an empty tag-spec
            ++at;
            continue;
        }
        if (!is_alpha(s[at])) return fail(error, "tag name expected");
        const std::size_t name_start = at;
        while (at < s.size() && (is_alpha(s[at]) || is_digit(s[at]) || s[at] == '_')) ++at;
        Tag tag;
        tag.name = std::string(s.substr(name_start, at - name_start));
        at = skip_fws(s, at);
        if (at == s.size() || s[at] != '=') return fail(error, "'=' expected after a tag name");
        at = skip_fws(s, at + 1);
        // tag-value: tvals separated by FWS; the value ends at ';' or the end, trailing FWS dropped.
        const std::size_t value_start = at;
        std::size_t value_end = at;
        while (at < s.size() && s[at] != ';') {
            if (is_valchar(s[at])) {
                ++at;
                value_end = at;
                continue;
            }
            const std::size_t after = skip_fws(s, at);
            if (after == at) return fail(error, "character not allowed in a tag value");
            at = after;
        }
        tag.value = std::string(s.substr(value_start, value_end - value_start));
        if (list.find(tag.name)) return fail(error, "tag given twice");
        list.tags.push_back(std::move(tag));
        if (at < s.size()) ++at;   // the ';'
    }
    return list;
}

std::vector<std::string_view> split_colon_list(std::string_view value) {
    const auto trim_fws = [](std::string_view s) {
        while (!s.empty() && is_fws(s.front())) s.remove_prefix(1);
        while (!s.empty() && is_fws(s.back())) s.remove_suffix(1);
        return s;
    };
    std::vector<std::string_view> out;
    std::size_t at = 0;
    for (;;) {
        const std::size_t colon = value.find(':', at);
        out.push_back(trim_fws(value.substr(at, colon == std::string_view::npos ? std::string_view::npos : colon - at)));
        if (colon == std::string_view::npos) return out;
        at = colon + 1;
    }
}

std::string strip_whitespace(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (const char c : value)
        if (!is_fws(c)) out.push_back(c);
    return out;
}

}  // namespace ferry::mailauth
