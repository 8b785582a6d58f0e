// What `ferry sendmail` makes of its input before the server sees it, as Postfix's sendmail and cleanup do for
// local mail: the message read as classic sendmail reads it (a lone "." ends it unless -i), line ends made CRLF
// (RFC 5322 2.1), recipients from the command line and, with -t, from To/Cc/Bcc, Bcc fields removed (RFC 5322
// 3.6.3: the other recipients must not see them), and From, Date and Message-ID added when missing (RFC 5322
// 3.6 requires From and Date). Pure: bytes in, envelope and message out.
#pragma once

#include <ctime>
#include <string>
#include <string_view>

#include "cli/sendmail_args.hpp"
#include "spool/pickup.hpp"

namespace ferry::cli {

struct LocalMessage {
    spool::PickupEnvelope envelope;
    std::string message;
    std::string error;   // why nothing can be sent (no recipient, a bad address); "" when ready
};

// `input` as read from stdin; `user_address` is the caller's login@hostname, the sender without -f.
LocalMessage prepare_sendmail_message(std::string_view input, const SendmailArgs& args,
                                      const std::string& user_address, std::time_t now,
                                      const std::string& message_id);

}  // namespace ferry::cli
