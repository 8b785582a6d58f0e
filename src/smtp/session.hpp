// The receiving side of one SMTP session as an explicit state machine (RFC 5321 4.1.4 command order).
// Pure: the caller hands it command lines and events and performs the I/O each returned Step asks for.
// Each command is a check step and a proceed step; every state change goes through enter().
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "accounts/sasl.hpp"
#include "smtp/address.hpp"
#include "smtp/content_decoder.hpp"
#include "smtp/dsn.hpp"
#include "smtp/reply.hpp"

namespace ferry::smtp {

enum class RecipientVerdict { accept, unknown_user, relay_denied, temporary_failure };

// What the session asks about a transaction. `user` is the authenticated account, "" without AUTH.
class MailPolicy {
public:
    virtual ~MailPolicy() = default;
    // Once per RCPT: does this recipient exist here, or may it be relayed?
    virtual RecipientVerdict check_recipient(const Mailbox& recipient, const std::string& user) = 0;
    // At MAIL of an authenticated session: may `user` send as `sender` (Postfix's reject_sender_login_mismatch)?
    virtual bool sender_allowed(const Path& sender, const std::string& user) = 0;
    // At MAIL: can the spool take `octets` now (the declared SIZE plus SessionSettings::spool_reserve)? The I/O
    // side measures the spool's free space and logs a refusal; when it cannot tell, the answer is yes.
    virtual bool spool_has_room(std::uint64_t octets) { return true; }
};

struct SessionSettings {
    std::string hostname;
    std::uint64_t max_message_size = 50ull << 20;
    std::size_t max_recipients = 100;
    std::size_t max_errors = 10;
    std::size_t max_text_line = 1000;
    bool tls_offered = false;   // STARTTLS available on this connection (a certificate, not TLS yet)
    bool auth_offered = false;  // AUTH on this listener (RFC 4954) ...
    bool auth_plaintext = false;   // ... also before TLS (off: AUTH only inside TLS)
    bool auth_required = false;    // MAIL only after AUTH (submission ports): 530 5.7.0
    // Octets the spool must keep free beyond a message's declared SIZE (Postfix's queue_minfree): MAIL gets
    // 452 4.3.1 below that, before the client sends a message the disk cannot take.
    std::uint64_t spool_reserve = 0;
};

struct Transaction {
    Path sender;
    std::vector<Mailbox> recipients;
    std::vector<RecipientDsn> recipient_dsn;   // NOTIFY and ORCPT of each recipient, parallel to `recipients`
    bool smtputf8 = false;
    bool body_8bit = false;
    Ret ret = Ret::unspecified;   // RFC 3461 4.3
    std::string envid;            // RFC 3461 4.4, xtext as received; "" when absent
    std::optional<std::uint64_t> declared_size;
    std::uint64_t bdat_octets = 0;   // content received so far through BDAT
};

enum class SessionState { greeted, ready, mail, rcpt, data, bdat, committing, closed };
std::string_view to_string(SessionState state);

// What the I/O layer does next, after sending `replies` (for bdat_chunk: after reading the chunk).
enum class Next {
    command,      // read the next command line
    data,         // read dot-stuffed content, then call on_data_end()
    bdat_chunk,   // read chunk_size octets (discard them when discard_chunk), then call on_chunk_end()
    commit,       // make the message durable, then call on_committed() or on_commit_failed()
    starttls,     // send the replies, drop every octet received after the STARTTLS line (RFC 3207 4.2; the
                  // CVE-2011-0411 injection), do the TLS handshake, then call on_tls_started()
    auth_response,   // send the 334 challenge, read one line (not a command), call on_auth_response()
    authenticate,    // check pending_credentials() (off the I/O thread), then call on_auth_result()
    close,        // flush the replies and close the connection
};

// A command the session has just accepted that content filters (milters) are asked about before its reply goes
// out: the I/O side asks them, and on a refusal calls on_filter_refused() instead of sending `replies`.
enum class FilterStage { none, helo, mail, rcpt, data };

struct Step {
    std::vector<Reply> replies;
    Next next = Next::command;
    FilterStage filter_stage = FilterStage::none;
    std::uint64_t chunk_size = 0;
    bool chunk_last = false;
    bool discard_chunk = false;
};

class Session {
public:
    Session(SessionSettings settings, MailPolicy& policy);

    Reply greeting() const;

    Step on_command(std::string_view line);   // one command line without its CRLF
    Step on_line_too_long();                  // a command line over the limit (already discarded)
    Step on_bare_lf_command();                // a command line ending in a bare LF
    Step on_data_end(const ContentFlaws& flaws);
    Step on_chunk_end(const ContentFlaws& flaws);   // after a BDAT chunk that was not discarded
    Step on_committed(std::string_view queue_id);
    // The message could not be stored: 451 4.3.0, or 452 4.3.1 when the spool is out of space (RFC 3463),
    // which tells the client the condition is about storage and will pass.
    Step on_commit_failed(bool out_of_space = false);
    Step on_content_refused(Reply reply);   // the content breaks a policy (e.g. a From: the user does not own)
    // A filter refused the command of the last step's filter_stage: the command is undone (HELO not given, MAIL
    // not started, the recipient not added, DATA not begun) and `reply` answers it.
    Step on_filter_refused(Reply reply);
    // A filter refused the connection: every later command but QUIT, RSET and NOOP gets `reply` (Postfix does
    // the same for a milter's connect-stage reject or tempfail).
    void refuse_session(Reply reply) { refused_ = std::move(reply); }
    // TLS is up (after STARTTLS, or at connect on an implicit-TLS port): the session starts over and the
    // client must say EHLO again (RFC 3207 4.2).
    void on_tls_started();
    Step on_auth_response(std::string_view line);   // a line sent after a 334, without its CRLF
    // The outcome of checking pending_credentials(): the account that logged in, or nullopt.
    Step on_auth_result(const std::optional<std::string>& user);
    const accounts::Credentials& pending_credentials() const { return pending_; }
    Reply on_timeout();
    Reply on_shutdown() const;

    SessionState state() const { return state_; }
    const Transaction& transaction() const { return tx_; }
    const std::string& helo_name() const { return helo_; }
    // RFC 5321 4.4 / RFC 6531 3.7.3 "with" protocol name for the Received header.
    std::string_view protocol() const;
    std::size_t error_count() const { return errors_; }
    bool tls_active() const { return tls_; }
    const std::string& authenticated_user() const { return user_; }   // "" before a successful AUTH

private:
    Step handle_helo(std::string_view arg, bool extended);
    Step handle_mail(std::string_view arg);
    Step handle_rcpt(std::string_view arg);
    Step handle_data(std::string_view arg);
    Step handle_bdat(std::string_view arg);
    Step handle_rset(std::string_view arg);
    Step handle_starttls(std::string_view arg);
    Step handle_auth(std::string_view arg);
    Step sasl_step(const accounts::SaslExchange::Step& step);
    bool auth_available() const { return settings_.auth_offered && (tls_ || settings_.auth_plaintext); }

    Step reply(Reply r, Next next = Next::command);
    Step staged(Step s, FilterStage stage);   // `s` with the filter stage of the command it answers
    Step error(int code, std::string enhanced, std::string text);   // counts toward max_errors
    void enter(SessionState next);
    void reset_transaction();

    SessionSettings settings_;
    MailPolicy& policy_;
    SessionState state_ = SessionState::greeted;
    std::string helo_;
    bool esmtp_ = false;
    bool tls_ = false;
    std::string user_;                           // authenticated account
    std::optional<accounts::SaslExchange> sasl_;   // an AUTH exchange in progress
    accounts::Credentials pending_;              // credentials waiting for on_auth_result()
    Transaction tx_;
    std::size_t errors_ = 0;
    FilterStage filter_stage_ = FilterStage::none;   // of the last step, for on_filter_refused()
    std::optional<Reply> refused_;                   // refuse_session()
    std::uint64_t chunk_size_ = 0;   // the BDAT chunk being read
    bool chunk_last_ = false;
};

}  // namespace ferry::smtp
