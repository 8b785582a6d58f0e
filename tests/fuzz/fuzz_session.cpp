// smtp::Session driven the way server/SmtpConnection drives it. The input is the client's byte stream: command
// lines end at LF (CRLF is a command, a bare LF or an over-long line gets the session's error replies). Where
// the I/O layer would read message content, one octet of the input stands for its outcome:
//   bit 0 bare LF, bit 1 bare CR, bit 2 line too long, bit 3 too big (the ContentFlaws),
//   bit 4 the commit fails, bit 5 (at DATA) the spool file cannot be created.
// A BDAT chunk's octets are skipped, then that octet. The recipient policy answers from a hash of the address.
//
// Checked on every step: reply codes 200-599; an RFC 3463 enhanced code of the reply's class on everything but
// the greeting, the HELO/EHLO 250 and 354; reply lines without CR/LF and within 512 octets (RFC 5321 4.5.3.1.5);
// the limits; and what the server builds from the transaction (Received header, spool envelope) stays
// well-formed.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_check.hpp"
#include "intake/message_envelope.hpp"
#include "smtp/command.hpp"
#include "smtp/received_header.hpp"
#include "smtp/session.hpp"
#include "spool/envelope.hpp"

using namespace ferry;

namespace {

constexpr std::string_view kHost = "mx.example.test";
constexpr std::size_t kCommandLineLimit = 512;   // config default, RFC 5321 4.5.3.1.4 (CRLF included)

class HashPolicy : public smtp::MailPolicy {
public:
    bool sender_allowed(const smtp::Path&, const std::string&) override { return true; }
    smtp::RecipientVerdict check_recipient(const smtp::Mailbox& recipient, const std::string&) override {
        std::uint32_t h = 2166136261u;   // FNV-1a
        for (unsigned char c : recipient.key()) h = (h ^ c) * 16777619u;
        switch (h % 8) {
        case 5: return smtp::RecipientVerdict::unknown_user;
        case 6: return smtp::RecipientVerdict::relay_denied;
        case 7: return smtp::RecipientVerdict::temporary_failure;
        default: return smtp::RecipientVerdict::accept;
        }
    }
};

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// "class.subject.detail", RFC 3463 2: class 2, 4 or 5; subject and detail 1-3 digits.
bool is_enhanced_code(std::string_view e) {
    if (e.size() < 5 || (e[0] != '2' && e[0] != '4' && e[0] != '5') || e[1] != '.') return false;
    std::size_t i = 2;
    for (int part = 0; part < 2; ++part) {
        const std::size_t start = i;
        while (i < e.size() && is_digit(e[i])) ++i;
        if (i == start || i - start > 3) return false;
        if (part == 0) {
            if (i >= e.size() || e[i] != '.') return false;
            ++i;
        }
    }
    return i == e.size();
}

void check_reply(const smtp::Reply& r, bool plain_allowed) {
    FUZZ_CHECK(r.code >= 200 && r.code <= 599);
    if (r.enhanced.empty()) {
        FUZZ_CHECK(plain_allowed);
    } else {
        FUZZ_CHECK(is_enhanced_code(r.enhanced));
        FUZZ_CHECK(r.enhanced[0] == static_cast<char>('0' + r.code / 100));
    }
    FUZZ_CHECK(!r.lines.empty());
    for (const std::string& line : r.lines) FUZZ_CHECK(line.find_first_of("\r\n") == std::string::npos);
    const std::string wire = r.render();
    std::size_t pos = 0;
    while (pos < wire.size()) {
        const std::size_t end = wire.find("\r\n", pos);
        FUZZ_CHECK(end != std::string::npos);
        FUZZ_CHECK(end + 2 - pos <= 512);
        pos = end + 2;
    }
}

// No CR or LF except as CRLF, no NUL: what Ferry writes into a message must pass its own content rules.
bool is_clean_text(std::string_view s) {
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\0') return false;
        if (s[i] == '\r' && (i + 1 == s.size() || s[i + 1] != '\n')) return false;
        if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) return false;
    }
    return true;
}

// What SmtpConnection::begin_message builds when content starts: the envelope and the Received header.
void check_message_start(const smtp::Session& session, const smtp::SessionSettings& settings) {
    const smtp::Transaction& tx = session.transaction();
    FUZZ_CHECK(!tx.recipients.empty());
    FUZZ_CHECK(tx.recipients.size() <= settings.max_recipients);
    FUZZ_CHECK(!tx.sender.mailbox || !tx.sender.mailbox->domain.empty());

    FUZZ_CHECK(tx.recipient_dsn.size() == tx.recipients.size());
    const spool::Envelope env =
        intake::make_envelope(tx, intake::ArrivalFacts{"1J0TT776IJT0000", 1795430789, "192.0.2.1", "example.test"});
    const std::string head = spool::serialize_envelope(env);
    const auto parsed = spool::parse_envelope(head + "content");
    FUZZ_CHECK(parsed.has_value());
    FUZZ_CHECK(parsed->content_offset == head.size());
    FUZZ_CHECK(parsed->envelope.sender == env.sender);
    FUZZ_CHECK(parsed->envelope.recipients == env.recipients);
    FUZZ_CHECK(parsed->envelope.envid == env.envid && parsed->envelope.ret == env.ret);
    FUZZ_CHECK(parsed->envelope.recipient_dsn == env.recipient_dsn);

    const std::string received = smtp::received_header(smtp::ReceivedInfo{
        session.helo_name(), env.client, kHost, session.protocol(), env.queue_id,
        env.recipients.size() == 1 ? std::string_view(env.recipients.front()) : std::string_view(),
        "Thu, 1 Jan 2026 00:00:00 +0000", session.tls_active() ? "TLSv1.3" : "",
        session.tls_active() ? "TLS_AES_256_GCM_SHA384" : ""});
    FUZZ_CHECK(is_clean_text(received));
}

smtp::ContentFlaws flaws_from(unsigned char bits) {
    smtp::ContentFlaws f;
    f.bare_lf = bits & 1;
    f.bare_cr = bits & 2;
    f.line_too_long = bits & 4;
    f.too_big = bits & 8;
    return f;
}

class Driver {
public:
    // An input starting with '!' drives a submission session (AUTH required before MAIL); any other an mx-like
    // one, so the transaction paths stay reachable without a valid AUTH.
    explicit Driver(std::string_view input)
        : in_(input), settings_(settings(!input.empty() && input[0] == '!')), session_(settings_, policy_) {}

    void run() {
        check_reply(session_.greeting(), true);
        while (pos_ < in_.size()) {
            const std::size_t lf = in_.find('\n', pos_);
            if (lf == std::string_view::npos) break;   // the client went quiet: a timeout
            const std::string_view line = in_.substr(pos_, lf - pos_ + 1);
            pos_ = lf + 1;
            smtp::Step step;
            bool helo = false;
            if (line.size() > kCommandLineLimit) {
                step = session_.on_line_too_long();
            } else if (line.size() < 2 || line[line.size() - 2] != '\r') {
                step = session_.on_bare_lf_command();
            } else {
                const std::string_view command = line.substr(0, line.size() - 2);
                const smtp::Verb verb = smtp::parse_command(command).verb;
                helo = verb == smtp::Verb::helo || verb == smtp::Verb::ehlo;
                step = session_.on_command(command);
            }
            if (!perform(std::move(step), helo)) return;
        }
        FUZZ_CHECK(session_.state() != smtp::SessionState::closed);
        check_reply(session_.on_shutdown(), false);
        const smtp::Reply timeout = session_.on_timeout();
        check_reply(timeout, false);
        FUZZ_CHECK(timeout.code == 421);
        FUZZ_CHECK(session_.state() == smtp::SessionState::closed);
    }

private:
    static smtp::SessionSettings settings(bool submission) {
        smtp::SessionSettings s;
        s.hostname = std::string(kHost);
        s.max_message_size = 100000;
        s.max_recipients = 5;
        s.max_errors = 10;
        s.max_text_line = 1000;
        s.tls_offered = true;
        s.auth_offered = true;
        s.auth_required = submission;
        return s;
    }

    bool next_octet(unsigned char& out) {
        if (pos_ >= in_.size()) return false;
        out = static_cast<unsigned char>(in_[pos_++]);
        return true;
    }

    void check_step(const smtp::Step& step, bool helo) {
        for (const smtp::Reply& r : step.replies) {
            const bool helo_ok = helo && r.code == 250;
            check_reply(r, helo_ok || r.code == 354 || r.code == 334);   // 334: a bare SASL challenge
            if (r.code == 354) FUZZ_CHECK(step.next == smtp::Next::data);
        }
        FUZZ_CHECK(session_.transaction().recipients.size() <= settings_.max_recipients);
        FUZZ_CHECK(session_.error_count() <= settings_.max_errors);
        const std::string_view proto = session_.protocol();
        const bool authenticated = !session_.authenticated_user().empty();
        // RFC 3848 names exist for ESMTP only: HELO over TLS stays "SMTP". With SMTPUTF8 they are RFC 6531's
        // UTF8SMTP, UTF8SMTPA, UTF8SMTPS, UTF8SMTPSA.
        const bool utf8 = proto.starts_with("UTF8SMTP");
        FUZZ_CHECK(proto == "SMTP" || proto.starts_with("ESMTP") || utf8);
        if (proto != "SMTP") {
            FUZZ_CHECK(utf8 == session_.transaction().smtputf8);
            FUZZ_CHECK(proto.ends_with('A') == authenticated);
            const std::string_view rest = proto.substr(utf8 ? 8 : 5);   // after "UTF8SMTP" or "ESMTP"
            FUZZ_CHECK(rest.starts_with('S') == session_.tls_active());
        }
        // A transaction on a submission session exists only after AUTH.
        if (settings_.auth_required && !session_.transaction().recipients.empty()) FUZZ_CHECK(authenticated);
        FUZZ_CHECK((step.next == smtp::Next::close) == (session_.state() == smtp::SessionState::closed));
        if (step.next == smtp::Next::close) FUZZ_CHECK(!step.replies.empty());
    }

    // Reacts to steps like SmtpConnection::perform; false when the connection ends.
    bool perform(smtp::Step step, bool helo) {
        for (;;) {
            check_step(step, helo);
            if (session_.state() != smtp::SessionState::bdat) in_bdat_message_ = false;
            helo = false;
            unsigned char bits = 0;
            switch (step.next) {
            case smtp::Next::command:
                return true;
            case smtp::Next::close:
                return false;
            case smtp::Next::starttls:
                FUZZ_CHECK(!session_.tls_active());
                FUZZ_CHECK(step.replies.size() == 1 && step.replies[0].code == 220);
                FUZZ_CHECK(session_.transaction().recipients.empty());
                session_.on_tls_started();
                FUZZ_CHECK(session_.tls_active() && session_.state() == smtp::SessionState::greeted);
                return true;
            case smtp::Next::auth_response: {
                // The next input line is the client's SASL response, as SmtpConnection reads it.
                FUZZ_CHECK(step.replies.size() == 1 && step.replies[0].code == 334);
                const auto nl = in_.find('\n', pos_);
                if (nl == std::string_view::npos) return false;
                std::string_view line = in_.substr(pos_, nl - pos_);
                if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
                pos_ = nl + 1;
                step = session_.on_auth_response(line);
                continue;
            }
            case smtp::Next::authenticate: {
                FUZZ_CHECK(step.replies.empty());
                FUZZ_CHECK(!session_.pending_credentials().authcid.empty());
                unsigned char ok = 0;
                if (!next_octet(ok)) return false;
                step = session_.on_auth_result((ok & 1) ? std::optional<std::string>("user@example.test")
                                                        : std::nullopt);
                FUZZ_CHECK(session_.pending_credentials().password.empty());
                continue;
            }
            case smtp::Next::data:
                FUZZ_CHECK(session_.state() == smtp::SessionState::data);
                FUZZ_CHECK(step.replies.size() == 1 && step.replies[0].code == 354);
                check_message_start(session_, settings_);
                if (!next_octet(bits)) return false;   // connection lost inside DATA
                if (bits & 32) {
                    step = session_.on_commit_failed();   // no spool file: 451 instead of reading content
                    continue;
                }
                last_bits_ = bits;
                step = session_.on_data_end(flaws_from(bits));
                continue;
            case smtp::Next::bdat_chunk: {
                const std::uint64_t left = in_.size() - pos_;
                if (step.chunk_size > left) return false;   // connection lost inside the chunk
                pos_ += static_cast<std::size_t>(step.chunk_size);
                if (step.discard_chunk) {
                    FUZZ_CHECK(!step.replies.empty());   // the refusal, sent after the chunk
                    return true;
                }
                FUZZ_CHECK(step.replies.empty());
                FUZZ_CHECK(session_.state() == smtp::SessionState::bdat);
                if (!in_bdat_message_) check_message_start(session_, settings_);
                in_bdat_message_ = true;
                if (!next_octet(bits)) return false;
                last_bits_ = bits;
                step = session_.on_chunk_end(flaws_from(bits));
                continue;
            }
            case smtp::Next::commit:
                FUZZ_CHECK(step.replies.empty());
                FUZZ_CHECK(session_.state() == smtp::SessionState::committing);
                FUZZ_CHECK(!flaws_from(last_bits_).any());
                check_message_start(session_, settings_);
                in_bdat_message_ = false;
                step = (last_bits_ & 16) ? session_.on_commit_failed() : session_.on_committed("ID");
                FUZZ_CHECK(session_.transaction().recipients.empty());
                continue;
            }
        }
    }

    std::string_view in_;
    std::size_t pos_ = 0;
    HashPolicy policy_;
    smtp::SessionSettings settings_;
    smtp::Session session_;
    unsigned char last_bits_ = 0;
    bool in_bdat_message_ = false;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    Driver(fuzz::as_text(data, size)).run();
    return 0;
}
