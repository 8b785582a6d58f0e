#include "filter/rspamd_client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/span_body.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <exception>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "filter/rspamd_reply.hpp"
#include "filter/rspamd_request.hpp"
#include "mime/header.hpp"

namespace ferry::filter {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// rspamd's reply header is a few hundred octets.
constexpr std::uint32_t kMaxReplyHeader = 16 * 1024;

using Request = http::request<http::span_body<const char>>;

std::string duration_text(std::chrono::milliseconds d) {
    return d.count() % 1000 == 0 ? fmt::format("{}s", d.count() / 1000) : fmt::format("{}ms", d.count());
}

// A pooled connection that rspamd has closed meanwhile (its keep-alive timeout) reads as end of file at once;
// one with bytes waiting is out of step with us. Either is dropped before a request is written to it.
bool still_usable(tcp::socket& socket) {
    char c;
    const ssize_t n = ::recv(socket.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

// The peer closed or reset the connection: on a reused connection with nothing of the reply read, rspamd closed
// it before it saw our request (a keep-alive race), and the request is safe to send again.
bool peer_closed(const boost::system::error_code& ec) {
    return ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
           ec == asio::error::broken_pipe || ec == http::error::partial_message;
}

// What every check shares: the settings and the idle connections. Held by shared_ptr: each check in flight keeps
// it, so a client destroyed while a request waits for rspamd leaves that request a pool to finish with.
struct PoolState {
    asio::any_io_executor executor;
    config::RspamdSettings settings;
    std::vector<beast::tcp_stream> idle;   // most recently used last
    bool closed = false;
};
using State = std::shared_ptr<PoolState>;

struct Outcome {
    std::string body;     // the 200 reply's body, when error is empty
    std::string error;    // why there is no usable reply
    bool retry = false;   // the request can go again on a fresh connection (see peer_closed)
};

ContentVerdict failure(const config::RspamdSettings& settings, const MessageFacts& message, const std::string& reason) {
    spdlog::warn("rspamd error: {} (queue id {})", reason, message.queue_id);
    ContentVerdict v;
    v.summary = "rspamd error: " + reason;
    v.decision.reason = v.summary;
    if (settings.on_error == config::FilterFailure::accept) {
        v.decision.action = Decision::Action::proceed;
        // Only our own words: the reason never carries client data. One line, whatever an error text holds.
        std::string value = "rspamd unavailable (" + reason + ")";
        for (char& c : value)
            if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
        v.header_edits.push_back(HeaderEdit{HeaderEdit::Kind::insert, 0, settings.unscanned_header, std::move(value)});
    } else {
        v.decision.action = Decision::Action::tempfail;
        v.decision.reply = smtp::Reply(451, "4.7.1", "Spam filter unavailable, try again later");
    }
    return v;
}

// A new connection to rspamd, within the request's deadline.
asio::awaitable<std::optional<beast::tcp_stream>> connect(const PoolState& pool, Clock::time_point deadline,
                                                          std::string& error) {
    const auto& s = pool.settings;
    std::vector<tcp::endpoint> endpoints;
    boost::system::error_code ec;
    const auto address = asio::ip::make_address(s.host, ec);
    if (!ec) {
        endpoints.emplace_back(address, s.port);
    } else {
        tcp::resolver resolver(pool.executor);
        asio::steady_timer timer(pool.executor, deadline);
        timer.async_wait([&resolver](boost::system::error_code e) {
            if (!e) resolver.cancel();
        });
        auto [rec, results] = co_await resolver.async_resolve(s.host, std::to_string(s.port), use_tuple);
        timer.cancel();
        if (rec) {
            error = rec == asio::error::operation_aborted ? fmt::format("timeout resolving {}", s.host)
                                                          : fmt::format("cannot resolve {}: {}", s.host, rec.message());
            co_return std::nullopt;
        }
        for (const auto& r : results) endpoints.push_back(r.endpoint());
    }
    beast::tcp_stream stream(pool.executor);
    stream.expires_at(deadline);
    auto [cec, ep] = co_await stream.async_connect(endpoints, use_tuple);
    if (cec) {
        error = cec == beast::error::timeout ? fmt::format("timeout connecting to {}:{}", s.host, s.port)
                                             : fmt::format("cannot connect to {}:{}: {}", s.host, s.port, cec.message());
        co_return std::nullopt;
    }
    co_return std::optional<beast::tcp_stream>(std::move(stream));
}

// One request and its reply on `stream`; the stream goes back to the pool when both sides keep it open.
asio::awaitable<Outcome> exchange(PoolState& pool, beast::tcp_stream stream, bool reused, Request& request,
                                  Clock::time_point deadline) {
    Outcome out;
    const auto timeout_text = [&] { return "timeout after " + duration_text(pool.settings.timeout); };
    stream.expires_at(deadline);
    auto [wec, written] = co_await http::async_write(stream, request, use_tuple);
    if (wec) {
        out.retry = reused && peer_closed(wec);
        out.error = wec == beast::error::timeout ? timeout_text() : "cannot send the request: " + wec.message();
        co_return out;
    }
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.header_limit(kMaxReplyHeader);
    parser.body_limit(kMaxRspamdReply);
    auto [rec, read] = co_await http::async_read(stream, buffer, parser, use_tuple);
    if (rec) {
        out.retry = reused && !parser.got_some() && buffer.size() == 0 && peer_closed(rec);
        if (rec == beast::error::timeout) out.error = timeout_text();
        else if (rec == http::error::body_limit) out.error = fmt::format("reply larger than {} octets", kMaxRspamdReply);
        else if (peer_closed(rec)) out.error = "connection closed before the reply was complete";
        else out.error = "bad reply: " + rec.message();
        co_return out;
    }
    auto& reply = parser.get();
    if (reply.result_int() != 200) {
        out.error = fmt::format("HTTP status {}", reply.result_int());
    } else {
        out.body = std::move(reply.body());
    }
    // Kept for the next request only when the exchange ended cleanly: both sides want it open and nothing more
    // arrived than this reply.
    if (out.error.empty() && reply.keep_alive() && buffer.size() == 0 && !pool.closed &&
        pool.idle.size() < pool.settings.max_connections) {
        stream.expires_never();
        pool.idle.push_back(std::move(stream));
    }
    co_return out;
}

// The most recently used idle connection that is still open.
std::optional<beast::tcp_stream> take_idle(PoolState& pool) {
    std::optional<beast::tcp_stream> out;
    while (!out && !pool.idle.empty()) {
        beast::tcp_stream candidate = std::move(pool.idle.back());
        pool.idle.pop_back();
        if (still_usable(candidate.socket())) out.emplace(std::move(candidate));
    }
    return out;
}

asio::awaitable<ContentVerdict> run_check(State pool, const ConnectionFacts& connection, const SessionFacts& session,
                                          const MessageFacts& message, std::string_view message_text) {
    const auto& s = pool->settings;
    const auto deadline = Clock::now() + s.timeout;
    Request request{http::verb::post, "/checkv2", 11};
    // RFC 9110 7.2: an IPv6 literal in brackets.
    const bool v6 = s.host.find(':') != std::string::npos;
    request.set(http::field::host, v6 ? fmt::format("[{}]:{}", s.host, s.port) : fmt::format("{}:{}", s.host, s.port));
    request.set(http::field::connection, "keep-alive");
    for (const auto& h : rspamd_request_headers(connection, session, message)) request.insert(h.name, h.value);
    // The message as stored, byte for byte: rspamd sees what will be delivered.
    request.body() = boost::span<const char>(message_text.data(), message_text.size());
    request.prepare_payload();

    Outcome outcome;
    for (int attempt = 0; attempt < 2; ++attempt) {
        // A retry always takes a fresh connection: the pool may hold more connections rspamd has dropped.
        std::optional<beast::tcp_stream> kept = attempt == 0 ? take_idle(*pool) : std::nullopt;
        if (kept) {
            outcome = co_await exchange(*pool, std::move(*kept), true, request, deadline);
        } else {
            std::string error;
            std::optional<beast::tcp_stream> fresh = co_await connect(*pool, deadline, error);
            if (!fresh) co_return failure(s, message, error);
            outcome = co_await exchange(*pool, std::move(*fresh), false, request, deadline);
        }
        if (!outcome.retry) break;
        spdlog::debug("rspamd: a kept connection was closed under us ({}); sending again on a new one", outcome.error);
    }
    if (!outcome.error.empty()) co_return failure(s, message, outcome.error);

    const std::size_t fields = mime::header_fields(mime::header_section(message_text)).size();
    RspamdReply parsed = parse_rspamd_reply(outcome.body, s, fields);
    if (!parsed.ok()) co_return failure(s, message, parsed.error);
    co_return std::move(parsed.verdict);
}

}  // namespace

struct RspamdClient::Pool {
    State state;
};

RspamdClient::RspamdClient(asio::any_io_executor executor, const config::RspamdSettings& settings)
    : pool_(std::make_unique<Pool>()) {
    pool_->state = std::make_shared<PoolState>();
    pool_->state->executor = std::move(executor);
    pool_->state->settings = settings;
}

RspamdClient::~RspamdClient() { close(); }

asio::awaitable<ContentVerdict> RspamdClient::check(const ConnectionFacts& connection, const SessionFacts& session,
                                                    const MessageFacts& message, std::string_view message_text) {
    // Nothing may escape to the session: a failure here is rspamd's failure, and on_error decides.
    State state = pool_->state;
    std::string reason;
    try {
        co_return co_await run_check(state, connection, session, message, message_text);
    } catch (const std::exception& e) {
        reason = fmt::format("internal error: {}", e.what());
    } catch (...) {
        reason = "internal error";
    }
    co_return failure(state->settings, message, reason);
}

void RspamdClient::close() {
    if (!pool_ || !pool_->state) return;
    auto& state = *pool_->state;
    state.closed = true;
    for (auto& s : state.idle) {
        boost::system::error_code ignored;
        s.socket().shutdown(tcp::socket::shutdown_both, ignored);
        s.socket().close(ignored);
    }
    state.idle.clear();
}

}  // namespace ferry::filter
