// The envelope stored at the head of every spool file, before the message content. Pure: text in, text out.
//
//   Ferry-Spool: 1
//   Queue-Id: <id>
//   Arrival: <unix seconds>
//   Client: <ip>
//   Sender: <address or empty for the null sender>
//   Recipient: <address>          (one line per recipient)
//   <empty line>
//   <message content, byte-exact>
#pragma once

#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::spool {

struct Envelope {
    std::string queue_id;
    std::time_t arrival = 0;
    std::string client;                    // client IP address
    std::string sender;                    // "" is the null reverse-path <>
    std::vector<std::string> recipients;   // local@domain, as accepted at RCPT
};

std::string serialize_envelope(const Envelope& envelope);

struct ParsedEnvelope {
    Envelope envelope;
    std::size_t content_offset = 0;   // where the message content starts in the file
};

// Parses the head of a spool file; nullopt if it is not a complete, well-formed envelope.
std::optional<ParsedEnvelope> parse_envelope(std::string_view head);

}  // namespace ferry::spool
