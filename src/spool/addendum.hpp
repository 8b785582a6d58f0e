// What is decided about a message only once all of it has arrived, stored after its content: header fields that
// go in front of the message (the Authentication-Results of our checks, our DKIM-Signature), and the mailbox
// folder for local copies (a DMARC quarantine goes to Junk), and whether a content filter quarantined it (a milter's
// SMFIR_QUARANTINE: the queue holds it until an operator releases it, queue/delivery_queue). The spool file is written front to back as the
// content streams in, so these come last, just before the commit trailer, and are found from the end:
//
//   <envelope, with "Addendum: yes">
//   <content>
//   Folder: Junk                     (optional)
//   Hold: <reason>                   (optional: held; 1 to 200 octets of printable ASCII, 0x20 to 0x7E)
//   Headers: <N>                     (optional: N octets of header fields follow, each ending in CRLF)
//   <N octets>
//   Ferry-Addendum: <16 lowercase hex digits: the length of the addendum from "Folder"/"Headers" to here>\n
//   Ferry-End: ...                   (spool/trailer.hpp)
//
// Pure: text in, text out. A file whose envelope has no "Addendum: yes" (older files) has none; an addendum without
// a "Hold" line (older files too) is not held.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ferry::spool {

struct Addendum {
    std::string headers;   // complete header fields (CRLF line ends), put before the content on delivery
    std::string folder;    // "" for the inbox; else a Maildir++ folder name such as "Junk"
    std::string hold;      // "": not held; else why it is held (set it with hold_reason(), which keeps it one line)
    bool operator==(const Addendum&) const = default;
};

// The reason stored when a filter quarantines a message without giving one.
inline constexpr std::string_view kDefaultHoldReason = "quarantined";
// The longest reason stored; a longer one is cut (it is for the operator's eyes, not a protocol element).
inline constexpr std::size_t kMaxHoldReason = 200;

// A reason as the "Hold" line stores it: every octet outside printable ASCII (0x20 to 0x7E: a line break, a tab,
// UTF-8, NUL) becomes '?', at most kMaxHoldReason octets, and "" becomes kDefaultHoldReason, so a filter's text can
// never break the format or read as "not held".
std::string hold_reason(std::string_view reason);

// The footer line that ends every addendum: "Ferry-Addendum: " + 16 hex digits + "\n".
inline constexpr std::size_t kAddendumFooterSize = 33;

// The addendum's bytes, footer included. `folder` must be a plain name ([A-Za-z0-9_-]+); `hold` is written as
// hold_reason() makes it (so it reads back exactly when it came from hold_reason()).
std::string serialize_addendum(const Addendum& addendum);

// The footer (the last kAddendumFooterSize octets before the trailer): the whole addendum's size, footer
// included. nullopt when it is not a footer.
std::optional<std::uint64_t> parse_addendum_footer(std::string_view footer);

// The whole addendum block, footer included; nullopt when it is not well-formed.
std::optional<Addendum> parse_addendum(std::string_view block);

}  // namespace ferry::spool
