// The envelope stored at the head of every spool file, before the message content. Pure: text in, text out.
//
//   Ferry-Spool: 1
//   Queue-Id: <id>
//   Arrival: <unix seconds>
//   Client: <ip>
//   Sender: <address or empty for the null sender>
//   Smtputf8: yes                 (optional: MAIL had SMTPUTF8)
//   Body: 8BITMIME                (optional: MAIL had BODY=8BITMIME)
//   Ret: FULL|HDRS                (optional: RFC 3461 RET)
//   Envid: <xtext>                (optional: RFC 3461 ENVID, as received)
//   Addendum: yes                 (optional: an addendum follows the content, spool/addendum.hpp)
//   Recipient: <address>          (one line per recipient)
//   Notify: SUCCESS,FAILURE       (optional, of the Recipient line before it: RFC 3461 NOTIFY)
//   Orcpt: rfc822;<xtext>         (optional, of the Recipient line before it: RFC 3461 ORCPT, as received)
//   <empty line>
//   <message content, byte-exact>
//
// The optional lines came with the DSN extension; files written before them parse as they did.
#pragma once

#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::spool {

// The DSN parameters of one recipient. The notify bits are RFC 3461's, as in smtp::NotifyFlag: never 1,
// success 2, failure 4, delay 8; 0 when NOTIFY was not given.
struct RecipientDsn {
    unsigned notify = 0;
    std::string orcpt;   // "addr-type;xtext" as received, "" when absent
    bool operator==(const RecipientDsn&) const = default;
};

struct Envelope {
    std::string queue_id;
    std::time_t arrival = 0;
    std::string client;                    // client IP address
    std::string sender;                    // "" is the null reverse-path <>
    std::vector<std::string> recipients;   // local@domain, as accepted at RCPT
    bool smtputf8 = false;
    bool body_8bit = false;
    std::string ret;                       // "", "FULL" or "HDRS"
    std::string envid;                     // xtext as received, "" when absent
    bool addendum = false;                 // the content is followed by an addendum (spool/addendum.hpp)
    // Parallel to `recipients` (always the same size after parse_envelope; missing entries serialize as none).
    std::vector<RecipientDsn> recipient_dsn;
};

// The values are written as they are: none may contain '\n' (the session only accepts xtext and addresses).
std::string serialize_envelope(const Envelope& envelope);

struct ParsedEnvelope {
    Envelope envelope;
    std::size_t content_offset = 0;   // where the message content starts in the file
};

// Parses the head of a spool file; nullopt if it is not a complete, well-formed envelope.
std::optional<ParsedEnvelope> parse_envelope(std::string_view head);

}  // namespace ferry::spool
