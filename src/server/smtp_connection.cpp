#include "server/smtp_connection.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <ctime>

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

// Client text in a log line: printable ASCII only, cut short, so it cannot forge lines or flood the log.
std::string loggable(std::string_view text) {
    std::string out;
    for (const char c : text.substr(0, 64)) out.push_back(c > 0x20 && c < 0x7f ? c : '?');
    return out;
}

// A full disk or an exhausted quota: worth telling the client (452 4.3.1), it will pass.
bool out_of_space(std::error_code ec) {
    return ec == std::errc::no_space_on_device || ec == std::error_code(EDQUOT, std::system_category());
}

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
        spdlog::warn("auth failed client={} login={} failures={}", client_, loggable(creds.authcid),
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
    policy::LocalMailPolicy policy(services_.directory, settings_.sender_login_match);
    smtp::Session session(std::move(settings), policy);
    session_ = &session;   // for the content path (store_decoded); the session outlives every use

    // Implicit TLS (RFC 8314): the handshake comes before the greeting; a plaintext client gets nothing.
    if (settings_.role == config::ListenerRole::submissions) {
        if (!co_await start_tls()) co_return;
        session.on_tls_started();
    }
    session.greeting().render_to(out_);
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
        if (writer_ && session.state() != smtp::SessionState::bdat) end_message();
    }
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

asio::awaitable<bool> SmtpConnection::perform(smtp::Session& session, smtp::Step step) {
    using smtp::Next;
    for (;;) {
        if (step.next == Next::data && !begin_message(session, smtp::ContentDecoder::Mode::dot_stuffed))
            step = session.on_commit_failed(out_of_space(write_error_));   // 451/452, not 354: nowhere to put it
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
            if (keep && !decoder_) begin_message(session, smtp::ContentDecoder::Mode::raw);
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

bool SmtpConnection::begin_message(smtp::Session& session, smtp::ContentDecoder::Mode mode) {
    const config::Config& cfg = *config_;
    const smtp::Transaction& tx = session.transaction();
    decoder_.emplace(mode, cfg.limits.text_line_length, cfg.limits.message_size);
    decoded_.clear();
    write_error_.clear();
    hops_ = mime::HopCounter();
    splitter_.emplace(mime::kMaxHeaderSection);
    inbound_.reset();
    signer_.reset();

    spool::Envelope env;
    env.queue_id = spool::make_queue_id();
    env.arrival = std::time(nullptr);
    env.client = client_ip_;
    env.sender = tx.sender.mailbox ? tx.sender.mailbox->to_string() : std::string();
    for (const auto& r : tx.recipients)
        env.recipients.push_back(r.domain.empty() ? "postmaster@" + services_.directory.primary_domain() : r.to_string());
    env.smtputf8 = tx.smtputf8;
    env.body_8bit = tx.body_8bit;
    env.ret = std::string(smtp::to_string(tx.ret));
    env.envid = tx.envid;
    for (const auto& d : tx.recipient_dsn) env.recipient_dsn.push_back({d.notify, d.orcpt});
    env.addendum = true;   // filled at the end of data (make_addendum)
    try {
        writer_ = std::make_unique<spool::MessageWriter>(services_.spool, env);
    } catch (const std::exception& e) {
        spdlog::error("spool client={} cannot store message: {}", client_, e.what());
        const auto* sys = dynamic_cast<const std::system_error*>(&e);
        write_error_ = sys ? sys->code() : std::make_error_code(std::errc::io_error);
        return false;
    }
    const std::string date = util::rfc5322_date(env.arrival);
    const std::string received = smtp::received_header(smtp::ReceivedInfo{
        session.helo_name(), client_ip_, cfg.hostname, session.protocol(), env.queue_id,
        env.recipients.size() == 1 ? std::string_view(env.recipients.front()) : std::string_view(), date,
        tls_version_, tls_cipher_});
    append_to_spool(received);
    return true;
}

void SmtpConnection::append_to_spool(std::string_view content) {
    if (!writer_ || write_error_ || content.empty()) return;
    if (const auto ec = writer_->append(content)) {
        // The rest of the content is read and dropped; the client hears why at its end (451 or 452).
        spdlog::error("spool client={} id={} write failed: {}", client_, writer_->queue_id(), ec.message());
        write_error_ = ec;
        writer_->discard();   // give the space back now
    }
}

void SmtpConnection::store_decoded() {
    if (!hops_.header_ended()) hops_.feed(decoded_);
    if (splitter_ && splitter_->state() == mime::HeaderSplitter::State::header) {
        const std::string_view body = splitter_->feed(decoded_);
        if (splitter_->state() == mime::HeaderSplitter::State::too_large) {
            if (writer_) writer_->discard();   // refused at the end of data (552); give the space back now
        } else if (splitter_->state() == mime::HeaderSplitter::State::body) {
            header_complete(*session_);
            store_body(body);
        }
    } else if (splitter_ && splitter_->state() == mime::HeaderSplitter::State::body) {
        store_body(decoded_);
    }
    decoded_.clear();
}

void SmtpConnection::header_complete(const smtp::Session& session) {
    const config::Config& cfg = *config_;
    if (settings_.role == config::ListenerRole::mx && cfg.mailauth.verify && services_.resolver) {
        const smtp::Transaction& tx = session.transaction();
        inbound_ = std::make_unique<mailauth::InboundCheck>(
            mailauth::InboundFacts{client_ip_, session.helo_name(),
                                   tx.sender.mailbox ? tx.sender.mailbox->to_string() : std::string()},
            splitter_->header());
    }
    // RFC 8601 5: results under our name come only from us, whatever the listener (a user's mail client is not
    // a trusted MTA) and whether or not we add our own.
    std::size_t removed = 0;
    const std::string header = mailauth::remove_claimed_results(splitter_->header(), cfg.authserv_id(), removed);
    if (removed > 0)
        spdlog::info("client={} removed {} Authentication-Results field{} claiming {}", client_, removed,
                     removed == 1 ? "" : "s", cfg.authserv_id());
    const auto& keys = services_.signing_keys;
    if (!session.authenticated_user().empty() && cfg.dkim.sign && keys) {
        const smtp::Transaction& tx = session.transaction();
        signer_ = keys->signer_for(header, tx.sender.mailbox ? tx.sender.mailbox->to_string() : std::string());
    }
    append_to_spool(header);
    if (splitter_->has_body()) append_to_spool("\r\n");
}

void SmtpConnection::store_body(std::string_view body) {
    if (body.empty()) return;
    if (inbound_) inbound_->feed_body(body);
    if (signer_) signer_->feed_body(body);
    append_to_spool(body);
}

void SmtpConnection::end_message() {
    splitter_.reset();
    inbound_.reset();
    signer_.reset();
    writer_.reset();   // an uncommitted file is removed by the writer
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

asio::awaitable<std::error_code> SmtpConnection::commit_to_spool(spool::MessageWriter& writer) {
    auto executor = co_await asio::this_coro::executor;
    co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(std::error_code)>(
        [&](auto handler) {
            auto shared = std::make_shared<decltype(handler)>(std::move(handler));
            // The work guard keeps io_context::run() going while the committer thread holds the message.
            auto work = asio::make_work_guard(services_.io);
            services_.committer.submit(writer, [shared, work, executor](std::error_code ec) mutable {
                asio::post(executor, [shared, ec]() mutable { (*shared)(ec); });
                work.reset();
            });
        },
        asio::use_awaitable);
}

std::optional<std::string> SmtpConnection::from_not_owned(const smtp::Session& session) {
    const std::string& user = session.authenticated_user();
    if (user.empty() || !settings_.sender_login_match) return std::nullopt;
    const auto from = mime::header_field(splitter_ ? std::string_view(splitter_->header()) : std::string_view(), "From");
    if (!from) return std::nullopt;   // no claim made
    policy::LocalMailPolicy policy(services_.directory, true);
    const auto addresses = mime::address_list(*from);
    if (!addresses) return std::string("(unreadable)");
    for (const auto& a : *addresses) {
        smtp::Path path;
        path.mailbox = smtp::parse_mailbox(a);
        if (!path.mailbox || !policy.sender_allowed(path, user)) return a;
    }
    return std::nullopt;
}

asio::awaitable<std::optional<smtp::Reply>> SmtpConnection::make_addendum(const smtp::Session& session,
                                                                            spool::Addendum& addendum) {
    const config::Config& cfg = *config_;
    if (inbound_) {
        const double sample = std::uniform_real_distribution<double>(0.0, 1.0)(services_.random);
        mailauth::InboundSettings settings{cfg.authserv_id(), services_.public_suffixes, cfg.mailauth.dmarc_enforce};
        const mailauth::InboundVerdict v =
            co_await inbound_->finish(*services_.resolver, settings, sample, std::time(nullptr));
        spdlog::info("checked client={} from={} {}", client_, loggable(v.dmarc.from_domain), v.summary);
        const mailauth::Disposition d = v.dmarc.disposition;
        if (d == mailauth::Disposition::reject) {
            // RFC 7489 10.3: the rejection names DMARC, so the sender knows which policy refused the mail.
            spdlog::warn("refused client={} from={}: DMARC policy reject ({})", client_, loggable(v.dmarc.from_domain),
                         v.dmarc.reason);
            co_return smtp::Reply(550, "5.7.1",
                                  "Message rejected per DMARC policy of " + loggable(v.dmarc.policy_domain));
        }
        addendum.headers += v.field;
        if (d == mailauth::Disposition::quarantine) addendum.folder = "Junk";
    }
    const std::time_t now = std::time(nullptr);
    if (signer_) addendum.headers += signer_->finish(now);
    co_return std::nullopt;
}

asio::awaitable<smtp::Step> SmtpConnection::commit(smtp::Session& session) {
    if (splitter_ && splitter_->state() == mime::HeaderSplitter::State::header) {   // no empty line, no body
        splitter_->finish();
        if (splitter_->state() == mime::HeaderSplitter::State::body) header_complete(session);
    }
    if (splitter_ && splitter_->state() == mime::HeaderSplitter::State::too_large) {
        spdlog::warn("refused client={}: header section over {} octets", client_, mime::kMaxHeaderSection);
        co_return session.on_content_refused(smtp::Reply(
            552, "5.3.4", fmt::format("Message header section exceeds {} KiB", mime::kMaxHeaderSection / 1024)));
    }
    if (!writer_ || write_error_) co_return session.on_commit_failed(out_of_space(write_error_));
    if (hops_.hops() > mime::kMaxHops) {
        // RFC 5321 6.3: a message that has passed this many relays is going round in circles.
        spdlog::warn("refused client={} hops={}: mail loop (more than {} Received: fields)", client_, hops_.hops(),
                     mime::kMaxHops);
        co_return session.on_content_refused(smtp::Reply(
            554, "5.4.6", fmt::format("Too many hops ({} Received: fields): mail loop", hops_.hops())));
    }
    if (const auto bad = from_not_owned(session)) {
        spdlog::warn("refused client={} user={} from={}: header From not owned by the user", client_,
                     session.authenticated_user(), loggable(*bad));
        co_return session.on_content_refused(smtp::Reply(
            553, "5.7.1", "Header From: address " + loggable(*bad) + " not owned by user " + session.authenticated_user()));
    }
    spool::Addendum addendum;
    if (const auto refusal = co_await make_addendum(session, addendum)) co_return session.on_content_refused(*refusal);
    if (!writer_ || write_error_) co_return session.on_commit_failed(out_of_space(write_error_));
    writer_->set_addendum(std::move(addendum));
    const std::error_code ec = co_await commit_to_spool(*writer_);
    const std::string id = writer_->queue_id();
    if (ec) {
        spdlog::error("spool client={} id={} commit failed: {}", client_, id, ec.message());
        co_return session.on_commit_failed(out_of_space(ec));
    }
    const smtp::Transaction& tx = session.transaction();
    spdlog::info("queued id={} client={} helo={} from={} size={} nrcpt={} proto={}", id, client_,
                 session.helo_name(), tx.sender.to_string(), decoder_->size(), tx.recipients.size(),
                 session.protocol());
    ++messages_;
    services_.queue.submit(id);
    co_return session.on_committed(id);
}

}  // namespace ferry::server
