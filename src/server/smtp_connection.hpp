// One SMTP session on one TCP connection: a coroutine that reads with hard limits and timeouts, hands each
// command to the pure smtp::Session, streams content into the spool and writes the replies. The only code
// that touches the socket.
#pragma once

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "dns/lookup.hpp"
#include "filter/rspamd_client.hpp"
#include "filter/session_filters.hpp"
#include "intake/message_intake.hpp"
#include "mailauth/inbound_check.hpp"
#include "mailauth/signing.hpp"
#include "policy/local_directory.hpp"
#include "queue/delivery_queue.hpp"
#include "server/auth_throttle.hpp"
#include "server/client_policy.hpp"
#include "server/connection_limits.hpp"
#include "smtp/content_decoder.hpp"
#include "smtp/session.hpp"
#include "spool/spool.hpp"

namespace ferry::server {

namespace asio = boost::asio;

class SmtpConnection;

// What sessions share; owned by the Server.
struct ServerServices {
    asio::io_context& io;
    policy::LocalDirectory& directory;
    spool::Spool& spool;
    spool::Committer& committer;
    queue::DeliveryQueue& queue;
    std::set<SmtpConnection*> live;   // for shutdown; touched only on the io thread
    std::shared_ptr<asio::ssl::context> tls;   // the current certificate; replaced on reload
    asio::thread_pool& auth_pool;              // password checks (yescrypt is slow on purpose)
    AuthThrottle auth_throttle;                // touched only on the io thread
    dns::Lookup* resolver = nullptr;           // message checks of mx listeners (runs on the io thread)
    const mailauth::PublicSuffixList* public_suffixes = nullptr;
    std::shared_ptr<const mailauth::SigningKeys> signing_keys;   // replaced on reload
    std::mt19937 random{std::random_device{}()};                 // DMARC pct= draws; io thread only
    std::shared_ptr<filter::RspamdClient> rspamd;                // [rspamd] url set; replaced on reload
    ClientPolicy* client_policy = nullptr;                       // DNSBL, greylisting, rate limits
};

class SmtpConnection : public std::enable_shared_from_this<SmtpConnection> {
public:
    SmtpConnection(asio::ip::tcp::socket socket, ServerServices& services,
                   std::shared_ptr<const config::Config> config, std::string listener, config::Listener settings,
                   ConnectionLimits& limits);
    ~SmtpConnection();

    asio::awaitable<void> run();
    void shutdown();   // the server is stopping: interrupt the network wait, say 421, close

private:
    enum class ReadResult { ok, closed, timeout, shutdown };
    using Clock = std::chrono::steady_clock;
    using error_code_t = boost::system::error_code;

    asio::awaitable<void> serve();
    asio::awaitable<bool> perform(smtp::Session& session, smtp::Step step);
    bool next_command(smtp::Session& session, smtp::Step& step);
    // Reads what has arrived, waiting at most until `deadline`: a deadline for the whole command line or
    // message, never reset by a read, so a client trickling one octet at a time cannot hold a session.
    asio::awaitable<ReadResult> read_more(Clock::time_point deadline);
    // The DATA/BDAT deadline after `octets` more arrived: N / min_data_rate seconds later, at most data_timeout
    // from now.
    Clock::time_point earned_deadline(Clock::time_point deadline, std::size_t octets) const;
    asio::awaitable<bool> flush();
    asio::awaitable<error_code_t> write_out();
    asio::awaitable<bool> start_tls();
    asio::awaitable<void> close_tls();   // close_notify, so the session stays resumable
    asio::awaitable<ReadResult> read_auth_line(std::string& line);
    asio::awaitable<smtp::Step> authenticate(smtp::Session& session);
    asio::awaitable<ReadResult> receive_dot_stuffed();
    asio::awaitable<ReadResult> receive_chunk(std::uint64_t size, bool keep);
    // The end of data: the intake's checks, the inbound check's DNS work, the commit; the session's next step.
    asio::awaitable<smtp::Step> commit(smtp::Session& session);
    asio::awaitable<intake::Outcome> commit_to_spool();
    // A message starts (DATA, or the first BDAT chunk): the decoder and the intake. The error when the spool
    // cannot take it.
    std::error_code begin_message(smtp::Session& session, smtp::ContentDecoder::Mode mode);
    void store_decoded();   // the decoded content so far, to the intake
    void end_message();
    asio::awaitable<void> say_goodbye(ReadResult why, smtp::Session& session);
    // The early-talker test (postscreen's pregreet): "220-" then `wait`; true when the client stayed quiet. A
    // client that talked gets 554 5.5.1 (sent here); false also when the connection ended meanwhile.
    asio::awaitable<bool> pregreet(std::chrono::milliseconds wait);
    // The connection and envelope policy's word on the command the step answers (MAIL, RCPT): the step is
    // replaced by the refusal when it refuses.
    asio::awaitable<void> ask_policy(smtp::Session& session, smtp::Step& step);
    // Content filters. The milters' word on the command the step answers (the step changed when they refuse);
    // false when a milter wants the session closed (the 421 is in the step).
    asio::awaitable<bool> ask_filters(smtp::Session& session, smtp::Step& step);
    // At the end of data, after our own checks: the milters and rspamd over the stored message.
    asio::awaitable<std::optional<intake::Outcome>> filter_content(smtp::Session& session);
    bool rspamd_scans(const smtp::Session& session) const;
    filter::SessionFacts session_facts(const smtp::Session& session) const;
    filter::MessageFacts message_facts(const smtp::Session& session) const;
    void arm_timer(Clock::time_point deadline);
    void arm_timer(std::chrono::milliseconds timeout) { arm_timer(Clock::now() + timeout); }
    void disarm_timer();

    asio::ip::tcp::socket socket_;
    asio::steady_timer timer_;
    ServerServices& services_;
    std::shared_ptr<const config::Config> config_;
    std::string listener_;
    config::Listener settings_;
    ConnectionLimits& limits_;   // the listener's own: a flood on one port never locks clients out of another
    std::shared_ptr<asio::ssl::context> tls_context_;                      // taken at accept
    std::unique_ptr<asio::ssl::stream<asio::ip::tcp::socket&>> tls_;        // once the handshake started
    std::string tls_version_, tls_cipher_;
    std::string client_ip_, client_;   // "127.0.0.1" and "[127.0.0.1]:4711"

    std::string in_;           // received, not yet consumed octets start at in_pos_
    std::size_t in_pos_ = 0;
    std::string out_;          // replies not yet written (pipelining: flushed before blocking on a read)
    bool discarding_line_ = false;
    bool stopping_ = false;
    bool timed_out_ = false;
    std::uint64_t timer_generation_ = 0;

    SessionPolicy* client_policy_ = nullptr;   // the session's (in serve())
    smtp::MailPolicy* policy_ = nullptr;   // the session's (in serve()); also the intake's From: owner check
    std::optional<smtp::ContentDecoder> decoder_;
    std::string decoded_;      // decoded content waiting to be handed to the intake
    std::unique_ptr<intake::MessageIntake> intake_;   // the message being received
    std::unique_ptr<filter::SessionFilters> filters_;  // null without [[milter]] and [rspamd]
    bool milter_transaction_ = false;   // milters were told of a MAIL whose message has not reached them
    bool discard_message_ = false;      // a milter said discard before the end of data (SMFIR_DISCARD)
    std::optional<smtp::Reply> data_refused_;   // a milter refused DATA at the first BDAT: the reply at LAST
    std::string next_queue_id_;         // given at MAIL (milter macro i), used by the message
    std::size_t commands_ = 0, messages_ = 0;
};

}  // namespace ferry::server
