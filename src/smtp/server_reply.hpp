// The client side of RFC 5321 4.2: replies as a remote server sends them, and what its EHLO reply offers.
// Pure: the outbound SMTP client feeds received bytes in and acts on the values that come out.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "smtp/reply.hpp"

namespace ferry::smtp {

// A reply line longer than this, or a reply of more lines, is a protocol error: RFC 5321 4.5.3.1.5 allows 512
// octets, and we take far more from real servers before giving up on one.
inline constexpr std::size_t kMaxServerReplyLine = 4096;
inline constexpr std::size_t kMaxServerReplyLines = 256;

struct ServerReplyParse {
    enum class Status { incomplete, reply, protocol_error };
    Status status = Status::incomplete;
    Reply reply;             // for `reply`: code, enhanced code (when every line carries the same valid one), text
    std::size_t consumed = 0;   // octets of the input the reply took (for `reply`)
    std::string error;       // for `protocol_error`: what was wrong, for the log and the DSN
};

// The first reply at the start of `input`: lines "ddd-text" then one "ddd text" (or "ddd"), all with the same
// code, 200-599 (and 1xx is refused, SMTP has none). CRLF ends a line; a bare LF is accepted too (be liberal in
// what is received). The enhanced code (RFC 2034) is taken from the text when it starts with one whose class
// matches the code, and removed from the lines.
ServerReplyParse parse_server_reply(std::string_view input);

// What a server's EHLO reply offers (RFC 5321 4.1.1.1; the keywords of its extension lines, case-insensitive).
struct ServerCapabilities {
    bool pipelining = false;             // RFC 2920
    bool eight_bit_mime = false;         // RFC 6152
    bool smtputf8 = false;               // RFC 6531
    bool starttls = false;               // RFC 3207
    bool chunking = false;               // RFC 3030
    bool dsn = false;                    // RFC 3461
    bool enhanced_status_codes = false;  // RFC 2034
    std::optional<std::uint64_t> size;   // RFC 1870: the declared limit; nullopt when none (or "SIZE 0")
    std::vector<std::string> auth;       // RFC 4954 mechanisms, upper-cased
};

// `ehlo` is the EHLO reply; its first line is the server's greeting text, the others are extensions.
ServerCapabilities parse_capabilities(const Reply& ehlo);

}  // namespace ferry::smtp
