// rspamd over its HTTP protocol: POST /checkv2 with the message's original bytes and its facts as request
// headers (IP, Helo, Hostname, From, Rcpt, Queue-Id, User, TLS-Version/TLS-Cipher, MTA-Name), the reply read by
// filter/rspamd_reply (pure, fuzzed). One client per server, on the io thread: a pool of keep-alive connections
// (Boost.Beast) shared by every session, and a deadline per request.
//
// rspamd down, slow, or answering garbage: the verdict follows [rspamd] on_error: tempfail (451 4.7.1) or
// accept (delivered, with the unscanned header saying why). Always a log line with the reason.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <memory>
#include <string_view>

#include "config/config.hpp"
#include "filter/filter_types.hpp"

namespace ferry::filter {

class RspamdClient {
public:
    RspamdClient(boost::asio::any_io_executor executor, const config::RspamdSettings& settings);
    ~RspamdClient();
    RspamdClient(const RspamdClient&) = delete;
    RspamdClient& operator=(const RspamdClient&) = delete;

    // `message_text`: the whole message as stored (CRLF line ends), sent as it is.
    boost::asio::awaitable<ContentVerdict> check(const ConnectionFacts& connection, const SessionFacts& session,
                                                 const MessageFacts& message, std::string_view message_text);

    // Closes the idle connections (server stop).
    void close();

private:
    struct Pool;
    std::unique_ptr<Pool> pool_;
};

}  // namespace ferry::filter
