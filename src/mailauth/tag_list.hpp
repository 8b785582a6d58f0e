// Tag=value lists (RFC 6376 3.2): the syntax of DKIM-Signature fields, DKIM key records and, with the same
// rules, DMARC records (RFC 7489 6.4). Pure: text in, tags out.
//
//   tag-list  = tag-spec *( ";" tag-spec ) [ ";" ]
//   tag-spec  = [FWS] tag-name [FWS] "=" [FWS] tag-value [FWS]
//   tag-name  = ALPHA *( ALPHA / DIGIT / "_" )
//   tag-value = [ tval *( 1*(WSP / FWS) tval ) ]      tval = 1*( %x21-3A / %x3C-7E )
//
// Tag names are case-sensitive. A tag given twice makes the whole list invalid (RFC 6376 3.2). A tag-spec of
// nothing but whitespace (as in "a=1; ; b=2" or a trailing "; ") is skipped: records in the wild have them and
// no reading of them is ambiguous.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::mailauth {

struct Tag {
    std::string name;
    std::string value;   // leading and trailing FWS removed; whitespace and folding inside kept as received
};

class TagList {
public:
    std::vector<Tag> tags;   // in the order given

    // The value of tag `name`, or nullptr when it is absent.
    const std::string* find(std::string_view name) const;
};

// nullopt when the text is not a tag-list (then `error`, if given, says why in a few words).
std::optional<TagList> parse_tag_list(std::string_view text, std::string* error = nullptr);

// RFC 6376 FWS octets: WSP, and the CR and LF of folding.
inline bool is_fws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// A colon-separated tag value (h=, q=, s=, t=), each element without the FWS around it; views into `value`.
std::vector<std::string_view> split_colon_list(std::string_view value);

// A value with every FWS removed (b=, bh=, p=: RFC 6376 3.5 says whitespace in them is ignored).
std::string strip_whitespace(std::string_view value);

}  // namespace ferry::mailauth
