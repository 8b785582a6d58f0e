#include "delivery/smtp_client.hpp"

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>

#include "accounts/sasl.hpp"

// g++ 12 reports Asio's coroutine frames here as freed by a mismatched operator delete: the frame's own
// operator new/delete pair (a thread-local recycling allocator) seen through inlining. ASan's
// alloc-dealloc-mismatch check, which `make sanitize` runs over these paths, finds no such mismatch.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace ferry::delivery {

using asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr std::size_t kContentBlock = 64 * 1024;

// RFC 3463 code for a reply that carries none: the class from the reply code, the detail unknown.
std::string status_of(const smtp::Reply& r) {
    if (!r.enhanced.empty()) return r.enhanced;
    return r.code >= 500 ? "5.0.0" : r.code >= 400 ? "4.0.0" : "2.0.0";
}

// One line for logs and DSNs: "550 5.1.1 text" (multi-line replies joined with spaces).
std::string reply_line(const smtp::Reply& r) {
    std::string text;
    for (const auto& l : r.lines) {
        if (!text.empty()) text += ' ';
        text += l;
    }
    return r.enhanced.empty() ? fmt::format("{} {}", r.code, text) : fmt::format("{} {} {}", r.code, r.enhanced, text);
}

bool has_8bit_octet(int fd, off_t offset, std::size_t length) {
    char buf[kContentBlock];
    while (length > 0) {
        const ssize_t n = ::pread(fd, buf, std::min(length, sizeof buf), offset);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        for (ssize_t i = 0; i < n; ++i)
            if (static_cast<unsigned char>(buf[i]) >= 0x80) return true;
        offset += n;
        length -= static_cast<std::size_t>(n);
    }
    return false;
}

}  // namespace

DeliveryResult temporary_result(std::string status, std::string why) {
    DeliveryResult r;
    r.kind = DeliveryResult::Kind::temporary;
    r.status = std::move(status);
    r.diagnostic = std::move(why);
    return r;
}

DeliveryResult permanent_result(std::string status, std::string why) {
    DeliveryResult r = temporary_result(std::move(status), std::move(why));
    r.kind = DeliveryResult::Kind::permanent;
    return r;
}

SmtpClient::SmtpClient(asio::any_io_executor executor, const ClientSettings& settings)
    : executor_(executor),
      settings_(settings),
      stream_(executor, *settings.tls),
      deadline_(executor) {}

SmtpClient::~SmtpClient() {
    error_code ignored;
    deadline_.cancel();
    stream_.next_layer().close(ignored);
}

std::string SmtpClient::peer() const { return fmt::format("{}[{}]:{}", host_, address_, port_); }

std::string SmtpClient::tls_summary() const {
    if (!tls_) return "none";
    SSL* ssl = const_cast<asio::ssl::stream<tcp::socket>&>(stream_).native_handle();
    return fmt::format("{} cipher={} verified={}", SSL_get_version(ssl), SSL_get_cipher_name(ssl),
                       verified_ ? "yes" : "no");
}

void SmtpClient::arm(std::chrono::milliseconds timeout) {
    timed_out_ = false;
    deadline_.expires_after(timeout);
    deadline_.async_wait([this](error_code ec) {
        if (ec) return;   // cancelled or re-armed: `this` may be gone, so nothing is touched
        timed_out_ = true;
        error_code ignored;
        stream_.next_layer().cancel(ignored);
    });
}

void SmtpClient::disarm() { deadline_.cancel(); }

void SmtpClient::abort() {
    broken_ = true;
    error_code ignored;
    stream_.next_layer().close(ignored);
}

SmtpClient::Lost SmtpClient::lose(std::string why) {
    broken_ = true;
    error_code ignored;
    stream_.next_layer().close(ignored);
    return Lost{std::move(why)};
}

asio::awaitable<SmtpClient::ReplyOrLost> SmtpClient::read_reply(std::chrono::milliseconds timeout) {
    arm(timeout);
    char buf[4096];
    for (;;) {
        const auto parsed = smtp::parse_server_reply(input_);
        if (parsed.status == smtp::ServerReplyParse::Status::reply) {
            input_.erase(0, parsed.consumed);
            disarm();
            co_return parsed.reply;
        }
        if (parsed.status == smtp::ServerReplyParse::Status::protocol_error) {
            disarm();
            co_return lose("protocol error from " + peer() + ": " + parsed.error);
        }
        error_code ec;
        std::size_t n = 0;
        if (tls_)
            n = co_await stream_.async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
        else
            n = co_await stream_.next_layer().async_read_some(asio::buffer(buf),
                                                              asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
            disarm();
            co_return lose(timed_out_
                               ? fmt::format("timeout after {}s waiting for a reply from {}",
                                             std::chrono::duration_cast<std::chrono::seconds>(timeout).count(), peer())
                               : fmt::format("connection to {} lost: {}", peer(), ec.message()));
        }
        input_.append(buf, n);
    }
}

asio::awaitable<std::optional<SmtpClient::Lost>> SmtpClient::write(std::string data,
                                                                   std::chrono::milliseconds timeout) {
    arm(timeout);
    error_code ec;
    if (tls_)
        co_await asio::async_write(stream_, asio::buffer(data), asio::redirect_error(asio::use_awaitable, ec));
    else
        co_await asio::async_write(stream_.next_layer(), asio::buffer(data),
                                   asio::redirect_error(asio::use_awaitable, ec));
    disarm();
    if (ec)
        co_return lose(timed_out_ ? fmt::format("timeout sending to {}", peer())
                                  : fmt::format("connection to {} lost while sending: {}", peer(), ec.message()));
    co_return std::nullopt;
}

asio::awaitable<SmtpClient::ReplyOrLost> SmtpClient::command(std::string line) {
    if (auto lost = co_await write(line + "\r\n", settings_.command_timeout)) co_return std::move(*lost);
    co_return co_await read_reply(settings_.command_timeout);
}

DeliveryResult SmtpClient::from_reply(const smtp::Reply& r) const {
    DeliveryResult out;
    out.kind = r.code < 400   ? DeliveryResult::Kind::sent
               : r.code < 500 ? DeliveryResult::Kind::temporary
                              : DeliveryResult::Kind::permanent;
    out.status = status_of(r);
    out.diagnostic = reply_line(r);
    out.from_server = true;
    out.remote_mta = host_;
    return out;
}

asio::awaitable<std::optional<DeliveryResult>> SmtpClient::open(std::string host, std::string address,
                                                                std::uint16_t port, bool use_tls) {
    host_ = std::move(host);
    address_ = std::move(address);
    port_ = port;
    error_code ec;
    const auto ip = asio::ip::make_address(address_, ec);
    if (ec) co_return temporary_result("4.4.0", fmt::format("bad address {} for {}", address_, host_));
    // A configured source address for this family: bound before the connect, so remote servers (and their SPF
    // checks) see that address whatever route the kernel picks. async_connect keeps a socket that is open.
    if (const auto& source = ip.is_v6() ? settings_.source_v6 : settings_.source_v4) {
        tcp::socket& socket = stream_.next_layer();
        socket.open(ip.is_v6() ? tcp::v6() : tcp::v4(), ec);
        if (!ec) socket.bind(tcp::endpoint(*source, 0), ec);
        if (ec) {
            error_code ignored;
            socket.close(ignored);
            co_return temporary_result("4.3.0", fmt::format("cannot bind to source address {} to connect to {}: {}",
                                                            source->to_string(), peer(), ec.message()));
        }
    }
    arm(settings_.connect_timeout);
    co_await stream_.next_layer().async_connect(tcp::endpoint(ip, port), asio::redirect_error(asio::use_awaitable, ec));
    disarm();
    if (ec) {
        error_code ignored;
        stream_.next_layer().close(ignored);
        co_return temporary_result("4.4.1", timed_out_ ? fmt::format("connect to {} timed out", peer())
                                                       : fmt::format("connect to {}: {}", peer(), ec.message()));
    }
    open_ = true;
    co_return co_await greet_and_hello(use_tls);
}

asio::awaitable<std::optional<DeliveryResult>> SmtpClient::greet_and_hello(bool use_tls) {
    // A connection lost before the session is ready: this host failed, the next one may do better.
    auto lost = [](const Lost& l) { return temporary_result("4.4.2", l.why); };
    auto refused = [this](const smtp::Reply& r, std::string_view what) {
        // A 5xx greeting or EHLO is this host's refusal, not the recipient's (RFC 5321 3.1): try the next MX.
        DeliveryResult out = from_reply(r);
        out.kind = DeliveryResult::Kind::temporary;
        out.diagnostic = fmt::format("{} {} refused: {}", peer(), what, out.diagnostic);
        broken_ = true;
        return out;
    };
    if (settings_.implicit_tls)   // RFC 8314 3.3: the handshake comes first, the greeting inside TLS
        if (auto failed = co_await handshake()) co_return failed;
    const ReplyOrLost greeting = co_await read_reply(settings_.command_timeout);
    if (greeting.lost()) co_return lost(greeting.loss());
    if (greeting->code != 220) co_return refused(*greeting, "greeting");
    auto hello = [&]() -> asio::awaitable<std::optional<DeliveryResult>> {
        const ReplyOrLost ehlo = co_await command("EHLO " + settings_.helo_name);
        if (ehlo.lost()) co_return lost(ehlo.loss());
        if (ehlo->code == 250) {
            caps_ = smtp::parse_capabilities(*ehlo);
            co_return std::nullopt;
        }
        if (ehlo->code < 500) co_return refused(*ehlo, "EHLO");
        // RFC 5321 3.2: a server that does not know EHLO gets HELO, and no extensions.
        const ReplyOrLost helo = co_await command("HELO " + settings_.helo_name);
        if (helo.lost()) co_return lost(helo.loss());
        if (helo->code != 250) co_return refused(*helo, "HELO");
        caps_ = {};
        co_return std::nullopt;
    };
    if (auto failed = co_await hello()) co_return failed;

    if (caps_.starttls && use_tls && !tls_) {
        const ReplyOrLost r = co_await command("STARTTLS");
        if (r.lost()) co_return lost(r.loss());
        if (r->code == 220) {
            if (!input_.empty()) {
                // Bytes before our ClientHello: a broken (or tampered) TLS start, like a failed handshake, so
                // the next attempt to this address goes without TLS too.
                tls_failed_ = true;
                co_return lost(lose(fmt::format("{} sent data after its STARTTLS reply", peer())));
            }
            if (auto failed = co_await handshake()) co_return failed;
            if (auto failed = co_await hello()) co_return failed;
        } else if (settings_.require_tls) {
            co_return refused(*r, "STARTTLS");
        }
    }
    if (settings_.require_tls && !tls_) {
        broken_ = true;
        co_return temporary_result("4.7.4", fmt::format("{} offers no STARTTLS, and TLS is required", peer()));
    }
    if (!settings_.auth_user.empty()) co_return co_await authenticate();
    co_return std::nullopt;
}

asio::awaitable<std::optional<DeliveryResult>> SmtpClient::handshake() {
    SSL* ssl = stream_.native_handle();
    SSL_set_tlsext_host_name(ssl, host_.c_str());
    SSL_set1_host(ssl, host_.c_str());   // the verification result then covers the name too
    arm(settings_.command_timeout);
    error_code ec;
    co_await stream_.async_handshake(asio::ssl::stream_base::client, asio::redirect_error(asio::use_awaitable, ec));
    disarm();
    if (ec) {
        tls_failed_ = true;
        broken_ = true;
        error_code ignored;
        stream_.next_layer().close(ignored);
        co_return temporary_result("4.7.5", fmt::format("TLS handshake with {} failed: {}", peer(),
                                                        timed_out_ ? "timeout" : ec.message()));
    }
    tls_ = true;
    const long verify = SSL_get_verify_result(ssl);
    verified_ = verify == X509_V_OK;
    if (settings_.verify_certificate && !verified_) {
        broken_ = true;
        error_code ignored;
        stream_.next_layer().close(ignored);
        co_return permanent_result("5.7.5", fmt::format("the certificate of {} does not verify: {}", peer(),
                                                        X509_verify_cert_error_string(verify)));
    }
    co_return std::nullopt;
}

asio::awaitable<std::optional<DeliveryResult>> SmtpClient::authenticate() {
    auto offers = [this](std::string_view m) {
        return std::find(caps_.auth.begin(), caps_.auth.end(), m) != caps_.auth.end();
    };
    std::optional<ReplyOrLost> r;
    if (offers("PLAIN")) {
        std::string token;
        token += '\0';
        token += settings_.auth_user;
        token += '\0';
        token += settings_.auth_password;
        r = co_await command("AUTH PLAIN " + accounts::base64_encode(token));
    } else if (offers("LOGIN")) {
        r = co_await command("AUTH LOGIN");
        if (!r->lost() && (*r)->code == 334) r = co_await command(accounts::base64_encode(settings_.auth_user));
        if (!r->lost() && (*r)->code == 334) r = co_await command(accounts::base64_encode(settings_.auth_password));
    } else {
        broken_ = true;
        co_return temporary_result("4.7.0", fmt::format("{} offers neither AUTH PLAIN nor LOGIN", peer()));
    }
    if (r->lost()) co_return temporary_result("4.4.2", r->loss().why);
    if ((*r)->code == 235) co_return std::nullopt;
    // Wrong credentials are the operator's to fix: the mail waits rather than bounces.
    DeliveryResult out = from_reply(**r);
    out.kind = DeliveryResult::Kind::temporary;
    out.diagnostic = fmt::format("{} refused AUTH as {}: {}", peer(), settings_.auth_user, out.diagnostic);
    broken_ = true;
    co_return out;
}

asio::awaitable<std::vector<DeliveryResult>> SmtpClient::send(const OutboundMessage& m,
                                                              const std::vector<OutboundRecipient>& recipients) {
    const spool::Envelope& e = *m.envelope;
    auto all = [&](const DeliveryResult& r) { return std::vector<DeliveryResult>(recipients.size(), r); };
    // What the message needs that the server must offer; refused here, before MAIL, as Postfix does.
    const std::size_t size = m.prefix.size() + m.content_length;
    if (caps_.size && size > *caps_.size)
        co_return all(permanent_result("5.3.4", fmt::format("message size {} exceeds the limit of {} ({})",
                                                            size, *caps_.size, peer())));
    if (e.smtputf8 && !caps_.smtputf8)
        co_return all(permanent_result("5.6.7", fmt::format("the message needs SMTPUTF8, which {} does not offer", peer())));
    const bool send_8bit = e.body_8bit && caps_.eight_bit_mime;
    if (e.body_8bit && !caps_.eight_bit_mime && has_8bit_octet(m.fd, m.content_offset, m.content_length))
        co_return all(permanent_result("5.6.3", fmt::format("the message has 8-bit content and {} does not offer 8BITMIME",
                                                            peer())));

    std::vector<DeliveryResult> results(recipients.size());
    std::vector<bool> decided(recipients.size(), false);
    // The connection failed midway: every recipient not yet final is a temporary failure.
    auto lost = [&](const Lost& l) {
        for (std::size_t i = 0; i < recipients.size(); ++i)
            if (!decided[i]) results[i] = temporary_result("4.4.2", l.why);
        return results;
    };
    if (dirty_) {
        const ReplyOrLost rset = co_await command("RSET");
        if (rset.lost()) co_return lost(rset.loss());
        dirty_ = false;
    }
    dirty_ = true;
    std::string mail = fmt::format("MAIL FROM:<{}>", e.sender);
    if (caps_.size) mail += fmt::format(" SIZE={}", size);
    if (send_8bit) mail += " BODY=8BITMIME";
    if (e.smtputf8) mail += " SMTPUTF8";
    if (caps_.dsn) {
        if (e.ret != dsn::Ret::unspecified) mail += fmt::format(" RET={}", dsn::to_string(e.ret));
        if (!e.envid.empty()) mail += " ENVID=" + e.envid;
    }
    std::vector<std::string> rcpts;
    for (const auto& r : recipients) {
        std::string line = fmt::format("RCPT TO:<{}>", r.address);
        if (caps_.dsn) {
            if (!r.notify.empty()) line += " NOTIFY=" + r.notify;
            if (!r.orcpt.empty()) line += " ORCPT=" + r.orcpt;
        }
        rcpts.push_back(std::move(line));
    }

    smtp::Reply mail_reply, data_reply;
    std::vector<smtp::Reply> rcpt_replies;
    if (caps_.pipelining) {
        // RFC 2920: MAIL, every RCPT and DATA in one write; the replies come back in order.
        std::string batch = mail + "\r\n";
        for (const auto& l : rcpts) batch += l + "\r\n";
        batch += "DATA\r\n";
        if (auto failed = co_await write(std::move(batch), settings_.command_timeout)) co_return lost(*failed);
        const std::size_t replies = rcpts.size() + 2;   // MAIL, each RCPT, DATA
        for (std::size_t i = 0; i < replies; ++i) {
            ReplyOrLost r = co_await read_reply(settings_.command_timeout);
            if (r.lost()) co_return lost(r.loss());
            if (i == 0) mail_reply = *r;
            else if (i + 1 == replies) data_reply = *r;
            else rcpt_replies.push_back(*r);
        }
    } else {
        const ReplyOrLost r = co_await command(mail);
        if (r.lost()) co_return lost(r.loss());
        mail_reply = *r;
        if (mail_reply.code == 250)
            for (const auto& l : rcpts) {
                const ReplyOrLost rr = co_await command(l);
                if (rr.lost()) co_return lost(rr.loss());
                rcpt_replies.push_back(*rr);
            }
    }

    if (mail_reply.code != 250) {
        if (caps_.pipelining && data_reply.code == 354)
            co_return lost(lose(fmt::format("{} accepted DATA after refusing MAIL", peer())));
        co_return all(from_reply(mail_reply));
    }
    bool any = false;
    for (std::size_t i = 0; i < recipients.size(); ++i) {
        if (rcpt_replies[i].code == 250 || rcpt_replies[i].code == 251) {
            any = true;
            continue;
        }
        results[i] = from_reply(rcpt_replies[i]);
        decided[i] = true;
    }
    if (!any) {
        // Nothing accepted. A pipelined DATA the server took anyway is ended with an empty message,
        // which it must refuse for having no recipients (RFC 2920 3.1).
        if (caps_.pipelining && data_reply.code == 354) {
            // Every recipient is decided: a loss here changes no result.
            const std::optional<Lost> failed = co_await write(".\r\n", settings_.command_timeout);
            if (!failed) co_await read_reply(settings_.data_timeout);
        }
        co_return results;
    }
    if (!caps_.pipelining) {
        const ReplyOrLost r = co_await command("DATA");
        if (r.lost()) co_return lost(r.loss());
        data_reply = *r;
    }
    if (data_reply.code != 354) {
        for (std::size_t i = 0; i < recipients.size(); ++i)
            if (!decided[i]) results[i] = from_reply(data_reply);
        co_return results;
    }
    if (auto failed = co_await send_content(m)) co_return lost(*failed);
    const ReplyOrLost final_reply = co_await read_reply(settings_.data_timeout);
    if (final_reply.lost()) co_return lost(final_reply.loss());
    dirty_ = false;
    for (std::size_t i = 0; i < recipients.size(); ++i)
        if (!decided[i]) results[i] = from_reply(*final_reply);
    co_return results;
}

// The content, dot-stuffed (RFC 5321 4.5.2) as it is read from the spool, then the end of data.
asio::awaitable<std::optional<SmtpClient::Lost>> SmtpClient::send_content(const OutboundMessage& m) {
    // The prefix is header fields Ferry wrote: no line of it starts with '.', so it needs no stuffing.
    std::string out = m.prefix;
    out.reserve(out.size() + kContentBlock + kContentBlock / 8);
    char buf[kContentBlock];
    bool line_start = true;
    off_t offset = m.content_offset;
    std::size_t left = m.content_length;
    char last = '\n';
    while (left > 0) {
        const ssize_t n = ::pread(m.fd, buf, std::min(left, sizeof buf), offset);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0)
            co_return lose(fmt::format("cannot read spool file of {}: {}", m.envelope->queue_id,
                                       n < 0 ? std::strerror(errno) : "short file"));
        for (ssize_t i = 0; i < n; ++i) {
            if (line_start && buf[i] == '.') out += '.';
            out += buf[i];
            line_start = buf[i] == '\n';
        }
        last = buf[n - 1];
        offset += n;
        left -= static_cast<std::size_t>(n);
        if (out.size() >= kContentBlock) {
            if (auto failed = co_await write(std::move(out), settings_.data_timeout)) co_return failed;
            out.clear();
        }
    }
    if (last != '\n') out += "\r\n";   // BDAT content need not end with a line break; DATA's must
    out += ".\r\n";
    co_return co_await write(std::move(out), settings_.data_timeout);
}

asio::awaitable<void> SmtpClient::quit() {
    if (usable()) {
        // A loss now changes nothing: the mail is decided.
        const std::optional<Lost> failed = co_await write("QUIT\r\n", settings_.command_timeout);
        if (!failed) co_await read_reply(settings_.command_timeout);
    }
    broken_ = true;
    error_code ignored;
    if (tls_) {
        // No close_notify wait: the mail is decided, and a peer that never answers must not hold us.
        stream_.next_layer().shutdown(tcp::socket::shutdown_both, ignored);
    }
    stream_.next_layer().close(ignored);
}

}  // namespace ferry::delivery
