// The client side of one SMTP connection to a remote server (RFC 5321), on Asio coroutines: greeting, EHLO
// (HELO when EHLO is refused), opportunistic STARTTLS (RFC 3207), AUTH to a relay host (RFC 4954), and then
// transactions with per-recipient results, pipelined when the server offers PIPELINING (RFC 2920).
// Replies are parsed by smtp/server_reply (pure); this file only does the I/O and the decisions.
#pragma once

#include <sys/types.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "smtp/server_reply.hpp"
#include "spool/envelope.hpp"

namespace ferry::delivery {

namespace asio = boost::asio;

struct ClientSettings {
    std::string helo_name;
    std::chrono::milliseconds connect_timeout{30000};
    std::chrono::milliseconds command_timeout{300000};
    std::chrono::milliseconds data_timeout{600000};
    std::shared_ptr<asio::ssl::context> tls;   // a client context (required)
    bool require_tls = false;                  // no TLS, no mail (a relay host we give a password to)
    std::string auth_user, auth_password;      // AUTH after TLS when auth_user is set
    // Submission (`ferry send`): TLS from the first octet (RFC 8314 port 465) instead of STARTTLS, and a server
    // certificate that must verify for the host name (else the session ends before any credential is sent).
    bool implicit_tls = false;
    bool verify_certificate = false;
    // Local addresses to bind to before connecting ([outbound] source_address, source_address6), per family of
    // the remote address; nullopt: that family goes unbound (the kernel picks the source).
    std::optional<asio::ip::address> source_v4, source_v6;
};

// One stored message as the client sends it. The envelope is the one the spool holds, so what MAIL carries
// (the reverse-path; SMTPUTF8 and BODY=8BITMIME, which the next hop must offer too, RFC 6531 3.4 and RFC 6152;
// RET and ENVID, RFC 3461) is read from it here: a new MAIL parameter touches the parser, the envelope and send().
// Its recipients are not used: each transaction gets its own list (the legs of one destination).
struct OutboundMessage {
    std::shared_ptr<const spool::Envelope> envelope;   // shared by the jobs of one message (one per destination)
    int fd = -1;                      // the spool file; the content is [content_offset, + content_length)
    off_t content_offset = 0;
    std::size_t content_length = 0;
    std::string prefix;               // header fields sent before the content (spool addendum: A-R, DKIM-Signature)
};

struct OutboundRecipient {
    std::string address;
    std::string notify;   // RFC 3461 NOTIFY value to pass on, or "" (not given)
    std::string orcpt;    // RFC 3461 ORCPT value ("rfc822;xtext") to pass on, or ""
};

// What became of one recipient (or of a whole attempt, for a connection that failed).
struct DeliveryResult {
    enum class Kind { sent, temporary, permanent };
    Kind kind = Kind::temporary;
    std::string status;           // RFC 3463 code: "2.0.0", "5.1.1", "4.4.1" ...
    std::string diagnostic;       // the server's reply ("550 5.1.1 ...") or, when from_server is false, ours
    bool from_server = false;     // diagnostic is a remote reply (DSN Diagnostic-Code: smtp; ...)
    std::string remote_mta;       // the host that answered, for the DSN's Remote-MTA
    std::string via;              // for `sent`: "host[address]:port tls=...", for the log
    bool next_hop_dsn = false;    // for `sent`: the server offered DSN, so it reports success itself
};

DeliveryResult temporary_result(std::string status, std::string why);
DeliveryResult permanent_result(std::string status, std::string why);

class SmtpClient {
public:
    SmtpClient(asio::any_io_executor executor, const ClientSettings& settings);
    ~SmtpClient();
    SmtpClient(const SmtpClient&) = delete;
    SmtpClient& operator=(const SmtpClient&) = delete;

    // Connects to `address`:`port` of MX `host` and gets the session ready for MAIL: greeting, EHLO or HELO,
    // STARTTLS when offered and `use_tls`, AUTH when configured. nullopt when ready; else why not (a greeting
    // or EHLO refused, a timeout, a failed TLS handshake: see tls_failed()).
    asio::awaitable<std::optional<DeliveryResult>> open(std::string host, std::string address, std::uint16_t port,
                                                        bool use_tls);

    // One transaction. One result per recipient, in order. A connection lost midway gives temporary results
    // for every recipient not yet final and leaves usable() false.
    asio::awaitable<std::vector<DeliveryResult>> send(const OutboundMessage& message,
                                                      const std::vector<OutboundRecipient>& recipients);

    asio::awaitable<void> quit();   // QUIT, then close; errors ignored (the mail is already decided)
    void abort();                   // close now (shutting down): what is waiting fails as a lost connection

    bool usable() const { return open_ && !broken_; }
    bool tls_failed() const { return tls_failed_; }
    bool tls_active() const { return tls_; }
    std::string peer() const;            // "host[address]:port", for the log
    std::string tls_summary() const;     // "TLSv1.3 cipher=... verified=no" or "none"
    const smtp::ServerCapabilities& capabilities() const { return caps_; }

private:
    // The connection failed (lost, timed out, a protocol error, the spool file unreadable): by then it is closed
    // and usable() is false. An expected failure, so a value: the read and write helpers return it, every caller
    // checks it, and open() and send() turn it into their results.
    struct Lost {
        std::string why;
    };
    // A reply, or the loss that came instead.
    class ReplyOrLost {
    public:
        ReplyOrLost(smtp::Reply reply) : reply_(std::move(reply)) {}
        ReplyOrLost(Lost lost) : lost_(std::move(lost)) {}
        bool lost() const { return !reply_.has_value(); }
        const smtp::Reply& operator*() const { return *reply_; }
        const smtp::Reply* operator->() const { return &*reply_; }
        const Lost& loss() const { return lost_; }

    private:
        std::optional<smtp::Reply> reply_;
        Lost lost_;
    };

    asio::awaitable<ReplyOrLost> read_reply(std::chrono::milliseconds timeout);
    asio::awaitable<std::optional<Lost>> write(std::string data, std::chrono::milliseconds timeout);   // nullopt: written
    asio::awaitable<ReplyOrLost> command(std::string line);
    asio::awaitable<std::optional<DeliveryResult>> greet_and_hello(bool use_tls);
    asio::awaitable<std::optional<DeliveryResult>> handshake();
    asio::awaitable<std::optional<DeliveryResult>> authenticate();
    asio::awaitable<std::optional<Lost>> send_content(const OutboundMessage& message);
    void arm(std::chrono::milliseconds timeout);
    void disarm();
    DeliveryResult from_reply(const smtp::Reply& reply) const;
    Lost lose(std::string why);   // closes the connection; returns why, for the caller to pass on

    asio::any_io_executor executor_;
    const ClientSettings& settings_;
    asio::ssl::stream<asio::ip::tcp::socket> stream_;
    asio::steady_timer deadline_;
    std::string input_;             // received, not yet parsed
    std::string host_, address_;
    std::uint16_t port_ = 0;
    smtp::ServerCapabilities caps_;
    bool open_ = false;
    bool broken_ = false;
    bool tls_ = false;
    bool tls_failed_ = false;
    bool timed_out_ = false;
    bool verified_ = false;
    bool dirty_ = false;            // a transaction was left half-done: RSET before the next MAIL
};

}  // namespace ferry::delivery
