// The content filters of one SMTP session, as a chain: the [[milter]]s in their order (one MilterClient each,
// connected for the whole session), then rspamd for the message at the end of data. Each stage asks every milter
// still in the session; the first that refuses decides the stage's reply (Postfix's order). At the end of data
// the message goes through the milters one after another, each seeing the changes of those before it (applied
// here, in memory: filter/message_edit), then through rspamd, and the result says what to store: the message
// as it now is, the envelope as the filters left it, and where it goes (refused, discarded, held, Junk).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "filter/filter_types.hpp"
#include "filter/milter_client.hpp"
#include "filter/rspamd_client.hpp"

namespace ferry::filter {

// What the filters made of a message at its end.
struct FilteredMessage {
    Decision decision;              // proceed, reject, tempfail, discard, shutdown
    std::string filter;             // who decided a refusal, discard or hold ("milter opendkim", "rspamd")
    bool hold = false;              // quarantine: kept in the queue until released
    std::string hold_reason;
    bool junk = false;              // local copies into the Junk folder
    // The header fields filters added in front of the message, when that is all they did to it (stored in the
    // addendum: the spool file needs no rewrite).
    std::string prepended;
    // Set when the filters changed the message otherwise: the whole new message.
    std::optional<std::string> message;
    std::optional<std::string> sender;                    // the new envelope sender
    std::optional<std::vector<std::string>> recipients;   // the new recipient list
    std::vector<std::string> log;   // one line per filter that said something
};

class SessionFilters {
public:
    // `rspamd` null: no rspamd for this session (off, or a submission session without scan_submission).
    SessionFilters(boost::asio::any_io_executor executor, const std::vector<config::MilterSettings>& milters,
                   std::shared_ptr<RspamdClient> rspamd, ConnectionFacts connection);
    ~SessionFilters();

    bool has_milters() const { return !milters_.empty(); }
    bool empty() const { return milters_.empty() && !rspamd_; }

    boost::asio::awaitable<Decision> connect();
    boost::asio::awaitable<Decision> helo(const SessionFacts& session);
    boost::asio::awaitable<Decision> mail(const SessionFacts& session, const MessageFacts& message);
    boost::asio::awaitable<Decision> rcpt(const SessionFacts& session, const MessageFacts& message);
    boost::asio::awaitable<Decision> data(const SessionFacts& session, const MessageFacts& message);
    // `message_text` as stored (our Received: first, CRLF line ends). `scan`: rspamd checks it too (mx mail, or
    // submission mail with scan_submission).
    boost::asio::awaitable<FilteredMessage> content(const SessionFacts& session, MessageFacts message,
                                                    std::string message_text, bool scan);
    bool has_rspamd() const { return rspamd_ != nullptr; }
    // The transaction ended without its content stage (RSET, a refusal, a lost message).
    boost::asio::awaitable<void> abort();
    boost::asio::awaitable<void> quit();

    const ConnectionFacts& connection() const { return connection_; }

private:
    template <typename Ask>
    boost::asio::awaitable<Decision> each_milter(Ask ask, const char* stage);

    ConnectionFacts connection_;
    std::vector<std::unique_ptr<MilterClient>> milters_;
    std::shared_ptr<RspamdClient> rspamd_;
};

// The reply a refusing decision gets: the filter's own, else 550 5.7.1 / 451 4.7.1 / 421 4.7.0 (Postfix's).
smtp::Reply reply_for(const Decision& decision, std::string_view hostname);

// The message and envelope after `verdict`'s changes. Pure.
struct AppliedVerdict {
    std::optional<std::string> message;   // nullopt: the verdict has no header or body change
    std::optional<std::string> sender;
    std::vector<std::string> recipients;
    std::size_t skipped = 0;   // changes with a bad field name or address (ignored)
};
AppliedVerdict apply_verdict(const ContentVerdict& verdict, std::string_view message, std::string_view sender,
                             std::vector<std::string> recipients);

// When `edited` is `original` with whole header fields put in front of it: those fields. Else nullopt.
std::optional<std::string> prepended_fields(std::string_view edited, std::string_view original);

}  // namespace ferry::filter
