#include "filter/rspamd_request.hpp"

#include <algorithm>
#include <string_view>

namespace ferry::filter {
namespace {

// An HTTP field value (RFC 9110 5.5): visible characters, spaces and tabs; obs-text (octets >= 0x80) is allowed
// and kept for UTF-8 addresses (RFC 6531). Control characters become spaces.
std::string field_value(std::string_view in) {
    std::string out;
    const std::size_t n = std::min(in.size(), kMaxRspamdHeaderValueOut);
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        const unsigned char c = in[i];
        out += (c < 0x20 && c != '\t') || c == 0x7f ? ' ' : static_cast<char>(c);
    }
    return out;
}

void add(std::vector<RspamdRequestHeader>& out, std::string name, std::string_view value) {
    out.push_back(RspamdRequestHeader{std::move(name), field_value(value)});
}

}  // namespace

std::vector<RspamdRequestHeader> rspamd_request_headers(const ConnectionFacts& connection, const SessionFacts& session,
                                                        const MessageFacts& message) {
    std::vector<RspamdRequestHeader> h;
    h.reserve(8 + message.recipients.size());
    add(h, "IP", connection.client_ip);
    if (!session.helo.empty()) add(h, "Helo", session.helo);
    if (!connection.client_name.empty()) add(h, "Hostname", connection.client_name);
    add(h, "From", message.sender.empty() ? std::string_view("<>") : std::string_view(message.sender));
    for (const auto& r : message.recipients) add(h, "Rcpt", r);
    if (!message.queue_id.empty()) add(h, "Queue-Id", message.queue_id);
    if (!session.auth_user.empty()) add(h, "User", session.auth_user);
    if (!session.tls_version.empty()) add(h, "TLS-Version", session.tls_version);
    if (!session.tls_cipher.empty()) add(h, "TLS-Cipher", session.tls_cipher);
    if (!connection.hostname.empty()) add(h, "MTA-Name", connection.hostname);
    return h;
}

}  // namespace ferry::filter
