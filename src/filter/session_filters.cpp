#include "filter/session_filters.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "filter/message_edit.hpp"
#include "mime/text_body.hpp"
#include "smtp/address.hpp"
#include "util/ascii.hpp"

namespace ferry::filter {

namespace asio = boost::asio;

SessionFilters::SessionFilters(asio::any_io_executor executor, const std::vector<config::MilterSettings>& milters,
                               std::shared_ptr<RspamdClient> rspamd, ConnectionFacts connection)
    : connection_(std::move(connection)), rspamd_(std::move(rspamd)) {
    for (const config::MilterSettings& m : milters) milters_.push_back(std::make_unique<MilterClient>(executor, m));
}

SessionFilters::~SessionFilters() = default;

template <typename Ask>
asio::awaitable<Decision> SessionFilters::each_milter(Ask ask, const char* stage) {
    for (auto& m : milters_) {
        if (!m->active()) continue;
        Decision d = co_await ask(*m);
        switch (d.action) {
        case Decision::Action::proceed:
        case Decision::Action::accept:
            continue;
        case Decision::Action::reject:
        case Decision::Action::tempfail:
        case Decision::Action::shutdown:
        case Decision::Action::discard:
            spdlog::info("milter {} at {}: {}{}", m->name(), stage,
                         d.action == Decision::Action::reject     ? "reject"
                         : d.action == Decision::Action::tempfail ? "tempfail"
                         : d.action == Decision::Action::discard  ? "discard"
                                                                   : "shutdown",
                         d.reason.empty() ? std::string() : " (" + d.reason + ")");
            if (d.reason.empty()) d.reason = "milter " + m->name();
            co_return d;
        }
    }
    co_return Decision{};
}

asio::awaitable<Decision> SessionFilters::connect() {
    co_return co_await each_milter([this](MilterClient& m) { return m.connect(connection_); }, "connect");
}

asio::awaitable<Decision> SessionFilters::helo(const SessionFacts& session) {
    co_return co_await each_milter([&](MilterClient& m) { return m.helo(session); }, "HELO");
}

asio::awaitable<Decision> SessionFilters::mail(const SessionFacts& session, const MessageFacts& message) {
    co_return co_await each_milter([&](MilterClient& m) { return m.mail(session, message); }, "MAIL");
}

asio::awaitable<Decision> SessionFilters::rcpt(const SessionFacts& session, const MessageFacts& message) {
    static const std::vector<std::string> kNoArgs;
    co_return co_await each_milter([&](MilterClient& m) { return m.rcpt(session, message, kNoArgs); }, "RCPT");
}

asio::awaitable<Decision> SessionFilters::data(const SessionFacts& session, const MessageFacts& message) {
    co_return co_await each_milter([&](MilterClient& m) { return m.data(session, message); }, "DATA");
}

asio::awaitable<void> SessionFilters::abort() {
    for (auto& m : milters_)
        if (m->active()) co_await m->abort();
}

asio::awaitable<void> SessionFilters::quit() {
    for (auto& m : milters_) co_await m->quit();
}

namespace {

// The message goes no further down the chain: refused, or discarded.
bool ends_message(const Decision& d) { return refuses(d) || d.action == Decision::Action::discard; }

}  // namespace

asio::awaitable<FilteredMessage> SessionFilters::content(const SessionFacts& session, MessageFacts message,
                                                         std::string message_text, bool scan) {
    FilteredMessage out;
    const std::string original_sender = message.sender;
    const std::vector<std::string> original_recipients = message.recipients;
    // The message as the filters have left it so far: the one copy, until a filter changes it.
    std::optional<std::string> edited;
    auto current = [&]() -> const std::string& { return edited ? *edited : message_text; };

    auto take = [&](const ContentVerdict& v, const std::string& who) -> bool {
        if (!v.summary.empty()) out.log.push_back(v.summary.starts_with(who) ? v.summary : who + ": " + v.summary);
        if (ends_message(v.decision)) {
            out.decision = v.decision;
            out.filter = who;
            return false;
        }
        if (v.quarantine && !out.hold) {
            out.hold = true;
            out.hold_reason = v.quarantine_reason.empty() ? who : who + ": " + v.quarantine_reason;
        }
        out.junk = out.junk || v.junk;
        AppliedVerdict applied = apply_verdict(v, current(), message.sender, message.recipients);
        if (applied.skipped > 0)
            spdlog::warn("{} id={}: {} change{} with a bad field name or address ignored", who, message.queue_id,
                         applied.skipped, applied.skipped == 1 ? "" : "s");
        if (applied.message) edited = std::move(*applied.message);
        if (applied.sender) message.sender = *applied.sender;
        message.recipients = std::move(applied.recipients);
        return true;
    };

    for (auto& m : milters_) {
        if (!m->active()) continue;
        const ContentVerdict v = co_await m->content(session, message, current());
        if (!take(v, "milter " + m->name())) co_return out;
    }
    if (rspamd_ && scan) {
        const ContentVerdict v = co_await rspamd_->check(connection_, session, message, current());
        if (!take(v, "rspamd")) co_return out;
    }
    if (message.recipients.empty()) {
        // Every recipient removed by a milter: there is nobody to deliver to, as with a discard.
        out.decision.action = Decision::Action::discard;
        out.filter = "milters (every recipient removed)";
        co_return out;
    }
    if (edited && *edited != message_text) {
        if (auto fields = prepended_fields(*edited, message_text)) out.prepended = std::move(*fields);
        else out.message = std::move(*edited);
    }
    if (message.sender != original_sender) out.sender = message.sender;
    if (message.recipients != original_recipients) out.recipients = std::move(message.recipients);
    co_return out;
}

smtp::Reply reply_for(const Decision& d, std::string_view hostname) {
    if (d.reply) return *d.reply;
    switch (d.action) {
    case Decision::Action::reject: return smtp::Reply(550, "5.7.1", "Command rejected");
    case Decision::Action::shutdown:
        return smtp::Reply(421, "4.7.0", std::string(hostname) + " Service unavailable - closing connection");
    default: return smtp::Reply(451, "4.7.1", "Service unavailable - try again later");
    }
}

AppliedVerdict apply_verdict(const ContentVerdict& v, std::string_view message, std::string_view sender,
                             std::vector<std::string> recipients) {
    AppliedVerdict out;
    if (!v.header_edits.empty() || v.new_body) {
        MessageText m = MessageText::split(message);
        if (!v.header_edits.empty()) m.header = apply_header_edits(m.header, v.header_edits, out.skipped);
        if (v.new_body) {
            m.body = mime::canonical_lines(*v.new_body);   // SMFIR_REPLBODY may use bare LF
            m.has_body = true;
        }
        out.message = m.joined();
    }
    // Addresses from a filter go into the spool envelope: only well-formed ones (no line breaks, RFC 5321 syntax).
    auto usable = [&](const std::string& a) {
        if (smtp::address_error(a).empty()) return true;
        ++out.skipped;
        return false;
    };
    if (v.new_sender && *v.new_sender != sender && (v.new_sender->empty() || usable(*v.new_sender)))
        out.sender = *v.new_sender;
    auto same = [](const std::string& a, const std::string& b) { return util::ascii_iequals(a, b); };
    for (const std::string& gone : v.delete_recipients)
        recipients.erase(std::remove_if(recipients.begin(), recipients.end(),
                                        [&](const std::string& r) { return same(r, gone); }),
                         recipients.end());
    for (const std::string& added : v.add_recipients)
        if (usable(added) &&
            std::none_of(recipients.begin(), recipients.end(), [&](const std::string& r) { return same(r, added); }))
            recipients.push_back(added);
    out.recipients = std::move(recipients);
    return out;
}

std::optional<std::string> prepended_fields(std::string_view edited, std::string_view original) {
    if (edited.size() <= original.size() || !edited.ends_with(original)) return std::nullopt;
    const std::string_view front = edited.substr(0, edited.size() - original.size());
    // Whole fields: ends with CRLF, holds no empty line, starts with a field name (not a continuation).
    if (!front.ends_with("\r\n") || front.find("\r\n\r\n") != std::string_view::npos || front.front() == ' ' ||
        front.front() == '\t' || front.starts_with("\r\n"))
        return std::nullopt;
    return std::string(front);
}

}  // namespace ferry::filter
