// The milter driver: one connection to one milter for one SMTP session, on the session's event loop. The wire
// format is filter/milter_codec; this file decides what to send when, reads the answers with deadlines and
// turns failures into the configured default_action. Behaviour follows Postfix's milter8.c where the protocol
// leaves a choice (macros, header splitting, skipped stages, what a reject at connect/HELO means later).
#include "filter/milter_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <array>

#include "filter/milter_codec.hpp"
#include "util/ascii.hpp"

namespace ferry::filter {

namespace asio = boost::asio;
using boost::system::error_code;
using namespace milter;

namespace {

// What we offer at negotiation: every action we can apply, and every protocol step we can honour.
constexpr std::uint32_t kOfferedActions = SMFIF_ADDHDRS | SMFIF_CHGBODY | SMFIF_ADDRCPT | SMFIF_DELRCPT |
                                          SMFIF_CHGHDRS | SMFIF_QUARANTINE | SMFIF_CHGFROM | SMFIF_ADDRCPT_PAR |
                                          SMFIF_SETSYMLIST;
constexpr std::uint32_t kOfferedProtocol =
    SMFIP_NOCONNECT | SMFIP_NOHELO | SMFIP_NOMAIL | SMFIP_NORCPT | SMFIP_NOBODY | SMFIP_NOHDRS | SMFIP_NOEOH |
    SMFIP_NOUNKNOWN | SMFIP_NODATA | SMFIP_SKIP | SMFIP_HDR_LEADSPC | SMFIP_NR_HDR | SMFIP_NR_CONN | SMFIP_NR_HELO |
    SMFIP_NR_MAIL | SMFIP_NR_RCPT | SMFIP_NR_DATA | SMFIP_NR_UNKN | SMFIP_NR_EOH | SMFIP_NR_BODY;

std::string domain_of(std::string_view address) {
    const auto at = address.rfind('@');
    return at == std::string_view::npos ? std::string() : std::string(address.substr(at + 1));
}

// "{name}" and "name" are the same macro (libmilter accepts both spellings for one-letter names).
std::string_view bare_macro_name(std::string_view name) {
    if (name.size() >= 2 && name.front() == '{' && name.back() == '}') return name.substr(1, name.size() - 2);
    return name;
}

struct HeaderField {
    std::string name, value;
};

// The header section split as Postfix hands it to a milter: the name up to the colon (trailing blanks dropped),
// the value after it without its first space (Sendmail eats one space, not a tab) unless the milter asked for
// SMFIP_HDR_LEADSPC, folded lines joined by LF (Sendmail sends multi-line headers separated by newline).
// `body` gets the rest after the empty line (or after the first line that is no header field).
std::vector<HeaderField> split_header(std::string_view text, bool leading_space, std::string_view& body) {
    std::vector<HeaderField> fields;
    std::size_t at = 0;
    while (at < text.size()) {
        std::size_t eol = text.find('\n', at);
        std::size_t next = eol == std::string_view::npos ? text.size() : eol + 1;
        std::string_view line = text.substr(at, next - at);
        std::string_view content = line;
        if (!content.empty() && content.back() == '\n') content.remove_suffix(1);
        if (!content.empty() && content.back() == '\r') content.remove_suffix(1);
        if (content.empty()) {   // the empty line: the body follows
            at = next;
            break;
        }
        if ((content[0] == ' ' || content[0] == '\t') && !fields.empty()) {
            fields.back().value += '\n';
            fields.back().value += content;
            at = next;
            continue;
        }
        const std::size_t colon = content.find(':');
        if (colon == std::string_view::npos || colon == 0) break;   // not a field: the body starts here
        std::string_view name = content.substr(0, colon);
        while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
        if (name.empty()) break;
        std::string_view value = content.substr(colon + 1);
        if (!leading_space && !value.empty() && value.front() == ' ') value.remove_prefix(1);
        fields.push_back({std::string(name), std::string(value)});
        at = next;
    }
    body = text.substr(std::min(at, text.size()));
    return fields;
}

}  // namespace

struct MilterClient::State {
    enum class Mode {
        fresh,         // not connected yet
        ready,         // negotiated; stages go to the milter
        accepted,      // accepted the session (or failed with default_action accept): out of the session
        sticky,        // answered for the session (reject/tempfail at connect or HELO, shutdown, failure
                       // with default_action tempfail): every later call gets `sticky_decision`
        closed,        // quit
    };

    asio::any_io_executor executor;
    config::MilterSettings settings;
    std::string name;
    asio::generic::stream_protocol::socket socket;
    ReplyDecoder decoder;
    Mode mode = Mode::fresh;
    Decision sticky_decision;
    bool message_accepted = false;         // accepted (or discarded) the current message: skip to its end
    bool message_discarded = false;        // discarded it: the end of data says so again
    bool skip_headers = false;             // SMFIR_SKIP during the header stage of this message
    std::optional<std::string> quarantine; // SMFIR_QUARANTINE before the end of message: applied at the end
    std::uint32_t actions = 0;
    std::uint32_t protocol = 0;
    std::array<std::optional<std::vector<std::string>>, kMacroStages> macro_lists;
    ConnectionFacts connection;
    std::string pending;                   // commands written together with the next one (no-reply stages)

    State(asio::any_io_executor ex, const config::MilterSettings& s)
        : executor(ex), settings(s), name(s.name.empty() ? s.address : s.name), socket(ex) {}

    bool connected() const { return mode == Mode::ready; }

    // The milter is out, for the reason given: default_action decides what that means for the session.
    Decision fail(const std::string& why) {
        error_code ignored;
        socket.close(ignored);
        pending.clear();
        Decision d;
        d.reason = fmt::format("milter {} failed: {}", name, why);
        if (settings.default_action == config::FilterFailure::accept) {
            spdlog::warn("milter {}: {}; default_action accept: skipped for the rest of the session", name, why);
            mode = Mode::accepted;
            d.action = Decision::Action::proceed;
        } else {
            spdlog::warn("milter {}: {}; default_action tempfail: 4xx for the rest of the session", name, why);
            mode = Mode::sticky;
            d.action = Decision::Action::tempfail;
            sticky_decision = d;
        }
        return d;
    }

    // Outside the milter's view (accepted, failed, closed): what a stage call answers without asking.
    std::optional<Decision> answer_without_asking() const {
        switch (mode) {
            case Mode::ready: return std::nullopt;
            case Mode::sticky: return sticky_decision;
            default: return Decision{Decision::Action::proceed, std::nullopt, "milter not active"};
        }
    }

    // Writes `pending` and `data`; an error text on failure.
    asio::awaitable<std::optional<std::string>> write(std::string data, std::chrono::milliseconds timeout) {
        using namespace asio::experimental::awaitable_operators;
        std::string out = std::move(pending);
        pending.clear();
        out += data;
        asio::steady_timer timer(executor, timeout);
        error_code ec, timer_ec;
        auto done = co_await (asio::async_write(socket, asio::buffer(out), asio::redirect_error(asio::use_awaitable, ec)) ||
                              timer.async_wait(asio::redirect_error(asio::use_awaitable, timer_ec)));
        if (done.index() == 1) co_return fmt::format("timeout after {} ms sending", timeout.count());
        if (ec) co_return "write: " + ec.message();
        co_return std::nullopt;
    }

    // The next reply but progress, which restarts the wait (SMFIR_PROGRESS); an error text on failure.
    asio::awaitable<std::pair<std::optional<Reply>, std::string>> read(std::chrono::milliseconds timeout) {
        using namespace asio::experimental::awaitable_operators;
        std::array<char, 16384> buf;
        for (;;) {
            Decoded d = decoder.next();
            if (d.status == Decoded::Status::error) co_return std::pair{std::nullopt, "malformed reply: " + d.error};
            if (d.status == Decoded::Status::reply) {
                if (d.reply.kind == Reply::Kind::progress) {
                    // Progress restarts the wait: the loop below gets a new timer.
                    continue;
                }
                co_return std::pair{std::optional<Reply>(std::move(d.reply)), std::string()};
            }
            asio::steady_timer timer(executor, timeout);
            error_code ec, timer_ec;
            std::size_t n = 0;
            auto done = co_await (
                socket.async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec)) ||
                timer.async_wait(asio::redirect_error(asio::use_awaitable, timer_ec)));
            if (done.index() == 1)
                co_return std::pair{std::nullopt, fmt::format("timeout after {} ms waiting for a reply", timeout.count())};
            n = std::get<0>(done);
            if (ec == asio::error::eof) co_return std::pair{std::nullopt, std::string("connection closed by the milter")};
            if (ec) co_return std::pair{std::nullopt, "read: " + ec.message()};
            decoder.feed(std::string_view(buf.data(), n));
        }
    }

    // The macros of one stage as Postfix sends them by default (milter_*_macros), or only those the milter
    // asked for with SMFIR_SETSYMLIST. Undefined macros are left out.
    Macros macros_for(std::uint32_t stage, const SessionFacts* session, const MessageFacts* message,
                      std::string_view rcpt) const {
        Macros m;
        auto add = [&](std::string n, std::string v) { m.emplace_back(std::move(n), std::move(v)); };
        auto queue_id = [&] {
            if (message && !message->queue_id.empty()) add("i", message->queue_id);
        };
        switch (stage) {
            case SMFIM_CONNECT: {
                const std::string client_name = connection.client_name.empty() ? "unknown" : connection.client_name;
                add("j", connection.hostname);
                add("{daemon_name}", connection.listener);
                add("v", "Ferry");
                add("{client_addr}", connection.client_ip);
                add("{client_port}", std::to_string(connection.client_port));
                add("{client_name}", client_name);
                add("_", fmt::format("{} [{}]", client_name, connection.client_ip));
                break;
            }
            case SMFIM_HELO:
                if (session && !session->tls_version.empty()) {
                    add("{tls_version}", session->tls_version);
                    add("{cipher}", session->tls_cipher);
                    add("{cipher_bits}", std::to_string(session->tls_cipher_bits));
                }
                break;
            case SMFIM_ENVFROM:
                queue_id();
                if (session && !session->auth_user.empty()) {
                    add("{auth_type}", session->auth_mechanism);
                    add("{auth_authen}", session->auth_user);
                }
                if (message) {
                    add("{mail_addr}", message->sender);
                    if (const std::string host = domain_of(message->sender); !host.empty()) add("{mail_host}", host);
                }
                break;
            case SMFIM_ENVRCPT:
                queue_id();
                add("{rcpt_addr}", std::string(rcpt));
                if (const std::string host = domain_of(rcpt); !host.empty()) add("{rcpt_host}", host);
                break;
            case SMFIM_DATA:
            case SMFIM_EOH:
            case SMFIM_EOM: queue_id(); break;
            default: break;
        }
        // SMFIR_SETSYMLIST: the milter's own list for this stage, of the macros we have.
        if (const auto& wanted = macro_lists[stage]) {
            Macros chosen;
            for (const auto& w : *wanted)
                for (const auto& [n, v] : m)
                    if (bare_macro_name(n) == bare_macro_name(w)) chosen.emplace_back(n, v);
            return chosen;
        }
        return m;
    }

    // One stage: its macros, then the command unless the milter declined the stage, then its reply unless the
    // milter said it sends none. nullopt reply: the stage went to the milter without one to read.
    struct StageResult {
        bool failed = false;
        std::string why;
        std::optional<Reply> reply;
    };
    asio::awaitable<StageResult> stage(char command, const Macros& macros,
                                       std::uint32_t not_sent, std::uint32_t no_reply, std::string frame,
                                       std::chrono::milliseconds timeout) {
        StageResult r;
        std::string out;
        if (!macros.empty()) out = encode_macros(command, macros);
        if (protocol & not_sent) {
            // Postfix sends a skipped stage's macros all the same (later stages may look them up); they go
            // out with the next command that is written.
            pending += out;
            co_return r;
        }
        out += frame;
        if (auto failed = co_await write(std::move(out), timeout)) {
            r.failed = true;
            r.why = *failed;
            co_return r;
        }
        if (protocol & no_reply) co_return r;
        auto [reply, why] = co_await read(timeout);
        if (!reply) {
            r.failed = true;
            r.why = std::move(why);
            co_return r;
        }
        r.reply = std::move(reply);
        co_return r;
    }

    // A reply at connect, HELO, MAIL, RCPT or DATA as the stage's Decision.
    Decision stage_decision(const StageResult& r, bool connection_stage, const char* what) {
        if (r.failed) return fail(fmt::format("{}: {}", what, r.why));
        if (!r.reply)
            return Decision{Decision::Action::proceed, std::nullopt,
                            fmt::format("milter {} {}: no reply asked (skipped or SMFIP_NR)", name, what)};
        const Reply& reply = *r.reply;
        // (A quarantine request is never the last answer of a stage: read_final() takes it on the way.)
        if (!is_final(reply.kind) || reply.kind == Reply::Kind::skip)
            return fail(fmt::format("{}: unexpected reply '{}'", what, reply.command));
        Decision d = decision_of(reply);
        switch (d.action) {
            case Decision::Action::accept:
                if (connection_stage)
                    mode = Mode::accepted;
                else
                    message_accepted = true;
                break;
            case Decision::Action::discard:
                // Postfix: DISCARD is not allowed at connect or HELO, and goes ignored there.
                if (connection_stage) {
                    spdlog::warn("milter {}: discard at {} is not allowed; ignored", name, what);
                    d = Decision{Decision::Action::proceed, std::nullopt, "discard ignored"};
                } else {
                    message_accepted = true;
                    message_discarded = true;
                }
                break;
            case Decision::Action::reject:
            case Decision::Action::tempfail:
                // Postfix (milter8.c): a refusal at connect or HELO holds for the whole session.
                if (connection_stage) {
                    mode = Mode::sticky;
                    sticky_decision = d;
                }
                break;
            case Decision::Action::shutdown:
                mode = Mode::sticky;
                sticky_decision = d;
                break;
            default: break;
        }
        d.reason = fmt::format("milter {} {}: {}", name, what, d.reason);
        return d;
    }

    // Reads until a final reply, taking a quarantine request on the way (kept for the end of the message).
    asio::awaitable<StageResult> read_final(StageResult r, std::chrono::milliseconds timeout) {
        while (!r.failed && r.reply && r.reply->kind == Reply::Kind::quarantine) {
            if (!(actions & SMFIF_QUARANTINE)) {
                r.failed = true;
                r.why = "quarantine without the action negotiated";
                co_return r;
            }
            quarantine = r.reply->value;
            auto [reply, why] = co_await read(timeout);
            r.reply = std::move(reply);
            if (!r.reply) {
                r.failed = true;
                r.why = std::move(why);
            }
        }
        co_return r;
    }

    asio::awaitable<std::optional<std::string>> open() {
        using namespace asio::experimental::awaitable_operators;
        const auto timeout = settings.connect_timeout;
        error_code ec;
        if (settings.unix_socket) {
            asio::local::stream_protocol::endpoint ep(settings.path.string());
            asio::steady_timer timer(executor, timeout);
            error_code timer_ec;
            auto done = co_await (socket.async_connect(asio::generic::stream_protocol::endpoint(ep),
                                                       asio::redirect_error(asio::use_awaitable, ec)) ||
                                  timer.async_wait(asio::redirect_error(asio::use_awaitable, timer_ec)));
            if (done.index() == 1) co_return fmt::format("connect to {} timed out", settings.address);
            if (ec) co_return fmt::format("connect to {}: {}", settings.address, ec.message());
            co_return std::nullopt;
        }
        std::vector<asio::ip::tcp::endpoint> endpoints;
        error_code parse_ec;
        const auto ip = asio::ip::make_address(settings.host, parse_ec);
        if (!parse_ec) {
            endpoints.emplace_back(ip, settings.port);
        } else {
            asio::ip::tcp::resolver resolver(executor);
            asio::steady_timer timer(executor, timeout);
            error_code timer_ec;
            auto done = co_await (resolver.async_resolve(settings.host, std::to_string(settings.port),
                                                         asio::redirect_error(asio::use_awaitable, ec)) ||
                                  timer.async_wait(asio::redirect_error(asio::use_awaitable, timer_ec)));
            if (done.index() == 1) co_return fmt::format("resolving {} timed out", settings.host);
            if (ec) co_return fmt::format("resolving {}: {}", settings.host, ec.message());
            for (const auto& e : std::get<0>(done)) endpoints.push_back(e.endpoint());
        }
        std::string last = "no address";
        for (const auto& ep : endpoints) {
            error_code ignored;
            socket.close(ignored);
            asio::steady_timer timer(executor, timeout);
            error_code timer_ec;
            auto done = co_await (socket.async_connect(asio::generic::stream_protocol::endpoint(ep),
                                                       asio::redirect_error(asio::use_awaitable, ec)) ||
                                  timer.async_wait(asio::redirect_error(asio::use_awaitable, timer_ec)));
            if (done.index() == 1) {
                last = fmt::format("connect to {} timed out", settings.address);
                continue;
            }
            if (!ec) co_return std::nullopt;
            last = fmt::format("connect to {}: {}", settings.address, ec.message());
        }
        co_return last;
    }

    asio::awaitable<std::optional<std::string>> negotiate() {
        if (auto failed = co_await write(encode_optneg(kProtocolVersion, kOfferedActions, kOfferedProtocol),
                                         settings.command_timeout))
            co_return "option negotiation: " + *failed;
        auto [reply, why] = co_await read(settings.command_timeout);
        if (!reply) co_return "option negotiation: " + why;
        if (reply->kind != Reply::Kind::optneg)
            co_return fmt::format("option negotiation: unexpected reply '{}'", reply->command);
        const OptnegReply& o = reply->optneg;
        // Postfix: a newer version than ours, or actions we did not offer, are a conflict.
        if (o.version < 2 || o.version > kProtocolVersion)
            co_return fmt::format("option negotiation: protocol version {} (we speak 2..{})", o.version,
                                  kProtocolVersion);
        if ((o.actions & kOfferedActions) != o.actions)
            co_return fmt::format("option negotiation: actions 0x{:x} beyond the 0x{:x} offered", o.actions,
                                  kOfferedActions);
        actions = o.actions;
        // Steps we did not offer (SMFIP_RCPT_REJ, the MDS_* sizes) are not honoured: the bits are dropped.
        protocol = o.protocol & kOfferedProtocol;
        if (actions & SMFIF_SETSYMLIST) macro_lists = o.macro_lists;
        co_return std::nullopt;
    }
};

MilterClient::MilterClient(asio::any_io_executor executor, const config::MilterSettings& settings)
    : state_(std::make_unique<State>(executor, settings)) {}

MilterClient::~MilterClient() {
    error_code ignored;
    state_->socket.close(ignored);
}

bool MilterClient::active() const {
    return state_->mode == State::Mode::ready || state_->mode == State::Mode::fresh ||
           state_->mode == State::Mode::sticky;
}

const std::string& MilterClient::name() const { return state_->name; }

asio::awaitable<Decision> MilterClient::connect(const ConnectionFacts& connection) {
    State& s = *state_;
    if (s.mode != State::Mode::fresh) co_return s.answer_without_asking().value_or(Decision{});
    s.connection = connection;
    if (auto failed = co_await s.open()) co_return s.fail(*failed);
    if (auto failed = co_await s.negotiate()) co_return s.fail(*failed);
    s.mode = State::Mode::ready;

    // Postfix: an unknown client name goes as "[address]" (Sendmail's form).
    const std::string host = connection.client_name.empty() ? "[" + connection.client_ip + "]" : connection.client_name;
    const char family = connection.client_ip.empty()                            ? SMFIA_UNKNOWN
                        : connection.client_ip.find(':') != std::string::npos ? SMFIA_INET6
                                                                              : SMFIA_INET;
    auto r = co_await s.stage(SMFIC_CONNECT, s.macros_for(SMFIM_CONNECT, nullptr, nullptr, {}),
                              SMFIP_NOCONNECT, SMFIP_NR_CONN,
                              encode_connect(host, family, connection.client_port, connection.client_ip),
                              s.settings.command_timeout);
    r = co_await s.read_final(std::move(r), s.settings.command_timeout);
    co_return s.stage_decision(r, true, "connect");
}

asio::awaitable<Decision> MilterClient::helo(const SessionFacts& session) {
    State& s = *state_;
    if (auto d = s.answer_without_asking()) co_return *d;
    auto r = co_await s.stage(SMFIC_HELO, s.macros_for(SMFIM_HELO, &session, nullptr, {}), SMFIP_NOHELO,
                              SMFIP_NR_HELO, encode_helo(session.helo), s.settings.command_timeout);
    r = co_await s.read_final(std::move(r), s.settings.command_timeout);
    co_return s.stage_decision(r, true, "HELO");
}

asio::awaitable<Decision> MilterClient::mail(const SessionFacts& session, const MessageFacts& message) {
    State& s = *state_;
    if (auto d = s.answer_without_asking()) co_return *d;
    // A new message: whatever the milter said about the last one is over.
    s.message_accepted = s.message_discarded = false;
    s.skip_headers = false;
    s.quarantine.reset();
    auto r = co_await s.stage(SMFIC_MAIL, s.macros_for(SMFIM_ENVFROM, &session, &message, {}),
                              SMFIP_NOMAIL, SMFIP_NR_MAIL, encode_mail(message.sender, message.sender_args),
                              s.settings.command_timeout);
    r = co_await s.read_final(std::move(r), s.settings.command_timeout);
    co_return s.stage_decision(r, false, "MAIL");
}

asio::awaitable<Decision> MilterClient::rcpt(const SessionFacts& session, const MessageFacts& message,
                                             const std::vector<std::string>& rcpt_args) {
    State& s = *state_;
    if (auto d = s.answer_without_asking()) co_return *d;
    if (s.message_accepted) co_return Decision{Decision::Action::proceed, std::nullopt, "message accepted"};
    const std::string rcpt = message.recipients.empty() ? std::string() : message.recipients.back();
    auto r = co_await s.stage(SMFIC_RCPT, s.macros_for(SMFIM_ENVRCPT, &session, &message, rcpt),
                              SMFIP_NORCPT, SMFIP_NR_RCPT, encode_rcpt(rcpt, rcpt_args), s.settings.command_timeout);
    r = co_await s.read_final(std::move(r), s.settings.command_timeout);
    co_return s.stage_decision(r, false, "RCPT");
}

asio::awaitable<Decision> MilterClient::data(const SessionFacts& session, const MessageFacts& message) {
    State& s = *state_;
    if (auto d = s.answer_without_asking()) co_return *d;
    if (s.message_accepted) co_return Decision{Decision::Action::proceed, std::nullopt, "message accepted"};
    auto r = co_await s.stage(SMFIC_DATA, s.macros_for(SMFIM_DATA, &session, &message, {}), SMFIP_NODATA,
                              SMFIP_NR_DATA, encode_data(), s.settings.command_timeout);
    r = co_await s.read_final(std::move(r), s.settings.command_timeout);
    co_return s.stage_decision(r, false, "DATA");
}

asio::awaitable<ContentVerdict> MilterClient::content(const SessionFacts& session, const MessageFacts& message,
                                                      std::string_view message_text) {
    State& s = *state_;
    ContentVerdict verdict;
    auto finish_early = [&](Decision d) {
        ContentVerdict v;
        v.decision = std::move(d);
        v.summary = v.decision.reason;
        return v;
    };
    if (auto d = s.answer_without_asking()) co_return finish_early(*d);
    if (s.message_accepted) {
        // Accepted (or discarded) before the end of data: not asked again. A discard holds for the message,
        // so the end of data says it once more, whatever the session made of the earlier answer.
        const bool discarded = s.message_discarded;
        s.message_accepted = s.message_discarded = false;
        co_return finish_early(discarded ? Decision{Decision::Action::discard, std::nullopt, "milter " + s.name + " discarded the message"}
                                         : Decision{Decision::Action::proceed, std::nullopt, "message accepted"});
    }
    const auto timeout = s.settings.content_timeout;
    const bool leading_space = (s.protocol & SMFIP_HDR_LEADSPC) != 0;
    std::string_view body;
    std::vector<HeaderField> fields = split_header(message_text, leading_space, body);
    // Postfix does not show a milter the MTA's own Received: field (the first): signatures and header edits
    // are about the message as the client sent it. Change requests are counted without it (VerdictBuilder).
    std::string hidden;
    if (!fields.empty()) {
        hidden = fields.front().name;
        fields.erase(fields.begin());
    }

    // Any refusal before the end of message ends it; the milter expects nothing more for this message.
    auto early = [&](State::StageResult& r, const char* what) -> std::optional<ContentVerdict> {
        if (r.failed || (r.reply && r.reply->kind != Reply::Kind::continue_ && r.reply->kind != Reply::Kind::skip)) {
            Decision d = s.stage_decision(r, false, what);
            s.message_accepted = s.message_discarded = false;   // the message ends here
            if (d.action == Decision::Action::accept) d.action = Decision::Action::proceed;
            return finish_early(std::move(d));
        }
        return std::nullopt;
    };

    if (!(s.protocol & SMFIP_NOHDRS)) {
        for (const auto& f : fields) {
            const std::string frame = encode_header(f.name, f.value);
            if (s.protocol & SMFIP_NR_HDR) {
                s.pending += frame;   // no replies: the headers go out in one write with the next command
                continue;
            }
            auto r = co_await s.stage(SMFIC_HEADER, {}, 0, 0, frame, timeout);
            r = co_await s.read_final(std::move(r), timeout);
            if (auto v = early(r, "header")) co_return std::move(*v);
            if (r.reply && r.reply->kind == Reply::Kind::skip) break;   // no more headers wanted
        }
    }
    {
        auto r = co_await s.stage(SMFIC_EOH, s.macros_for(SMFIM_EOH, &session, &message, {}), SMFIP_NOEOH,
                                  SMFIP_NR_EOH, encode_eoh(), timeout);
        r = co_await s.read_final(std::move(r), timeout);
        if (r.reply && r.reply->kind == Reply::Kind::skip) r.reply->kind = Reply::Kind::continue_;
        if (auto v = early(r, "end of header")) co_return std::move(*v);
    }
    if (!(s.protocol & SMFIP_NOBODY)) {
        while (!body.empty()) {
            const std::size_t n = std::min(body.size(), kChunkSize);
            const std::string frame = encode_body(body.substr(0, n));
            body.remove_prefix(n);
            if (s.protocol & SMFIP_NR_BODY) {
                s.pending += frame;
                if (s.pending.size() >= 4 * kChunkSize) {
                    if (auto failed = co_await s.write({}, timeout))
                        co_return finish_early(s.fail("body: " + *failed));
                }
                continue;
            }
            auto r = co_await s.stage(SMFIC_BODY, {}, 0, 0, frame, timeout);
            r = co_await s.read_final(std::move(r), timeout);
            if (auto v = early(r, "body")) co_return std::move(*v);
            if (r.reply && r.reply->kind == Reply::Kind::skip) break;   // SMFIP_SKIP: the rest of the body is unwanted
        }
    }
    // The end of message: macros, SMFIC_BODYEOB, then modifications until the final reply.
    const Macros eom = s.macros_for(SMFIM_EOM, &session, &message, {});
    std::string out = eom.empty() ? std::string() : encode_macros(SMFIC_BODYEOB, eom);
    out += encode_eob();
    if (auto failed = co_await s.write(std::move(out), timeout)) co_return finish_early(s.fail("end of message: " + *failed));
    VerdictBuilder builder(s.actions, hidden);
    for (;;) {
        auto [reply, why] = co_await s.read(timeout);
        if (!reply) co_return finish_early(s.fail("end of message: " + why));
        if (is_modification(reply->kind) || reply->kind == Reply::Kind::quarantine) {
            if (auto bad = builder.add(*reply)) co_return finish_early(s.fail("end of message: " + *bad));
            continue;
        }
        if (!is_final(reply->kind) || reply->kind == Reply::Kind::skip)
            co_return finish_early(s.fail(fmt::format("end of message: unexpected reply '{}'", reply->command)));
        verdict = builder.finish(*reply);
        break;
    }
    if (s.quarantine && !verdict.quarantine) {
        verdict.quarantine = true;
        verdict.quarantine_reason = *s.quarantine;
    }
    s.quarantine.reset();
    switch (verdict.decision.action) {
        case Decision::Action::shutdown:
            s.mode = State::Mode::sticky;
            s.sticky_decision = verdict.decision;
            break;
        default: break;
    }
    verdict.decision.reason = fmt::format("milter {} end of message: {}", s.name, verdict.decision.reason);
    verdict.summary = fmt::format("milter {}: {}", s.name, verdict.summary);
    co_return verdict;
}

asio::awaitable<void> MilterClient::abort() {
    State& s = *state_;
    s.message_accepted = s.message_discarded = false;
    s.quarantine.reset();
    if (s.mode != State::Mode::ready) co_return;
    s.pending.clear();   // macros of skipped stages of the aborted message are moot
    if (auto failed = co_await s.write(encode_abort(), s.settings.command_timeout)) (void)s.fail("abort: " + *failed);
}

asio::awaitable<void> MilterClient::quit() {
    State& s = *state_;
    if (s.socket.is_open() && s.mode != State::Mode::closed) {
        s.pending.clear();
        (void)co_await s.write(encode_quit(), s.settings.command_timeout);
    }
    error_code ignored;
    s.socket.close(ignored);
    if (s.mode == State::Mode::ready || s.mode == State::Mode::fresh) s.mode = State::Mode::closed;
}

}  // namespace ferry::filter
