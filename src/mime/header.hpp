// Reading the header section of a message (RFC 5322 2.2, 3.4): one field's unfolded value, and the addresses
// of a mailbox or address list. Pure: text in, values out. Used to check the From: of authenticated mail.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::mime {

// The header section of `message`: everything before the first empty line (CRLF CRLF or LF LF), or all of
// it when there is no body.
std::string_view header_section(std::string_view message);

// One header field as it appears: its name (as written, without trailing WSP before the colon) and every
// octet of it, continuation lines and the final line break included. DKIM signs fields in this raw form.
struct RawField {
    std::string_view name;
    std::string_view raw;
};

// The fields of a header section, in order. A line that is neither a field ("Name:") nor the continuation of
// one (starting with WSP) is returned as a field with an empty name, so nothing is silently dropped; so is a
// continuation line before any field.
std::vector<RawField> header_fields(std::string_view header);

// The value of the first field named `name` (case-insensitive), unfolded (CRLF before WSP removed), without
// the leading whitespace; nullopt when there is no such field.
std::optional<std::string> header_field(std::string_view header, std::string_view name);

// How many fields named `name` (case-insensitive) the header section holds, by the same reading as header_fields.
// RFC 5322 3.6 allows some fields (From, Sender, To, Subject, ...) at most once: a check that reads only the first
// of several (header_field) is blind to the others.
std::size_t count_header_fields(std::string_view header, std::string_view name);

// The addr-specs of an address list ("Alice" <a@x>, b@y (Bob), Team: c@z;), with comments dropped and
// route prefixes (@r1,@r2:) removed. nullopt on unbalanced quotes, comments or angle brackets, or an empty
// mailbox.
std::optional<std::vector<std::string>> address_list(std::string_view value);

}  // namespace ferry::mime
