// The receiving side of one SMTP session as an explicit state machine (RFC 5321 4.1.4 command order).
// Pure: the caller hands it command lines and events and performs the I/O each returned Step asks for.
// Each command is a check step and a proceed step; every state change goes through enter().
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "smtp/address.hpp"
#include "smtp/content_decoder.hpp"
#include "smtp/reply.hpp"

namespace ferry::smtp {

enum class RecipientVerdict { accept, unknown_user, relay_denied, temporary_failure };

// Asked once per RCPT: does this recipient exist here, or may it be relayed?
class RecipientPolicy {
public:
    virtual ~RecipientPolicy() = default;
    virtual RecipientVerdict check_recipient(const Mailbox& recipient) = 0;
};

struct SessionSettings {
    std::string hostname;
    std::uint64_t max_message_size = 50ull << 20;
    std::size_t max_recipients = 100;
    std::size_t max_errors = 10;
    std::size_t max_text_line = 1000;
    bool tls_offered = false;   // STARTTLS available on this connection (a certificate, not TLS yet)
};

struct Transaction {
    Path sender;
    std::vector<Mailbox> recipients;
    bool smtputf8 = false;
    bool body_8bit = false;
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
    close,        // flush the replies and close the connection
};

struct Step {
    std::vector<Reply> replies;
    Next next = Next::command;
    std::uint64_t chunk_size = 0;
    bool chunk_last = false;
    bool discard_chunk = false;
};

class Session {
public:
    Session(SessionSettings settings, RecipientPolicy& policy);

    Reply greeting() const;

    Step on_command(std::string_view line);   // one command line without its CRLF
    Step on_line_too_long();                  // a command line over the limit (already discarded)
    Step on_bare_lf_command();                // a command line ending in a bare LF
    Step on_data_end(const ContentFlaws& flaws);
    Step on_chunk_end(const ContentFlaws& flaws);   // after a BDAT chunk that was not discarded
    Step on_committed(std::string_view queue_id);
    Step on_commit_failed();
    // TLS is up (after STARTTLS, or at connect on an implicit-TLS port): the session starts over and the
    // client must say EHLO again (RFC 3207 4.2).
    void on_tls_started();
    Reply on_timeout();
    Reply on_shutdown() const;

    SessionState state() const { return state_; }
    const Transaction& transaction() const { return tx_; }
    const std::string& helo_name() const { return helo_; }
    // RFC 5321 4.4 / RFC 6531 3.7.3 "with" protocol name for the Received header.
    std::string_view protocol() const;
    std::size_t error_count() const { return errors_; }
    bool tls_active() const { return tls_; }

private:
    Step handle_helo(std::string_view arg, bool extended);
    Step handle_mail(std::string_view arg);
    Step handle_rcpt(std::string_view arg);
    Step handle_data(std::string_view arg);
    Step handle_bdat(std::string_view arg);
    Step handle_rset(std::string_view arg);
    Step handle_starttls(std::string_view arg);

    Step reply(Reply r, Next next = Next::command);
    Step error(int code, std::string enhanced, std::string text);   // counts toward max_errors
    void enter(SessionState next);
    void reset_transaction();

    SessionSettings settings_;
    RecipientPolicy& policy_;
    SessionState state_ = SessionState::greeted;
    std::string helo_;
    bool esmtp_ = false;
    bool tls_ = false;
    Transaction tx_;
    std::size_t errors_ = 0;
    std::uint64_t chunk_size_ = 0;   // the BDAT chunk being read
    bool chunk_last_ = false;
};

}  // namespace ferry::smtp
