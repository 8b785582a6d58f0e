#include "smtp/session.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "smtp/command.hpp"

namespace ferry::smtp {
namespace {

// RFC 5321 4.5.3.2.1-2, RFC 3030 2 and RFC 3461 4: advertised in EHLO, in this order.
std::vector<std::string> ehlo_lines(const SessionSettings& s, bool tls_active, bool auth_available) {
    std::vector<std::string> lines{s.hostname,
                                   "PIPELINING",
                                   fmt::format("SIZE {}", s.max_message_size),
                                   "ENHANCEDSTATUSCODES",
                                   "8BITMIME",
                                   "SMTPUTF8",
                                   "CHUNKING",
                                   "DSN"};
    if (s.tls_offered && !tls_active) lines.emplace_back("STARTTLS");   // RFC 3207 4: never once TLS is up
    if (auth_available) lines.emplace_back("AUTH PLAIN LOGIN");
    return lines;
}

constexpr std::string_view kHelp = "Commands: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP";

// Client text quoted back in a reply. A reply line is at most 512 octets (RFC 5321 4.5.3.1.5) while a command
// line may be longer (limits.command_line_length), so the quote is cut short; octets that are not printable
// ASCII (UTF-8 in an esmtp-value) show as '?', since reply text is ASCII (RFC 5321 4.2).
constexpr std::size_t kMaxQuotedParameter = 64;

std::string quoted_parameter(std::string_view text) {
    std::string out;
    for (const char c : text.substr(0, kMaxQuotedParameter)) {
        const auto u = static_cast<unsigned char>(c);
        out.push_back(u > 0x20 && u < 0x7F ? c : '?');
    }
    if (text.size() > kMaxQuotedParameter) out += "...";
    return out;
}

bool is_ascii(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

}  // namespace

std::string_view to_string(SessionState state) {
    switch (state) {
    case SessionState::greeted: return "greeted";
    case SessionState::ready: return "ready";
    case SessionState::mail: return "mail";
    case SessionState::rcpt: return "rcpt";
    case SessionState::data: return "data";
    case SessionState::bdat: return "bdat";
    case SessionState::committing: return "committing";
    case SessionState::closed: return "closed";
    }
    return "?";
}

Session::Session(SessionSettings settings, MailPolicy& policy)
    : settings_(std::move(settings)), policy_(policy) {}

Reply Session::greeting() const { return Reply(220, "", settings_.hostname + " ESMTP Ferry"); }

std::string_view Session::protocol() const {
    // RFC 3848 (ESMTPS, ESMTPA, ESMTPSA) and RFC 6531 3.7.3 (the UTF8 ones). SMTPUTF8 needs EHLO.
    if (!esmtp_) return "SMTP";
    static constexpr std::string_view kNames[2][2][2] = {
        {{"ESMTP", "ESMTPA"}, {"ESMTPS", "ESMTPSA"}},
        {{"UTF8SMTP", "UTF8SMTPA"}, {"UTF8SMTPS", "UTF8SMTPSA"}}};
    return kNames[tx_.smtputf8][tls_][!user_.empty()];
}

void Session::on_tls_started() {
    tls_ = true;
    helo_.clear();
    esmtp_ = false;
    user_.clear();
    sasl_.reset();
    tx_ = Transaction{};
    enter(SessionState::greeted);
}

Step Session::handle_auth(std::string_view arg) {
    if (!settings_.auth_offered) return error(503, "5.5.1", "Error: authentication not enabled");
    if (!auth_available()) return error(530, "5.7.0", "Must issue a STARTTLS command first");
    if (state_ == SessionState::greeted || !esmtp_) return error(503, "5.5.1", "Error: send EHLO first");
    if (!user_.empty()) return error(503, "5.5.1", "Error: already authenticated");
    if (state_ != SessionState::ready) return error(503, "5.5.1", "Error: MAIL transaction in progress");
    const auto space = arg.find(' ');
    const std::string_view mechanism = arg.substr(0, space);
    std::optional<std::string_view> initial;
    if (space != std::string_view::npos) initial = arg.substr(space + 1);
    if (mechanism.empty() || (initial && (initial->empty() || initial->find(' ') != std::string_view::npos)))
        return error(501, "5.5.4", "Syntax: AUTH mechanism [initial-response]");
    sasl_ = accounts::SaslExchange::start(mechanism);
    if (!sasl_) return error(504, "5.5.4", "Unsupported authentication mechanism");
    return sasl_step(sasl_->next(initial));
}

Step Session::sasl_step(const accounts::SaslExchange::Step& step) {
    using Kind = accounts::SaslExchange::Step::Kind;
    switch (step.kind) {
    case Kind::challenge: return reply(Reply(334, "", step.challenge), Next::auth_response);
    case Kind::done:
        pending_ = step.credentials;
        return Step{{}, Next::authenticate};
    case Kind::malformed: break;
    }
    sasl_.reset();
    return error(501, "5.5.2", "Error: malformed authentication data");
}

Step Session::on_auth_response(std::string_view line) {
    if (!sasl_) return error(503, "5.5.1", "Error: no authentication in progress");
    if (line == "*") {   // RFC 4954 4: the client cancels
        sasl_.reset();
        return error(501, "5.7.0", "Authentication aborted");
    }
    return sasl_step(sasl_->next(line));
}

Step Session::on_auth_result(const std::optional<std::string>& user) {
    sasl_.reset();
    pending_ = accounts::Credentials{};
    if (!user) return error(535, "5.7.8", "Error: authentication failed");
    user_ = *user;
    return reply(Reply(235, "2.7.0", "Authentication successful"));
}

Step Session::handle_starttls(std::string_view arg) {
    if (tls_) return error(503, "5.5.1", "Error: TLS already active");
    if (!settings_.tls_offered) return error(502, "5.5.1", "Error: command not implemented");
    if (!arg.empty()) return error(501, "5.5.4", "Syntax: STARTTLS");
    if (state_ != SessionState::greeted && state_ != SessionState::ready)
        return error(503, "5.5.1", "Error: MAIL transaction in progress");
    return reply(Reply(220, "2.0.0", "Ready to start TLS"), Next::starttls);
}

void Session::enter(SessionState next) { state_ = next; }

void Session::reset_transaction() {
    tx_ = Transaction{};
    if (state_ != SessionState::greeted && state_ != SessionState::closed) enter(SessionState::ready);
}

Step Session::reply(Reply r, Next next) {
    Step s;
    s.replies.push_back(std::move(r));
    s.next = next;
    if (next == Next::close) enter(SessionState::closed);
    return s;
}

Step Session::error(int code, std::string enhanced, std::string text) {
    Step s = reply(Reply(code, std::move(enhanced), std::move(text)));
    // Hard error limit (Postfix smtpd_hard_error_limit): stops harvesting and junk floods, pipelined or not.
    if (++errors_ >= settings_.max_errors) {
        s.replies.emplace_back(421, "4.7.0", settings_.hostname + " Error: too many errors");
        s.next = Next::close;
        enter(SessionState::closed);
    }
    return s;
}

Step Session::on_command(std::string_view line) {
    // A CR or NUL inside a command is never legitimate (RFC 5321 2.3.8, 4.1.1) and would otherwise travel
    // into headers we write (Received: carries the EHLO name).
    if (line.find_first_of(std::string_view("\r\0", 2)) != std::string_view::npos)
        return error(500, "5.5.2", "Error: bare <CR> or NUL in command");
    const Command cmd = parse_command(line);
    filter_stage_ = FilterStage::none;
    if (refused_ && cmd.verb != Verb::quit && cmd.verb != Verb::rset && cmd.verb != Verb::noop) {
        // Counted as errors, so a client that keeps trying is disconnected at the error limit.
        Step s = error(refused_->code, refused_->enhanced, refused_->lines.empty() ? "" : refused_->lines.front());
        s.replies.front() = *refused_;
        return s;
    }
    // Inside a BDAT sequence only a few commands make sense (RFC 3030 2: the sequence ends with BDAT LAST).
    if (state_ == SessionState::bdat) {
        switch (cmd.verb) {
        case Verb::bdat: case Verb::rset: case Verb::quit: case Verb::noop: case Verb::help: break;
        case Verb::data: return error(503, "5.5.1", "Error: DATA not allowed after BDAT");
        default: return error(503, "5.5.1", "Error: BDAT LAST expected");
        }
    }
    switch (cmd.verb) {
    case Verb::helo: return handle_helo(cmd.argument, false);
    case Verb::ehlo: return handle_helo(cmd.argument, true);
    case Verb::mail: return handle_mail(cmd.argument);
    case Verb::rcpt: return handle_rcpt(cmd.argument);
    case Verb::data: return handle_data(cmd.argument);
    case Verb::bdat: return handle_bdat(cmd.argument);
    case Verb::rset: return handle_rset(cmd.argument);
    case Verb::noop: return reply(Reply(250, "2.0.0", "Ok"));
    case Verb::quit:
        if (!cmd.argument.empty()) return error(501, "5.5.4", "Syntax: QUIT");
        return reply(Reply(221, "2.0.0", "Bye"), Next::close);
    case Verb::vrfy:
        if (cmd.argument.empty()) return error(501, "5.5.4", "Syntax: VRFY address");
        // RFC 5321 3.5.3: 252 tells nothing about whether the user exists (no enumeration).
        return reply(Reply(252, "2.0.0", "Cannot VRFY user, but will accept message and attempt delivery"));
    case Verb::help: return reply(Reply(214, "2.0.0", std::string(kHelp)));
    case Verb::expn: return error(502, "5.5.1", "Error: command not implemented");
    case Verb::starttls: return handle_starttls(cmd.argument);
    case Verb::auth: return handle_auth(cmd.argument);
    case Verb::unknown: break;
    }
    return error(500, "5.5.2", "Error: command not recognized");
}

Step Session::on_line_too_long() { return error(500, "5.5.2", "Error: line too long"); }

Step Session::on_bare_lf_command() {
    // Commands end in CRLF (RFC 5321 2.3.8); a bare LF is how smuggling starts, so it is never a line end.
    return error(500, "5.5.2", "Error: bare <LF> received, commands must end in <CR><LF>");
}

Step Session::handle_helo(std::string_view arg, bool extended) {
    // The name goes into the Received: header: printable ASCII or UTF-8 octets only, no spaces or controls.
    const bool printable = std::all_of(arg.begin(), arg.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u > 0x20 && u != 0x7F;
    });
    if (arg.empty() || !printable)
        return error(501, "5.5.4", extended ? "Syntax: EHLO hostname" : "Syntax: HELO hostname");
    helo_ = std::string(arg);
    esmtp_ = extended;
    enter(SessionState::ready);
    reset_transaction();   // RFC 5321 4.1.4: EHLO/HELO resets any transaction
    Reply r;
    r.code = 250;
    r.lines = extended ? ehlo_lines(settings_, tls_, auth_available()) : std::vector<std::string>{settings_.hostname};
    return staged(reply(std::move(r)), FilterStage::helo);
}

Step Session::handle_mail(std::string_view arg) {
    if (state_ == SessionState::greeted) return error(503, "5.5.1", "Error: send HELO/EHLO first");
    if (state_ != SessionState::ready) return error(503, "5.5.1", "Error: nested MAIL command");
    if (settings_.auth_required && user_.empty()) return error(530, "5.7.0", "Authentication required");
    MailArguments m = parse_mail_arguments(arg);
    switch (m.error) {
    case ArgError::none: break;
    case ArgError::syntax: return error(501, "5.5.4", "Syntax: MAIL FROM:<address>");
    case ArgError::address_too_long: return error(501, "5.1.7", "Sender address too long");
    case ArgError::bad_address: return error(501, "5.1.7", "Bad sender address syntax");
    case ArgError::bad_parameter: return error(501, "5.5.4", "Bad MAIL parameter syntax");
    }
    if (m.path.mailbox && m.path.mailbox->domain.empty())
        return error(501, "5.1.7", "Bad sender address syntax");
    if (!user_.empty() && !policy_.sender_allowed(m.path, user_))
        return error(553, "5.7.1", "<" + (m.path.mailbox ? m.path.mailbox->to_string() : std::string()) +
                                       ">: Sender address rejected: not owned by user " + user_);
    Transaction tx;
    for (const EsmtpParam& p : m.params) {
        if (!esmtp_) return error(555, "5.5.4", "Unsupported option: " + quoted_parameter(p.keyword));
        if (p.keyword == "SIZE" && p.value) {   // RFC 1870 6
            const std::string& v = *p.value;
            if (v.size() > 19 || v.find_first_not_of("0123456789") != std::string::npos)
                return error(501, "5.5.4", "Bad message size syntax");
            const std::uint64_t size = std::stoull(v);
            if (size > settings_.max_message_size)
                return reply(Reply(552, "5.3.4", "Message size exceeds fixed limit"));
            tx.declared_size = size;
        } else if (p.keyword == "BODY" && p.value) {   // RFC 6152
            const std::string v = ascii_lower(*p.value);
            if (v == "8bitmime") tx.body_8bit = true;
            else if (v != "7bit") return error(555, "5.5.4", "Unsupported option: BODY=" + quoted_parameter(*p.value));
        } else if (p.keyword == "SMTPUTF8" && !p.value) {   // RFC 6531 3.4
            tx.smtputf8 = true;
        } else if (p.keyword == "RET") {   // RFC 3461 4.3: at most once
            if (tx.ret != Ret::unspecified) return error(501, "5.5.4", "Duplicate RET parameter");
            const auto ret = p.value ? parse_ret(*p.value) : std::nullopt;
            if (!ret) return error(501, "5.5.4", "Bad RET parameter syntax");
            tx.ret = *ret;
        } else if (p.keyword == "ENVID") {   // RFC 3461 4.4: at most once; a value is never empty
            if (!tx.envid.empty()) return error(501, "5.5.4", "Duplicate ENVID parameter");
            if (!p.value || !valid_envid(*p.value)) return error(501, "5.5.4", "Bad ENVID parameter syntax");
            tx.envid = *p.value;
        } else {
            return error(555, "5.5.4", "Unsupported option: " + quoted_parameter(p.keyword));
        }
    }
    if (m.path.mailbox && m.path.mailbox->utf8 && !tx.smtputf8)
        return error(553, "5.6.7", "Must declare SMTPUTF8 to send unicode address");
    // RFC 1870 6.1: a server that cannot take a message of the declared size now says 452 at MAIL, so the client
    // does not send it all for nothing; the reserve keeps room for messages already being received and for
    // those without SIZE (Postfix's queue_minfree). Not an error toward the limit: the condition will pass.
    const std::uint64_t declared = tx.declared_size.value_or(0);   // at most max_message_size: no overflow
    if (!policy_.spool_has_room(declared + settings_.spool_reserve))
        return reply(Reply(452, "4.3.1", "Error: insufficient system storage"));
    tx.sender = std::move(m.path);
    tx_ = std::move(tx);
    enter(SessionState::mail);
    return staged(reply(Reply(250, "2.1.0", "Ok")), FilterStage::mail);
}

Step Session::handle_rcpt(std::string_view arg) {
    if (state_ == SessionState::greeted || state_ == SessionState::ready)
        return error(503, "5.5.1", "Error: need MAIL command");
    if (state_ != SessionState::mail && state_ != SessionState::rcpt)
        return error(503, "5.5.1", "Error: bad sequence of commands");
    MailArguments r = parse_rcpt_arguments(arg);
    switch (r.error) {
    case ArgError::none: break;
    case ArgError::syntax: return error(501, "5.5.4", "Syntax: RCPT TO:<address>");
    case ArgError::address_too_long: return error(501, "5.1.3", "Recipient address too long");
    case ArgError::bad_address: return error(501, "5.1.3", "Bad recipient address syntax");
    case ArgError::bad_parameter: return error(501, "5.5.4", "Bad RCPT parameter syntax");
    }
    RecipientDsn dsn;
    for (const EsmtpParam& p : r.params) {
        if (!esmtp_) return error(555, "5.5.4", "Unsupported option: " + quoted_parameter(p.keyword));
        if (p.keyword == "NOTIFY") {   // RFC 3461 4.1: at most once
            if (dsn.notify != 0) return error(501, "5.5.4", "Duplicate NOTIFY parameter");
            const auto notify = p.value ? parse_notify(*p.value) : std::nullopt;
            if (!notify) return error(501, "5.5.4", "Bad NOTIFY parameter syntax");
            dsn.notify = *notify;
        } else if (p.keyword == "ORCPT") {   // RFC 3461 4.2: at most once
            if (!dsn.orcpt.empty()) return error(501, "5.5.4", "Duplicate ORCPT parameter");
            // Raw UTF-8 (RFC 6533 utf-8-addr-unitext) only in a transaction that declared SMTPUTF8.
            if (!p.value || !decode_orcpt(*p.value) || (!tx_.smtputf8 && !is_ascii(*p.value)))
                return error(501, "5.5.4", "Bad ORCPT parameter syntax");
            dsn.orcpt = *p.value;
        } else {
            return error(555, "5.5.4", "Unsupported option: " + quoted_parameter(p.keyword));
        }
    }
    // RFC 5321 4.5.3.1.8: more than the limit gets 452 (not an error toward the hard limit: clients retry).
    if (tx_.recipients.size() >= settings_.max_recipients)
        return reply(Reply(452, "4.5.3", "Error: too many recipients"));
    const Mailbox& rcpt = *r.path.mailbox;
    if (rcpt.utf8 && !tx_.smtputf8) return error(553, "5.6.7", "Must declare SMTPUTF8 to send unicode address");
    const std::string shown = "<" + rcpt.to_string() + ">";
    switch (policy_.check_recipient(rcpt, user_)) {
    case RecipientVerdict::accept: break;
    case RecipientVerdict::unknown_user:
        return error(550, "5.1.1", shown + ": Recipient address rejected: User unknown in local recipient table");
    case RecipientVerdict::relay_denied:
        return error(554, "5.7.1", shown + ": Relay access denied");
    case RecipientVerdict::temporary_failure:
        return reply(Reply(451, "4.3.0", shown + ": Temporary lookup failure"));
    }
    tx_.recipients.push_back(rcpt);
    tx_.recipient_dsn.push_back(std::move(dsn));
    enter(SessionState::rcpt);
    return staged(reply(Reply(250, "2.1.5", "Ok")), FilterStage::rcpt);
}

Step Session::handle_data(std::string_view arg) {
    if (state_ == SessionState::greeted || state_ == SessionState::ready)
        return error(503, "5.5.1", "Error: need MAIL command");
    if (state_ == SessionState::mail) return error(503, "5.5.1", "Error: need RCPT command");
    if (!arg.empty()) return error(501, "5.5.4", "Syntax: DATA");
    enter(SessionState::data);
    return staged(reply(Reply(354, "", "End data with <CR><LF>.<CR><LF>"), Next::data), FilterStage::data);
}

Step Session::handle_bdat(std::string_view arg) {
    const BdatArguments b = parse_bdat_arguments(arg);
    // Like Postfix: a BDAT whose size cannot be read is a syntax error and nothing is consumed; if chunk
    // octets follow, they read as bad commands and run into the error limit.
    if (!b.ok) return error(501, "5.5.4", "Syntax: BDAT size [LAST]");
    // Otherwise the chunk follows the command whatever we think of it (RFC 3030 2) and is read before replying.
    Step s;
    if (state_ == SessionState::greeted || state_ == SessionState::ready)
        s = error(503, "5.5.1", "Error: need MAIL command");
    else if (state_ == SessionState::mail)
        s = error(503, "5.5.1", "Error: need RCPT command");
    if (!s.replies.empty()) {
        if (s.next == Next::close) return s;
        s.next = Next::bdat_chunk;   // reply after the chunk has been read and dropped
        s.chunk_size = b.size;
        s.chunk_last = b.last;
        s.discard_chunk = true;
        return s;
    }
    enter(SessionState::bdat);
    chunk_size_ = b.size;
    chunk_last_ = b.last;
    s.next = Next::bdat_chunk;
    s.chunk_size = b.size;
    s.chunk_last = b.last;
    tx_.bdat_octets += b.size;
    return s;
}

Step Session::on_chunk_end(const ContentFlaws& flaws) {
    // `flaws` cover every chunk so far; judged once, at BDAT LAST, like the end of DATA.
    if (chunk_last_) return on_data_end(flaws);
    return reply(Reply(250, "2.0.0", fmt::format("Ok: {} octets received", chunk_size_)));
}

Step Session::handle_rset(std::string_view arg) {
    if (!arg.empty()) return error(501, "5.5.4", "Syntax: RSET");
    reset_transaction();
    return reply(Reply(250, "2.0.0", "Ok"));
}

Step Session::on_data_end(const ContentFlaws& flaws) {
    if (flaws.too_big) {
        reset_transaction();
        return reply(Reply(552, "5.3.4", "Message size exceeds fixed limit"));
    }
    if (flaws.bare_lf || flaws.bare_cr) {
        reset_transaction();
        return error(550, "5.5.2", "Error: bare <LF> or <CR> in message content (RFC 5321 2.3.8)");
    }
    if (flaws.nul) {
        // RFC 3463 X.6.1 "media not supported": NUL needs BINARYMIME (RFC 3030 3), which we do not offer. Refused
        // rather than passed on: a next hop that drops NULs could read "<CRLF>NUL.<CRLF>" as an end of data.
        reset_transaction();
        return error(550, "5.6.1", "Error: NUL octet in message content (RFC 5321 2.3.8), BINARYMIME not offered");
    }
    if (flaws.line_too_long) {
        reset_transaction();
        return error(550, "5.6.0",
                     fmt::format("Error: message line longer than {} octets (RFC 5321 4.5.3.1.6)",
                                 settings_.max_text_line));
    }
    enter(SessionState::committing);
    Step s;
    s.next = Next::commit;
    return s;
}

Step Session::on_committed(std::string_view queue_id) {
    reset_transaction();
    return reply(Reply(250, "2.0.0", fmt::format("Ok: queued as {}", queue_id)));
}

Step Session::on_commit_failed(bool out_of_space) {
    reset_transaction();
    if (out_of_space) return reply(Reply(452, "4.3.1", "Error: insufficient system storage"));
    return reply(Reply(451, "4.3.0", "Error: queue file write error"));
}

Step Session::staged(Step s, FilterStage stage) {
    s.filter_stage = stage;
    filter_stage_ = stage;
    return s;
}

Step Session::on_filter_refused(Reply r) {
    switch (std::exchange(filter_stage_, FilterStage::none)) {
    case FilterStage::none: break;
    case FilterStage::helo:   // as if no HELO/EHLO had been given: the client must greet again
        helo_.clear();
        esmtp_ = false;
        enter(SessionState::greeted);
        break;
    case FilterStage::mail: reset_transaction(); break;
    case FilterStage::rcpt:
        if (!tx_.recipients.empty()) {
            tx_.recipients.pop_back();
            tx_.recipient_dsn.pop_back();
        }
        if (tx_.recipients.empty()) enter(SessionState::mail);
        break;
    case FilterStage::data: enter(SessionState::rcpt); break;
    }
    return reply(std::move(r));
}

Step Session::on_content_refused(Reply r) {
    reset_transaction();
    return reply(std::move(r));
}

Reply Session::on_timeout() {
    enter(SessionState::closed);
    return Reply(421, "4.4.2", settings_.hostname + " Error: timeout exceeded");
}

Reply Session::on_shutdown() const {
    return Reply(421, "4.3.2", settings_.hostname + " Service shutting down, closing transmission channel");
}

}  // namespace ferry::smtp
