// One milter (Sendmail/Postfix milter protocol version 6) as seen from one SMTP session: the MTA side of the
// protocol, on the session's event loop. One connection per session per milter, opened at connect and
// negotiated (SMFIC_OPTNEG); then one call per SMTP stage, each with the macros Postfix sends at that stage, and
// the whole message at the end of data (headers, end of headers, body chunks, end of message), whose
// modifications come back as a ContentVerdict. The wire format is filter/milter_codec (pure, fuzzed).
//
// A milter that cannot be reached, times out, closes or sends a malformed frame answers with its
// default_action: tempfail (Decision::tempfail, and every later call says the same for this session) or accept
// (Decision::proceed, and the milter is skipped for the rest of the session). Either way a log line says why.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <memory>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "filter/filter_types.hpp"

namespace ferry::filter {

class MilterClient {
public:
    MilterClient(boost::asio::any_io_executor executor, const config::MilterSettings& settings);
    ~MilterClient();
    MilterClient(const MilterClient&) = delete;
    MilterClient& operator=(const MilterClient&) = delete;

    // Connects, negotiates and sends SMFIC_CONNECT.
    boost::asio::awaitable<Decision> connect(const ConnectionFacts& connection);
    boost::asio::awaitable<Decision> helo(const SessionFacts& session);
    boost::asio::awaitable<Decision> mail(const SessionFacts& session, const MessageFacts& message);
    // `message.recipients` ends with the recipient asked about.
    boost::asio::awaitable<Decision> rcpt(const SessionFacts& session, const MessageFacts& message,
                                          const std::vector<std::string>& rcpt_args);
    boost::asio::awaitable<Decision> data(const SessionFacts& session, const MessageFacts& message);
    // The whole message as stored (header section, empty line, body; CRLF line ends).
    boost::asio::awaitable<ContentVerdict> content(const SessionFacts& session, const MessageFacts& message,
                                                   std::string_view message_text);
    // The transaction ended without the end of data (RSET, a refused DATA, the next MAIL): SMFIC_ABORT.
    boost::asio::awaitable<void> abort();
    // The session ends: SMFIC_QUIT and close.
    boost::asio::awaitable<void> quit();

    // False once the milter is out of this session (accepted it, or failed with default_action accept).
    bool active() const;
    const std::string& name() const;

private:
    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace ferry::filter
