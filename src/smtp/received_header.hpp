// The trace header an SMTP server prepends on acceptance (RFC 5321 4.4). Pure formatting.
#pragma once

#include <string>
#include <string_view>

namespace ferry::smtp {

struct ReceivedInfo {
    std::string_view helo;          // what the client said in HELO/EHLO
    std::string_view client_ip;     // "192.0.2.1" or "2001:db8::1"
    std::string_view hostname;      // ours
    std::string_view protocol;      // SMTP, ESMTP, ESMTPS, UTF8SMTP... (RFC 3848, RFC 6531)
    std::string_view queue_id;
    std::string_view recipient;     // only named when the message has exactly one (privacy of Bcc)
    std::string_view date;          // RFC 5322 date-time
    std::string_view tls_version;   // "TLSv1.3", empty without TLS
    std::string_view tls_cipher;    // "TLS_AES_256_GCM_SHA384"
};

// "Received: from helo ([ip])\r\n\t(using TLSv1.3 with cipher C)\r\n\tby host (Ferry) with ESMTPS id ID\r\n\tfor <rcpt>;
// date\r\n" (the TLS comment as Postfix writes it, only over TLS)
std::string received_header(const ReceivedInfo& info);

}  // namespace ferry::smtp
