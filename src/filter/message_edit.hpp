// A filter's changes applied to a message held in memory: header fields inserted, appended, changed and removed
// (in the order the filter gave them, each on the result of the ones before). A replaced body is put in
// with mime::canonical_lines (CRLF line ends, as SMFIR_REPLBODY may use bare LF). Pure: text in,
// text out. What a filter writes is not trusted to be well-formed: a field name that is not one (RFC 5322 2.2) is
// skipped, and a value's line breaks become CRLF followed by whitespace, so a value can never end the field and
// start another one or end the header section.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "filter/filter_types.hpp"

namespace ferry::filter {

// The message as the filters see it: the header section (each field with its CRLF) and the body after the
// empty line ("" with has_body false for a message that has none).
struct MessageText {
    std::string header;
    std::string body;
    bool has_body = true;

    static MessageText split(std::string_view message);
    std::string joined() const;
};

// `edits` applied to `header`; `skipped` counts the edits that were not (a bad name).
std::string apply_header_edits(std::string_view header, const std::vector<HeaderEdit>& edits, std::size_t& skipped);

// One field `name: value` as applied: a space after the colon unless the value starts with whitespace, its line
// breaks (LF, CRLF or CR) as CRLF with a tab where the next line would not start with whitespace, ending in CRLF.
// "" when `name` is not a field name.
std::string render_field(std::string_view name, std::string_view value);

}  // namespace ferry::filter
