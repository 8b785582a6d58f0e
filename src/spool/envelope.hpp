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

#include "dsn/request.hpp"

namespace ferry::spool {

// The DSN parameters of one recipient (dsn/request.hpp: the same type the SMTP session fills).
using dsn::RecipientDsn;

struct Envelope {
    std::string queue_id;
    std::time_t arrival = 0;
    std::string client;                    // client IP address
    std::string sender;                    // "" is the null reverse-path <>
    std::vector<std::string> recipients;   // local@domain, as accepted at RCPT
    bool smtputf8 = false;
    bool body_8bit = false;
    dsn::Ret ret = dsn::Ret::unspecified;  // RFC 3461 4.3
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
