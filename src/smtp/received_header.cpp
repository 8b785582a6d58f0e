#include "smtp/received_header.hpp"

#include <fmt/format.h>

namespace ferry::smtp {

std::string received_header(const ReceivedInfo& info) {
    // TCP-info address literal: IPv6 addresses carry the "IPv6:" tag (RFC 5321 4.1.3).
    const bool v6 = info.client_ip.find(':') != std::string_view::npos;
    std::string out = fmt::format("Received: from {} ([{}{}])", info.helo, v6 ? "IPv6:" : "", info.client_ip);
    if (!info.tls_version.empty())
        out += fmt::format("\r\n\t(using {} with cipher {})", info.tls_version, info.tls_cipher);
    out += fmt::format("\r\n\tby {} (Ferry) with {} id {}", info.hostname, info.protocol, info.queue_id);
    if (!info.recipient.empty()) out += fmt::format("\r\n\tfor <{}>", info.recipient);
    out += fmt::format("; {}\r\n", info.date);
    return out;
}

}  // namespace ferry::smtp
