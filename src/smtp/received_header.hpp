// The trace header an SMTP server prepends on acceptance (RFC 5321 4.4). Pure formatting.
#pragma once

#include <string>
#include <string_view>

namespace ferry::smtp {

struct ReceivedInfo {
    std::string_view helo;          // what the client said in HELO/EHLO
    std::string_view client_ip;     // "192.0.2.1" or "2001:db8::1"
    std::string_view hostname;      // ours
    std::string_view protocol;      // SMTP, ESMTP, UTF8ESMTP (RFC 3848, RFC 6531)
    std::string_view queue_id;
    std::string_view recipient;     // only named when the message has exactly one (privacy of Bcc)
    std::string_view date;          // RFC 5322 date-time
};

// "Received: from helo ([ip])\r\n\tby host (Ferry) with ESMTP id ID\r\n\tfor <rcpt>; date\r\n"
std::string received_header(const ReceivedInfo& info);

}  // namespace ferry::smtp
