// The message `ferry send` submits: an RFC 5322 header section and a MIME body (RFC 2045, 2046) built from what
// the user gave on the command line. Pure: no I/O, no clock, no randomness; the date, the Message-ID and the text
// boundaries are made from come in with the Composition. Expected failures (header injection, bad addresses)
// come back as an error text, never as a message.
#pragma once

#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mime/media_types.hpp"

namespace ferry::mime {

struct Address {
    std::string display_name;   // UTF-8, may be empty
    std::string address;        // local@domain, ASCII (RFC 6531 addresses are refused: see parse_address_argument)
    bool operator==(const Address&) const = default;
};

// A --from/--to/--cc/--bcc value: "alice@example.test", "<alice@example.test>", "Alice <alice@example.test>",
// "\"Smith, Bob\" <bob@example.test>" (a quoted display name, quoted-pairs resolved), "Smith, Bob
// <bob@example.test>" (one argument is one address, so the comma is part of the name), "Zoë <z@example.test>".
// The address is an RFC 5321 mailbox (dot-string or quoted local part, domain or address literal, within the
// RFC 5321 4.5.3.1 sizes), given back in its canonical form. nullopt with `why` for anything else: no '@', CR, LF
// or NUL, unbalanced <> or quotes, more than one address, a non-ASCII address (that needs SMTPUTF8 and UTF-8
// header fields, RFC 6531/6532, which ferry send does not do).
std::optional<Address> parse_address_argument(std::string_view text, std::string& why);

// `--header "Name: value"` → (name, value), the value without the WSP around it. nullopt with `why` for no colon,
// an empty name or one with characters outside RFC 5322 2.2 ftext (printable ASCII but ':'; so no space before
// the colon), CR, LF or NUL anywhere ("header injection"), other control characters. Whether compose() takes
// the field (not one it writes itself, value fit for the field) is compose()'s to say.
std::optional<std::pair<std::string, std::string>> parse_header_argument(std::string_view text, std::string& why);

struct Attachment {
    std::string filename;       // the base name, UTF-8; empty: no name is sent
    std::string content_type;   // "type/subtype" (MediaTypes::type_for); empty: application/octet-stream
    std::string data;           // any octets, sent byte-exact (base64)
};

struct Composition {
    Address from;
    std::vector<Address> to, cc;   // Bcc never appears in a header: the caller sends to those too
    // UTF-8. The Subject field is always written, empty when this is empty (RFC 5322 3.6.5 makes it optional,
    // but spam filters score a missing one, and an empty field is what mail programs send for no subject).
    std::string subject;
    std::string text;                   // the text/plain body, UTF-8
    std::optional<std::string> html;    // with it: multipart/alternative (text, then html) (RFC 2046 5.1.4)
    std::vector<Attachment> attachments;   // with any: multipart/mixed around the body part(s)
    std::vector<std::pair<std::string, std::string>> extra_headers;   // --header "Name: value", in order
    std::time_t date = 0;               // Date: (RFC 5322 3.3), written in UTC; 0 is refused as "not set"
    std::string message_id;             // "<unique@domain>" (RFC 5322 3.6.4), the caller makes it
    std::string boundary_token;         // random text from the caller; letters and digits of it are used
};

struct Composed {
    std::string message;   // the whole message, CRLF line ends, ending in CRLF; empty on error
    std::string error;
    bool ok() const { return error.empty(); }
};

// The fields, in this order: From, To (or "To: undisclosed-recipients:;" when there is neither To nor Cc, RFC 5322
// A.1.3), Cc (when any), Subject, Date, Message-ID, MIME-Version, the extra headers, then the body's
// Content-Type and Content-Transfer-Encoding. Display names and the Subject with non-ASCII text are RFC 2047
// encoded-words (B encoding of UTF-8), every line is within 76 octets where the words allow and never over 998.
//
// Body: text/plain alone when there is neither html nor attachments; text and html in multipart/alternative;
// attachments after the body part in multipart/mixed. Text parts are charset=utf-8, 7bit when they can be, else
// quoted-printable; their line ends become CRLF and a missing final line break is added. Attachments are base64
// whatever their type (text/* too: the bytes arrive exactly as sent, line ends included), with
// Content-Disposition: attachment and the file name as filename= and Content-Type name= (RFC 2231 for
// non-ASCII or long names, with an ASCII fallback). message/* and multipart/* attachments go as
// application/octet-stream: RFC 2046 5.1 and 5.2.1 forbid base64 for those types. Boundaries come from the
// boundary token, one per nesting level, and are changed until none occurs in what they enclose.
//
// Errors: any CR, LF or NUL in a field value, display name, address, file name, content type or extra header
// ("header injection: ..." naming it); addresses that parse_address_argument would refuse; an extra header that
// compose writes itself (From, To, Cc, Bcc, Subject, Date, Message-ID, MIME-Version, Content-Type,
// Content-Transfer-Encoding) or one RFC 5322 3.6 allows once given twice; non-ASCII in an extra header that is
// neither unstructured text nor an address field; a Message-ID not of the form <left@right>; date 0; text that is
// not UTF-8.
Composed compose(const Composition& c);

}  // namespace ferry::mime
