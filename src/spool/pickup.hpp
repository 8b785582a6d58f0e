// The local pickup directory, data_dir/pickup/: how `ferry sendmail` hands a message to the server, running or
// not. The command writes one file per message (to a name starting with '.', then renamed into place, so the
// server never reads half a file); the server takes each file into the spool, where it is like any received
// message, and removes it. Anyone on the host may write there (mode 1733: others cannot list or remove each
// other's files); the file's owner, not its contents, says who sent it.
//
//   Ferry-Pickup: 1
//   Sender: alice@example.test          (empty for the null sender <>)
//   Recipient: bob@example.test         (one line per recipient, at least one)
//   <empty line>
//   <the message, CRLF line ends>
//
// Pure: text in, text out.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::spool {

// The most recipients one pickup file may name, more than any message may have (RFC 5321 4.5.3.1.8 asks for 100;
// [limits] recipients may be larger): a bound on what a hostile local file makes the server hold. parse_pickup
// refuses a file with more, and ferry sendmail refuses such a message itself.
inline constexpr std::size_t kMaxPickupRecipients = 10000;

struct PickupEnvelope {
    std::string sender;
    std::vector<std::string> recipients;
    bool operator==(const PickupEnvelope&) const = default;
};

// The head of a pickup file. Values must not contain a line break (the caller checks addresses first).
std::string serialize_pickup(const PickupEnvelope& envelope);

struct ParsedPickup {
    PickupEnvelope envelope;
    std::size_t message_offset = 0;   // where the message starts
};

// nullopt when `file` does not start with a complete, well-formed head.
std::optional<ParsedPickup> parse_pickup(std::string_view file);

// A name a pickup file may have once in place ("<digits>.<pid>.<hex>"): the server takes no other, so a
// half-written ".tmp" file and anything else dropped into the folder are left alone.
bool is_pickup_name(std::string_view name);

}  // namespace ferry::spool
