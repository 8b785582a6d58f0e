// What is decided about a message only once all of it has arrived, stored after its content: header fields that
// go in front of the message (the Authentication-Results of our checks, our DKIM-Signature), and the mailbox
// folder for local copies (a DMARC quarantine goes to Junk). The spool file is written front to back as the
// content streams in, so these come last, just before the commit trailer, and are found from the end:
//
//   <envelope, with "Addendum: yes">
//   <content>
//   Folder: Junk                     (optional)
//   Headers: <N>                     (optional: N octets of header fields follow, each ending in CRLF)
//   <N octets>
//   Ferry-Addendum: <16 lowercase hex digits: the length of the addendum from "Folder"/"Headers" to here>\n
//   Ferry-End: ...                   (spool/trailer.hpp)
//
// Pure: text in, text out. A file whose envelope has no "Addendum: yes" (older files) has none.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ferry::spool {

struct Addendum {
    std::string headers;   // complete header fields (CRLF line ends), put before the content on delivery
    std::string folder;    // "" for the inbox; else a Maildir++ folder name such as "Junk"
    bool operator==(const Addendum&) const = default;
};

// The footer line that ends every addendum: "Ferry-Addendum: " + 16 hex digits + "\n".
inline constexpr std::size_t kAddendumFooterSize = 33;

// The addendum's bytes, footer included. `folder` must be a plain name ([A-Za-z0-9_-]+).
std::string serialize_addendum(const Addendum& addendum);

// The footer (the last kAddendumFooterSize octets before the trailer): the whole addendum's size, footer
// included. nullopt when it is not a footer.
std::optional<std::uint64_t> parse_addendum_footer(std::string_view footer);

// The whole addendum block, footer included; nullopt when it is not well-formed.
std::optional<Addendum> parse_addendum(std::string_view block);

}  // namespace ferry::spool
