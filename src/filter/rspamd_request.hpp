// What Ferry tells rspamd about a message besides its bytes: the request header fields of POST /checkv2
// (https://rspamd.com/doc/architecture/protocol.html, "HTTP headers"). Pure: facts in, (name, value) pairs out;
// the rspamd client puts them on the HTTP request.
#pragma once

#include <string>
#include <vector>

#include "filter/filter_types.hpp"

namespace ferry::filter {

struct RspamdRequestHeader {
    std::string name;
    std::string value;
};

// A value longer than this is cut (a HELO argument or an address is far shorter; this only bounds the request).
inline constexpr std::size_t kMaxRspamdHeaderValueOut = 1024;

// IP (always); Helo and Hostname when known; From ("<>" for the null reverse-path, which rspamd reads as an
// empty sender: a bounce); one Rcpt per recipient; Queue-Id; User when the client logged in; TLS-Version and
// TLS-Cipher when the session runs TLS; MTA-Name (our host name). Values are cleaned of CR, LF and other control
// characters, so client data can never add a header field of its own to the request.
std::vector<RspamdRequestHeader> rspamd_request_headers(const ConnectionFacts& connection, const SessionFacts& session,
                                                        const MessageFacts& message);

}  // namespace ferry::filter
