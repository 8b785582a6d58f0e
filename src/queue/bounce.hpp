// Delivery status notifications (RFC 3464) as new spool messages: from the null sender to the original sender,
// built by mime/dsn_report around the original content, which is copied from its spool file, never held whole.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "mime/dsn_report.hpp"
#include "spool/envelope.hpp"
#include "spool/spool.hpp"

namespace ferry::queue {

// The message a DSN reports on.
struct ReportedMessage {
    const spool::Envelope& envelope;
    int fd;                        // its spool file
    off_t content_offset;
    std::size_t content_length;
    std::string_view prefix;       // header fields Ferry put before the content (the spool addendum's)
};

// A failure DSN returns the whole message up to this size unless RET=HDRS; past it only the header section
// (RFC 3461 4.3 lets the MTA choose; Postfix's bounce_size_limit is the same idea). RET=FULL returns it whole.
inline constexpr std::size_t kMaxReturnedContent = 1 << 20;
// A header section longer than this is cut at a line end (it is there for the sender to recognise the message).
inline constexpr std::size_t kMaxReturnedHeaders = 256 * 1024;

// Writes the DSN for `recipients` into the spool and makes it durable. Returns its queue id, or nullopt (logged)
// when it could not be written. Never call it for a message from the null sender (RFC 3461 6.2, RFC 5321 6.1).
std::optional<std::string> write_dsn(spool::Spool& spool, const std::string& hostname, const ReportedMessage& message,
                                     std::vector<mime::DsnRecipient> recipients);

}  // namespace ferry::queue
