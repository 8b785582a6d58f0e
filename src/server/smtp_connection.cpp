#include "server/smtp_connection.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <ctime>
#include <utility>

#include "intake/message_envelope.hpp"
#include "mime/header.hpp"
#include "policy/mail_policy.hpp"
#include "smtp/received_header.hpp"
#include "spool/queue_id.hpp"
#include "util/time_format.hpp"

namespace ferry::server {

using asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
// Decoded content is handed to the spool writer in blocks of this size.
constexpr std::size_t kStoreBlock = 64 * 1024;
// Largest single socket read; an idle session holds no read buffer at all.
constexpr std::size_t kMaxRead = 64 * 1024;
constexpr std::size_t kMinRead = 4096;
// One TLS record carries at most 16 KiB of plaintext.
constexpr std::size_t kTlsRead = 16 * 1024;
// A goodbye (421) to a client that does not read must not hold up shutdown.
constexpr auto kGoodbyeTimeout = std::chrono::seconds(2);

// The transaction policy of a session, and the spool's free space measured for it at MAIL (smtp::Session does no
// I/O itself).
class ConnectionPolicy : public policy::LocalMailPolicy {
public:
    ConnectionPolicy(policy::LocalDirectory& directory, bool check_sender_login, const spool::Spool& spool,
                     const std::string& client)
        : LocalMailPolicy(directory, check_sender_login), spool_(spool), client_(client) {}
    bool spool_has_room(std::uint64_t octets) override {
        const auto free = spool_.free_octets();
        if (!free || *free >= octets) return true;
        spdlog::warn("refused client={}: spool has {} octets free, MAIL needs {} (SIZE and [queue] min_free)",
                     client_, *free, octets);
        return false;
    }

private:
    const spool::Spool& spool_;
    const std::string& client_;
};

}  // namespace

SmtpConnection::SmtpConnection(tcp::socket socket, ServerServices& services,
                               std::shared_ptr<const config::Config> config, std::string listener,
                               config::Listener settings, ConnectionLimits& limits)
    : socket_(std::move(socket)),
      timer_(socket_.get_executor()),
      services_(services),
      config_(std::move(config)),
      listener_(std::move(listener)),
      settings_(std::move(settings)),
      limits_(limits),
      tls_context_(services.tls) {
    error_code ec;
    const auto remote = socket_.remote_endpoint(ec);
    client_ip_ = ec ? "unknown" : remote.address().to_string();
    client_ = ec ? "unknown" : fmt::format("[{}]:{}", client_ip_, remote.port());
    socket_.non_blocking(true, ec);
    socket_.set_option(tcp::no_delay(true), ec);
    services_.live.insert(this);
}

SmtpConnection::~SmtpConnection() { services_.live.erase(this); }

void SmtpConnection::shutdown() {
    stopping_ = true;
    error_code ignored;
    socket_.cancel(ignored);
}

void SmtpConnection::arm_timer(Clock::time_point deadline) {
    // The generation makes a wake-up that was already queued when the wait finished harmless.
    const auto generation = ++timer_generation_;
    timed_out_ = false;
    timer_.expires_at(deadline);
    timer_.async_wait([self = shared_from_this(), generation](error_code ec) {
        if (ec || generation != self->timer_generation_) return;
        self->timed_out_ = true;
        error_code ignored;
        self->socket_.cancel(ignored);
    });
}

void SmtpConnection::disarm_timer() {
    ++timer_generation_;
    timer_.cancel();
}

SmtpConnection::Clock::time_point SmtpConnection::earned_deadline(Clock::time_point deadline,
                                                                  std::size_t octets) const {
    // Postfix's smtpd_min_data_rate, in effect: a sender earns time by sending, and loses it by waiting.
    const auto& limits = config_->limits;
    const auto earned = std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(static_cast<double>(octets) / static_cast<double>(limits.min_data_rate)));
    return std::min(deadline + earned, Clock::now() + limits.data_timeout);
}

asio::awaitable<SmtpConnection::ReadResult> SmtpConnection::read_more(Clock::time_point deadline) {
    if (stopping_) co_return ReadResult::shutdown;
    if (in_pos_ > 0) {
        in_.erase(0, in_pos_);
        in_pos_ = 0;
    }
    if (in_.empty() && in_.capacity() > kMaxRead) in_.shrink_to_fit();
    if (tls_) {
        // OpenSSL may hold decrypted octets the socket no longer shows as readable, so a TLS session reads
        // through the stream (one TLS record at most) instead of waiting for readability first.
        const std::size_t old = in_.size();
        in_.resize(old + kTlsRead);
        arm_timer(deadline);
        auto [ec, n] = co_await tls_->async_read_some(asio::buffer(in_.data() + old, kTlsRead), kNoThrow);
        disarm_timer();
        in_.resize(old + (ec ? 0 : n));
        if (!ec) co_return ReadResult::ok;
        if (timed_out_) co_return ReadResult::timeout;
        co_return stopping_ ? ReadResult::shutdown : ReadResult::closed;
    }
    for (;;) {
        // Wait for readability first, so an idle session holds no buffer.
        arm_timer(deadline);
        auto [ec] = co_await socket_.async_wait(tcp::socket::wait_read, kNoThrow);
        disarm_timer();
        if (ec) {
            if (timed_out_) co_return ReadResult::timeout;
            co_return stopping_ ? ReadResult::shutdown : ReadResult::closed;
        }
        error_code aec;
        const std::size_t available = socket_.available(aec);
        const std::size_t want = std::clamp(available, kMinRead, kMaxRead);
        const std::size_t old = in_.size();
        in_.resize(old + want);
        error_code rec;
        const std::size_t n = socket_.read_some(asio::buffer(in_.data() + old, want), rec);
        in_.resize(old + (rec ? 0 : n));
        if (rec == asio::error::would_block || rec == asio::error::try_again) continue;
        if (rec) co_return ReadResult::closed;
        co_return ReadResult::ok;
    }
}

asio::awaitable<error_code> SmtpConnection::write_out() {
    if (tls_) {
        auto [ec, n] = co_await asio::async_write(*tls_, asio::buffer(out_), kNoThrow);
        co_return ec;
    }
    auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(out_), kNoThrow);
    co_return ec;
}

asio::awaitable<bool> SmtpConnection::flush() {
    if (out_.empty()) co_return true;
    arm_timer(config_->limits.command_timeout);
    const error_code ec = co_await write_out();
    disarm_timer();
    out_.clear();
    co_return !ec;
}

asio::awaitable<bool> SmtpConnection::start_tls() {
    if (!tls_context_) co_return false;
    tls_ = std::make_unique<asio::ssl::stream<tcp::socket&>>(socket_, *tls_context_);
    arm_timer(config_->limits.command_timeout);
    auto [ec] = co_await tls_->async_handshake(asio::ssl::stream_base::server, kNoThrow);
    disarm_timer();
    if (ec) {
        spdlog::warn("tls handshake failed client={}: {}", client_, timed_out_ ? "timeout" : ec.message());
        tls_.reset();
        co_return false;
    }
    SSL* ssl = tls_->native_handle();
    tls_version_ = SSL_get_version(ssl);
    tls_cipher_ = SSL_CIPHER_get_name(SSL_get_current_cipher(ssl));
    spdlog::info("tls client={} version={} cipher={}", client_, tls_version_, tls_cipher_);
    co_return true;
}

asio::awaitable<void> SmtpConnection::close_tls() {
    if (!tls_ || tls_version_.empty()) co_return;
    // close_notify (RFC 8446 6.1, RFC 5246 7.2.1) before the TCP close: OpenSSL drops a session that ends
    // without one from its server cache (ssl_clear_bad_session), so a TLS 1.2 client resuming by session id
    // would have to start over. The client's own close_notify is not waited for (marked as received).
    SSL_set_shutdown(tls_->native_handle(), SSL_RECEIVED_SHUTDOWN);
    arm_timer(std::chrono::duration_cast<std::chrono::milliseconds>(kGoodbyeTimeout));
    co_await tls_->async_shutdown(kNoThrow);
    disarm_timer();
}

asio::awaitable<SmtpConnection::ReadResult> SmtpConnection::read_auth_line(std::string& line) {
    // RFC 4954 4: a SASL response line may be up to 12288 octets; longer ends the session.
    constexpr std::size_t kMaxAuthLine = 12288;
    const auto deadline = Clock::now() + config_->limits.command_timeout;
    for (;;) {
        const std::string_view pending(in_.data() + in_pos_, in_.size() - in_pos_);
        const auto lf = pending.find('\n');
        if (lf != std::string_view::npos) {
            line.assign(pending.substr(0, lf));
            if (!line.empty() && line.back() == '\r') line.pop_back();
            in_pos_ += lf + 1;
            co_return ReadResult::ok;
        }
        if (pending.size() > kMaxAuthLine) {
            spdlog::warn("auth client={}: response line too long, closing", client_);
            co_return ReadResult::closed;
        }
        const ReadResult r = co_await read_more(deadline);
        if (r != ReadResult::ok) co_return r;
    }
}

asio::awaitable<smtp::Step> SmtpConnection::authenticate(smtp::Session& session) {
    const accounts::Credentials creds = session.pending_credentials();
    std::optional<std::string> user;
    if (creds.authzid.empty() || creds.authzid == creds.authcid) {   // acting as somebody else: not offered
        policy::LocalDirectory& directory = services_.directory;
        user = co_await asio::co_spawn(
            services_.auth_pool,
            [&directory, &creds]() -> asio::awaitable<std::optional<std::string>> {
                co_return directory.authenticate(creds.authcid, creds.password);
            },
            asio::use_awaitable);
    }
    if (user) {
        services_.auth_throttle.succeeded(client_ip_);
        spdlog::info("auth client={} user={}", client_, *user);
    } else {
        // The password is never logged; the login name is, sanitized, for the operator chasing a typo.
        const auto delay = services_.auth_throttle.failed(client_ip_);
        spdlog::warn("auth failed client={} login={} failures={}", client_, intake::loggable(creds.authcid),
                     services_.auth_throttle.failures(client_ip_));
        asio::steady_timer wait(socket_.get_executor(), delay);
        co_await wait.async_wait(kNoThrow);
    }
    co_return session.on_auth_result(user);
}

bool SmtpConnection::next_command(smtp::Session& session, smtp::Step& step) {
    const std::size_t limit = config_->limits.command_line_length;
    const std::string_view pending(in_.data() + in_pos_, in_.size() - in_pos_);
    const auto lf = pending.find('\n');
    if (discarding_line_) {
        // The rest of an over-long line: dropped unread, answered once its end arrives (keeps replies in order).
        if (lf == std::string_view::npos) {
            in_pos_ = in_.size();
            return false;
        }
        in_pos_ += lf + 1;
        discarding_line_ = false;
        step = session.on_line_too_long();
        return true;
    }
    if (lf == std::string_view::npos) {
        if (pending.size() >= limit) {   // RFC 5321 4.5.3.1.4: no line may get longer than the limit
            discarding_line_ = true;
            in_pos_ = in_.size();
        }
        return false;
    }
    in_pos_ += lf + 1;
    if (lf + 1 > limit) {
        step = session.on_line_too_long();
    } else if (lf == 0 || pending[lf - 1] != '\r') {
        step = session.on_bare_lf_command();
    } else {
        step = session.on_command(pending.substr(0, lf - 1));
    }
    return true;
}

asio::awaitable<void> SmtpConnection::run() {
    try {
        co_await serve();
    } catch (const std::exception& e) {
        spdlog::error("session client={} aborted: {}", client_, e.what());
    }
    end_message();
    co_await close_tls();
    error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
}

asio::awaitable<void> SmtpConnection::serve() {
    const config::Config& cfg = *config_;
    const auto verdict = limits_.acquire(client_ip_);
    if (verdict != ConnectionLimits::Verdict::ok) {
        const bool per_ip = verdict == ConnectionLimits::Verdict::too_many_from_ip;
        spdlog::warn("reject client={} listener={} reason={}", client_, listener_, per_ip ? "too many connections from ip" : "too many connections");
        out_ = smtp::Reply(421, "4.7.0",
                           per_ip ? fmt::format("{} Error: too many connections from {}", cfg.hostname, client_ip_)
                                  : fmt::format("{} Error: too many connections", cfg.hostname))
                   .render();
        co_await flush();
        co_return;
    }
    struct Release {
        ConnectionLimits& limits;
        std::string ip;
        ~Release() { limits.release(ip); }
    } release{limits_, client_ip_};

    spdlog::info("connect client={} listener={}", client_, listener_);
    const bool mx = settings_.role == config::ListenerRole::mx;
    SessionPolicy client_policy(*services_.client_policy, cfg, mx, client_ip_, client_);
    if (auto refusal = client_policy.on_connect()) {
        out_ = refusal->render();
        co_await flush();
        co_return;
    }
    client_policy_ = &client_policy;
    smtp::SessionSettings settings;
    settings.hostname = cfg.hostname;
    settings.max_message_size = cfg.limits.message_size;
    settings.max_recipients = cfg.limits.recipients;
    settings.max_errors = cfg.limits.errors;
    settings.max_text_line = cfg.limits.text_line_length;
    const bool submission = settings_.role != config::ListenerRole::mx;
    settings.tls_offered = tls_context_ && settings_.role != config::ListenerRole::submissions;
    settings.auth_offered = submission;   // mx: servers do not log in; nobody relays through port 25
    settings.auth_plaintext = settings_.plaintext_auth;
    settings.auth_required = submission;
    settings.spool_reserve = cfg.spool_reserve();
    ConnectionPolicy policy(services_.directory, settings_.sender_login_match, services_.spool, client_);
    smtp::Session session(std::move(settings), policy);
    policy_ = &policy;   // for the intake's From: check; the policy outlives every message of the session

    if (!cfg.milters.empty() || services_.rspamd) {
        error_code ec;
        const auto peer = socket_.remote_endpoint(ec);
        filter::ConnectionFacts facts{client_ip_, ec ? std::uint16_t(0) : peer.port(), "", cfg.hostname, listener_,
                                      settings_.role == config::ListenerRole::mx};
        filters_ = std::make_unique<filter::SessionFilters>(co_await asio::this_coro::executor, cfg.milters,
                                                            services_.rspamd, std::move(facts));
        if (filters_->has_milters()) {
            const filter::Decision d = co_await filters_->connect();
            using Action = filter::Decision::Action;
            if (d.action == Action::shutdown) {
                out_ = filter::reply_for(d, cfg.hostname).render();
                co_await flush();
                co_await filters_->quit();
                co_return;
            }
            if (filter::refuses(d)) {   // shutdown went above
                spdlog::warn("refused client={} by milter at connect: {}", client_, intake::loggable_line(d.reason));
                session.refuse_session(filter::reply_for(d, cfg.hostname));
            }
        }
    }

    // Implicit TLS (RFC 8314): the handshake comes before the greeting; a plaintext client gets nothing.
    if (settings_.role == config::ListenerRole::submissions) {
        if (!co_await start_tls()) co_return;
        session.on_tls_started();
    }
    // The early talker test and the DNSBL verdict at connect, both for mx clients only (the lists were asked at
    // on_connect and answer meanwhile).
    const bool waited = mx && cfg.policy.pregreet_wait.count() > 0 && !client_policy.allow_listed();
    if (waited && !co_await pregreet(cfg.policy.pregreet_wait)) co_return;
    // RFC 5321 3.1: a 554 greeting, then every command but QUIT (and RSET, NOOP) is refused. After "220-" went
    // out the reply must stay a 220, so then only the commands are refused.
    const auto refusal = co_await client_policy.at_greeting();
    if (refusal) session.refuse_session(*refusal);
    (refusal && !waited ? *refusal : session.greeting()).render_to(out_);
    bool open = co_await flush();
    // The next command line must be complete by then (RFC 5321 4.5.3.2.7 as a deadline, not per read).
    auto deadline = Clock::now() + cfg.limits.command_timeout;
    while (open) {
        smtp::Step step;
        if (!next_command(session, step)) {
            if (!co_await flush()) break;
            const ReadResult r = co_await read_more(deadline);
            if (r == ReadResult::ok) continue;
            co_await say_goodbye(r, session);
            break;
        }
        ++commands_;
        open = co_await perform(session, std::move(step));
        deadline = Clock::now() + cfg.limits.command_timeout;
        // A transaction that ended without a commit (RSET, error, EHLO) leaves nothing behind in the spool.
        if (intake_ && session.state() != smtp::SessionState::bdat) end_message();
        // ... and the milters are told (SMFIC_ABORT) that the message they saw begin will not come.
        const smtp::SessionState state = session.state();
        if (milter_transaction_ && (state == smtp::SessionState::ready || state == smtp::SessionState::greeted ||
                                    state == smtp::SessionState::closed)) {
            milter_transaction_ = false;
            data_refused_.reset();
            co_await filters_->abort();
        }
    }
    if (filters_) co_await filters_->quit();
    spdlog::info("disconnect client={} commands={} messages={} errors={}", client_, commands_, messages_,
                 session.error_count());
}

asio::awaitable<void> SmtpConnection::say_goodbye(ReadResult why, smtp::Session& session) {
    if (why == ReadResult::timeout) {
        spdlog::warn("timeout client={} state={}", client_, smtp::to_string(session.state()));
        session.on_timeout().render_to(out_);
    } else if (why == ReadResult::shutdown) {
        session.on_shutdown().render_to(out_);
    } else {
        if (session.state() == smtp::SessionState::data || session.state() == smtp::SessionState::bdat)
            spdlog::warn("lost connection client={} in={} (message discarded)", client_, smtp::to_string(session.state()));
        co_return;
    }
    arm_timer(std::chrono::duration_cast<std::chrono::milliseconds>(kGoodbyeTimeout));
    co_await write_out();   // best effort: we close either way
    disarm_timer();
    out_.clear();
}

asio::awaitable<bool> SmtpConnection::pregreet(std::chrono::milliseconds wait) {
    // Bots that send their commands at once, without waiting for the greeting, are most of the bots (postscreen's
    // pregreet test): the greeting's first line goes out, and anything the client sends before the rest does is
    // refused. A client that waited sees one ordinary multi-line 220 reply.
    out_ = "220-" + config_->hostname + " ESMTP Ferry\r\n";
    if (!co_await flush()) co_return false;
    arm_timer(Clock::now() + wait);
    auto [ec] = co_await socket_.async_wait(tcp::socket::wait_read, kNoThrow);
    disarm_timer();
    if (ec) co_return timed_out_;   // quiet until the end of the wait: passed; else closed or shutting down
    error_code aec;
    if (socket_.available(aec) == 0) co_return false;   // it hung up
    spdlog::warn("policy=pregreet client={} action=reject (sent before the greeting ended)", client_);
    out_ = smtp::Reply(554, "5.5.1", config_->hostname + " Error: you talked before the greeting").render();
    co_await flush();
    co_return false;
}

asio::awaitable<void> SmtpConnection::ask_policy(smtp::Session& session, smtp::Step& step) {
    if (step.filter_stage == smtp::FilterStage::mail) {
        client_policy_->on_mail();
        co_return;
    }
    const smtp::Transaction& tx = session.transaction();
    if (tx.recipients.empty()) co_return;
    // Named, not a temporary in the co_await expression: g++ 12 destroys a conditional's temporary there twice.
    const std::string sender = tx.sender.mailbox ? tx.sender.mailbox->to_string() : std::string();
    const auto refusal = co_await client_policy_->at_rcpt(sender, tx.recipients.back(), session.authenticated_user(),
                                                          session.helo_name());
    if (refusal) step = session.on_filter_refused(*refusal);
}

asio::awaitable<bool> SmtpConnection::perform(smtp::Session& session, smtp::Step step) {
    using smtp::Next;
    for (;;) {
        if (step.filter_stage == smtp::FilterStage::mail || step.filter_stage == smtp::FilterStage::rcpt)
            co_await ask_policy(session, step);
        if (step.filter_stage != smtp::FilterStage::none && filters_ && filters_->has_milters())
            if (!co_await ask_filters(session, step)) {
                for (const auto& r : step.replies) r.render_to(out_);
                co_await flush();
                co_return false;
            }
        if (step.next == Next::data)
            if (const auto ec = begin_message(session, smtp::ContentDecoder::Mode::dot_stuffed))
                step = session.on_commit_failed(intake::out_of_space(ec));   // 451/452, not 354: nowhere to put it
        if (step.next != Next::bdat_chunk)
            for (const auto& r : step.replies) r.render_to(out_);
        switch (step.next) {
        case Next::command:
            co_return true;
        case Next::close:
            co_await flush();
            co_return false;
        case Next::starttls:
            if (!co_await flush()) co_return false;
            // Whatever the client sent after STARTTLS in plaintext is dropped unread (CVE-2011-0411): only
            // what arrives inside TLS is a command.
            in_.clear();
            in_pos_ = 0;
            discarding_line_ = false;
            if (!co_await start_tls()) co_return false;
            session.on_tls_started();
            co_return true;
        case Next::auth_response: {
            if (!co_await flush()) co_return false;
            std::string line;
            const ReadResult r = co_await read_auth_line(line);
            if (r != ReadResult::ok) {
                co_await say_goodbye(r, session);
                co_return false;
            }
            step = session.on_auth_response(line);
            continue;
        }
        case Next::authenticate:
            if (services_.auth_throttle.blocked(client_ip_)) {
                spdlog::warn("auth refused client={}: too many failed logins", client_);
                smtp::Reply(421, "4.7.0", config_->hostname + " Error: too many failed logins, try again later")
                    .render_to(out_);
                co_await flush();
                co_return false;
            }
            step = co_await authenticate(session);
            continue;
        case Next::data: {
            if (!co_await flush()) co_return false;
            const ReadResult r = co_await receive_dot_stuffed();
            if (r != ReadResult::ok) {
                end_message();
                co_await say_goodbye(r, session);
                co_return false;
            }
            step = session.on_data_end(decoder_->flaws());
            continue;
        }
        case Next::bdat_chunk: {
            const bool keep = !step.discard_chunk;
            if (keep && !decoder_) {
                begin_message(session, smtp::ContentDecoder::Mode::raw);
                // The milters' DATA stage: a refusal cannot be said before the chunk is read (RFC 3030 2), so it
                // is the reply at the end of the message.
                if (filters_ && filters_->has_milters()) {
                    const filter::Decision d = co_await filters_->data(session_facts(session), message_facts(session));
                    if (d.action == filter::Decision::Action::discard) discard_message_ = true;
                    else if (filter::refuses(d)) data_refused_ = filter::reply_for(d, config_->hostname);
                }
            }
            const ReadResult r = co_await receive_chunk(step.chunk_size, keep);
            if (r != ReadResult::ok) {
                end_message();
                co_await say_goodbye(r, session);
                co_return false;
            }
            if (!keep) {   // the reply to a refused BDAT comes after its chunk (RFC 3030 2)
                for (const auto& reply : step.replies) reply.render_to(out_);
                co_return true;
            }
            if (step.chunk_last) decoder_->finish_raw();
            step = session.on_chunk_end(decoder_->flaws());
            continue;
        }
        case Next::commit:
            step = co_await commit(session);
            end_message();
            continue;
        }
    }
}

std::error_code SmtpConnection::begin_message(smtp::Session& session, smtp::ContentDecoder::Mode mode) {
    const config::Config& cfg = *config_;
    const smtp::Transaction& tx = session.transaction();
    decoder_.emplace(mode, cfg.limits.text_line_length, cfg.limits.message_size);
    decoded_.clear();

    intake::IntakeSettings settings;
    settings.log_label = "client=" + client_;
    settings.authserv_id = cfg.authserv_id();
    settings.authenticated_user = session.authenticated_user();
    if (!settings.authenticated_user.empty() && settings_.sender_login_match) settings.from_owner = policy_;
    if (!settings.authenticated_user.empty() && cfg.dkim.sign) settings.signing_keys = services_.signing_keys;
    if (settings_.role == config::ListenerRole::mx && cfg.mailauth.verify && services_.resolver)
        settings.inbound = mailauth::InboundFacts{client_ip_, session.helo_name(),
                                                  tx.sender.mailbox ? tx.sender.mailbox->to_string() : std::string()};
    intake_ = std::make_unique<intake::MessageIntake>(std::move(settings));

    const spool::Envelope env = intake::make_envelope(
        tx, intake::ArrivalFacts{next_queue_id_.empty() ? spool::make_queue_id() : std::exchange(next_queue_id_, {}),
                                 std::time(nullptr), client_ip_,
                                 services_.directory.primary_domain()});
    const std::string date = util::rfc5322_date(env.arrival);
    const std::string received = smtp::received_header(smtp::ReceivedInfo{
        session.helo_name(), client_ip_, cfg.hostname, session.protocol(), env.queue_id,
        env.recipients.size() == 1 ? std::string_view(env.recipients.front()) : std::string_view(), date,
        tls_version_, tls_cipher_});
    return intake_->begin(services_.spool, env, received);
}

void SmtpConnection::store_decoded() {
    if (intake_) intake_->feed(decoded_);
    decoded_.clear();
}

void SmtpConnection::end_message() {
    intake_.reset();   // an uncommitted file is removed
    decoder_.reset();
    decoded_.clear();
    decoded_.shrink_to_fit();
}

asio::awaitable<SmtpConnection::ReadResult> SmtpConnection::receive_dot_stuffed() {
    auto deadline = Clock::now() + config_->limits.data_timeout;
    for (;;) {
        const std::string_view pending(in_.data() + in_pos_, in_.size() - in_pos_);
        in_pos_ += decoder_->feed(pending, decoded_);
        if (decoder_->finished() || decoded_.size() >= kStoreBlock) store_decoded();
        if (decoder_->finished()) co_return ReadResult::ok;
        const ReadResult r = co_await read_more(deadline);
        if (r != ReadResult::ok) co_return r;
        deadline = earned_deadline(deadline, in_.size() - in_pos_);
    }
}

asio::awaitable<SmtpConnection::ReadResult> SmtpConnection::receive_chunk(std::uint64_t size, bool keep) {
    std::uint64_t remaining = size;
    auto deadline = Clock::now() + config_->limits.data_timeout;
    for (;;) {
        const std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(remaining, in_.size() - in_pos_));
        if (keep) decoder_->feed(std::string_view(in_.data() + in_pos_, take), decoded_);
        in_pos_ += take;
        remaining -= take;
        if (keep && (remaining == 0 || decoded_.size() >= kStoreBlock)) store_decoded();
        if (remaining == 0) co_return ReadResult::ok;
        const ReadResult r = co_await read_more(deadline);
        if (r != ReadResult::ok) co_return r;
        deadline = earned_deadline(deadline, in_.size() - in_pos_);
    }
}

asio::awaitable<intake::Outcome> SmtpConnection::commit_to_spool() {
    auto executor = co_await asio::this_coro::executor;
    const std::error_code ec = co_await asio::async_initiate<decltype(asio::use_awaitable), void(std::error_code)>(
        [&](auto handler) {
            auto shared = std::make_shared<decltype(handler)>(std::move(handler));
            // The work guard keeps io_context::run() going while the committer thread holds the message.
            auto work = asio::make_work_guard(services_.io);
            intake_->submit(services_.committer, [shared, work, executor](std::error_code ec) mutable {
                asio::post(executor, [shared, ec]() mutable { (*shared)(ec); });
                work.reset();
            });
        },
        asio::use_awaitable);
    co_return intake_->committed(ec);
}

asio::awaitable<smtp::Step> SmtpConnection::commit(smtp::Session& session) {
    const config::Config& cfg = *config_;
    if (!intake_) co_return session.on_commit_failed();   // no message was begun: nothing to commit
    if (data_refused_) {
        smtp::Reply reply = std::move(*data_refused_);
        data_refused_.reset();
        spdlog::warn("refused client={} id={} by milter at DATA: {}", client_, intake_->queue_id(), reply.code);
        co_return session.on_content_refused(std::move(reply));
    }
    std::optional<intake::Outcome> outcome = intake_->end_of_data();
    if (!outcome)
        if (mailauth::InboundCheck* check = intake_->inbound_check()) {
            const double sample = std::uniform_real_distribution<double>(0.0, 1.0)(services_.random);
            mailauth::InboundSettings settings{cfg.authserv_id(), services_.public_suffixes, cfg.mailauth.dmarc_enforce};
            const mailauth::InboundVerdict v = co_await check->finish(*services_.resolver, settings, sample, std::time(nullptr));
            outcome = intake_->apply_inbound_verdict(v);
        }
    if (!outcome) outcome = co_await filter_content(session);
    if (!outcome) outcome = intake_->seal(std::time(nullptr));
    if (!outcome) outcome = co_await commit_to_spool();
    switch (outcome->kind) {
    case intake::Outcome::Kind::refused:
        co_return session.on_content_refused(std::move(outcome->reply));
    case intake::Outcome::Kind::failed:
    case intake::Outcome::Kind::out_of_space:
        co_return session.on_commit_failed(outcome->kind == intake::Outcome::Kind::out_of_space);
    case intake::Outcome::Kind::committed:
        break;
    }
    const std::string& id = outcome->queue_id;
    if (outcome->discarded) co_return session.on_committed(id);   // 250, and nothing to deliver
    const smtp::Transaction& tx = session.transaction();
    spdlog::info("queued id={} client={} helo={} from={} size={} nrcpt={} proto={}", id, client_,
                 session.helo_name(), tx.sender.to_string(), decoder_->size(), tx.recipients.size(),
                 session.protocol());
    ++messages_;
    services_.queue.submit(id);
    co_return session.on_committed(id);
}

asio::awaitable<bool> SmtpConnection::ask_filters(smtp::Session& session, smtp::Step& step) {
    using Action = filter::Decision::Action;
    const smtp::FilterStage stage = std::exchange(step.filter_stage, smtp::FilterStage::none);
    filter::Decision d;
    switch (stage) {
    case smtp::FilterStage::none: co_return true;
    case smtp::FilterStage::helo: d = co_await filters_->helo(session_facts(session)); break;
    case smtp::FilterStage::mail:
        next_queue_id_ = spool::make_queue_id();   // Postfix gives the queue id (macro i) from MAIL on
        milter_transaction_ = true;
        discard_message_ = false;
        d = co_await filters_->mail(session_facts(session), message_facts(session));
        break;
    case smtp::FilterStage::rcpt: d = co_await filters_->rcpt(session_facts(session), message_facts(session)); break;
    case smtp::FilterStage::data: d = co_await filters_->data(session_facts(session), message_facts(session)); break;
    }
    if (d.action == Action::discard) discard_message_ = true;   // accepted now, dropped at the end of data
    if (!filter::refuses(d)) co_return true;
    const smtp::Reply reply = filter::reply_for(d, config_->hostname);
    spdlog::warn("refused client={} by milter: {} {}", client_, reply.code, intake::loggable_line(d.reason));
    step = session.on_filter_refused(reply);
    if (d.action != Action::shutdown) co_return true;
    step.next = smtp::Next::close;
    co_return false;
}

bool SmtpConnection::rspamd_scans(const smtp::Session& session) const {
    // rspamd checks mail arriving from other servers; mail of logged-in users only when asked to.
    const bool inbound = settings_.role == config::ListenerRole::mx && session.authenticated_user().empty();
    return filters_ && filters_->has_rspamd() && (inbound || config_->rspamd.scan_submission);
}

asio::awaitable<std::optional<intake::Outcome>> SmtpConnection::filter_content(smtp::Session& session) {
    const bool scan = rspamd_scans(session);
    if (!filters_ || (!filters_->has_milters() && !scan)) co_return std::nullopt;
    std::optional<std::string> text = intake_->stored_message();
    if (!text) co_return intake_->seal(std::time(nullptr));   // the intake's failure: 451
    filter::FilteredMessage f =
        co_await filters_->content(session_facts(session), message_facts(session), std::move(*text), scan);
    milter_transaction_ = false;   // the milters saw the whole message: no SMFIC_ABORT owed
    if (std::exchange(discard_message_, false) && (f.decision.action == filter::Decision::Action::proceed ||
                                                   f.decision.action == filter::Decision::Action::accept)) {
        f.decision.action = filter::Decision::Action::discard;
        f.filter = "milter (before the end of data)";
    }
    co_return intake_->apply_filters(f, config_->hostname);
}

filter::SessionFacts SmtpConnection::session_facts(const smtp::Session& session) const {
    filter::SessionFacts f;
    f.helo = session.helo_name();
    f.tls_version = tls_version_;
    f.tls_cipher = tls_cipher_;
    if (tls_) f.tls_cipher_bits = SSL_get_cipher_bits(tls_->native_handle(), nullptr);
    f.auth_user = session.authenticated_user();
    return f;
}

filter::MessageFacts SmtpConnection::message_facts(const smtp::Session& session) const {
    filter::MessageFacts m;
    m.queue_id = intake_ ? intake_->queue_id() : next_queue_id_;
    const smtp::Transaction& tx = session.transaction();
    if (tx.sender.mailbox) m.sender = tx.sender.mailbox->to_string();
    for (const smtp::Mailbox& r : tx.recipients) m.recipients.push_back(r.to_string());
    if (tx.declared_size) m.sender_args.push_back("SIZE=" + std::to_string(*tx.declared_size));
    if (tx.body_8bit) m.sender_args.push_back("BODY=8BITMIME");
    if (tx.smtputf8) m.sender_args.push_back("SMTPUTF8");
    return m;
}

}  // namespace ferry::server
