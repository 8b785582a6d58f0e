#include "intake/message_intake.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>

#include "filter/message_edit.hpp"
#include "mime/header.hpp"
#include "smtp/address.hpp"

namespace ferry::intake {

std::string loggable(std::string_view text) {
    std::string out;
    for (const char c : text.substr(0, 64)) out.push_back(c > 0x20 && c < 0x7f ? c : '?');
    return out;
}

std::string loggable_line(std::string_view text) {
    std::string out;
    for (const char c : text.substr(0, 300)) out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
    return out;
}

bool out_of_space(std::error_code ec) {
    return ec == std::errc::no_space_on_device || ec == std::error_code(EDQUOT, std::system_category());
}

MessageIntake::MessageIntake(IntakeSettings settings)
    : settings_(std::move(settings)), splitter_(mime::kMaxHeaderSection) {}

MessageIntake::~MessageIntake() = default;   // an uncommitted file is removed by its writer

std::error_code MessageIntake::begin(spool::Spool& spool, const spool::Envelope& envelope, std::string_view received) {
    queue_id_ = envelope.queue_id;
    auto opened = spool::MessageWriter::open(spool, envelope);
    if (opened.error) {
        spdlog::error("spool {} cannot store message: {}", settings_.log_label, opened.error.message());
        error_ = opened.error;
        return error_;
    }
    writer_ = std::move(opened.writer);
    sender_ = envelope.sender;
    envelope_ = envelope;
    store(received);
    return error_;
}

void MessageIntake::store(std::string_view content) {
    if (!writer_ || error_ || content.empty()) return;
    if (const auto ec = writer_->append(content)) {
        // The rest of the content is still taken and dropped; the outcome at its end says why (451 or 452).
        spdlog::error("spool {} id={} write failed: {}", settings_.log_label, queue_id_, ec.message());
        error_ = ec;
        writer_->discard();   // give the space back now
    }
}

void MessageIntake::feed(std::string_view decoded) {
    if (!hops_.header_ended()) hops_.feed(decoded);
    switch (splitter_.state()) {
    case mime::HeaderSplitter::State::header: {
        const std::string_view body = splitter_.feed(decoded);
        if (splitter_.state() == mime::HeaderSplitter::State::too_large) {
            if (writer_) writer_->discard();   // refused at the end of data (552); give the space back now
        } else if (splitter_.state() == mime::HeaderSplitter::State::body) {
            header_complete();
            body_chunk(body);
        }
        break;
    }
    case mime::HeaderSplitter::State::body:
        body_chunk(decoded);
        break;
    case mime::HeaderSplitter::State::too_large:
        break;
    }
}

void MessageIntake::header_complete() {
    if (settings_.inbound)
        inbound_ = std::make_unique<mailauth::InboundCheck>(*settings_.inbound, splitter_.header());
    // RFC 8601 5: results under our name come only from us, whatever the door (a user's mail client is not a
    // trusted MTA) and whether or not we add our own.
    std::size_t removed = 0;
    const std::string header = mailauth::remove_claimed_results(splitter_.header(), settings_.authserv_id, removed);
    if (removed > 0)
        spdlog::info("{} removed {} Authentication-Results field{} claiming {}", settings_.log_label, removed,
                     removed == 1 ? "" : "s", settings_.authserv_id);
    if (settings_.signing_keys) signer_ = settings_.signing_keys->signer_for(header, sender_);
    store(header);
    if (splitter_.has_body()) store("\r\n");
}

void MessageIntake::body_chunk(std::string_view body) {
    if (body.empty()) return;
    if (inbound_) inbound_->feed_body(body);
    if (signer_) signer_->feed_body(body);
    store(body);
}

Outcome MessageIntake::refuse(smtp::Reply reply, std::string reason) {
    Outcome o;
    o.kind = Outcome::Kind::refused;
    o.reply = std::move(reply);
    o.reason = std::move(reason);
    return o;
}

Outcome MessageIntake::failure() const {
    Outcome o;
    o.kind = out_of_space(error_) ? Outcome::Kind::out_of_space : Outcome::Kind::failed;
    o.error = error_ ? error_ : std::make_error_code(std::errc::io_error);
    return o;
}

std::optional<std::string> MessageIntake::from_not_owned() const {
    const std::string& user = settings_.authenticated_user;
    if (user.empty() || !settings_.from_owner) return std::nullopt;
    const auto from = mime::header_field(splitter_.header(), "From");
    if (!from) return std::nullopt;   // no claim made
    const auto addresses = mime::address_list(*from);
    if (!addresses) return std::string("(unreadable)");
    for (const auto& a : *addresses) {
        smtp::Path path;
        path.mailbox = smtp::parse_mailbox(a);
        if (!path.mailbox || !settings_.from_owner->sender_allowed(path, user)) return a;
    }
    return std::nullopt;
}

std::optional<Outcome> MessageIntake::end_of_data() {
    const std::string& label = settings_.log_label;
    if (splitter_.state() == mime::HeaderSplitter::State::header) {   // no empty line, no body
        splitter_.finish();
        if (splitter_.state() == mime::HeaderSplitter::State::body) header_complete();
    }
    if (splitter_.state() == mime::HeaderSplitter::State::too_large) {
        spdlog::warn("refused {}: header section over {} octets", label, mime::kMaxHeaderSection);
        return refuse(smtp::Reply(552, "5.3.4",
                                  fmt::format("Message header section exceeds {} KiB", mime::kMaxHeaderSection / 1024)),
                      fmt::format("header section over {} octets", mime::kMaxHeaderSection));
    }
    if (!writer_ || error_) return failure();
    if (hops_.hops() > mime::kMaxHops) {
        // RFC 5321 6.3: a message that has passed this many relays is going round in circles.
        spdlog::warn("refused {} hops={}: mail loop (more than {} Received: fields)", label, hops_.hops(),
                     mime::kMaxHops);
        return refuse(
            smtp::Reply(554, "5.4.6", fmt::format("Too many hops ({} Received: fields): mail loop", hops_.hops())),
            fmt::format("mail loop ({} Received: fields)", hops_.hops()));
    }
    // RFC 5322 3.6: exactly one From:. With two, a check that reads one (ours of the user's addresses, DMARC's of
    // the domain) can be shown an address the reader of the other never sees: refused at every door.
    if (const std::size_t froms = mime::count_header_fields(splitter_.header(), "From"); froms > 1) {
        spdlog::warn("refused {} user={}: {} From: header fields", label, settings_.authenticated_user, froms);
        return refuse(smtp::Reply(550, "5.6.0",
                                  fmt::format("Message has {} From: header fields, RFC 5322 3.6 allows one", froms)),
                      fmt::format("{} From: header fields, RFC 5322 3.6 allows one", froms));
    }
    if (const auto bad = from_not_owned()) {
        const std::string& user = settings_.authenticated_user;
        spdlog::warn("refused {} user={} from={}: header From not owned by the user", label, user, loggable(*bad));
        return refuse(smtp::Reply(553, "5.7.1", "Header From: address " + loggable(*bad) + " not owned by user " + user),
                      "header From: " + loggable(*bad) + " not owned by " + user);
    }
    return std::nullopt;
}

std::optional<Outcome> MessageIntake::apply_inbound_verdict(const mailauth::InboundVerdict& v) {
    const std::string& label = settings_.log_label;
    spdlog::info("checked {} from={} {}", label, loggable(v.dmarc.from_domain), v.summary);
    const mailauth::Disposition d = v.dmarc.disposition;
    if (d == mailauth::Disposition::reject) {
        // RFC 7489 10.3: the rejection names DMARC, so the sender knows which policy refused the mail.
        spdlog::warn("refused {} from={}: DMARC policy reject ({})", label, loggable(v.dmarc.from_domain),
                     v.dmarc.reason);
        return refuse(smtp::Reply(550, "5.7.1", "Message rejected per DMARC policy of " + loggable(v.dmarc.policy_domain)),
                      "DMARC policy reject (" + v.dmarc.reason + ")");
    }
    addendum_.headers += v.field;
    if (d == mailauth::Disposition::quarantine) addendum_.folder = "Junk";
    return std::nullopt;
}

std::optional<std::string> MessageIntake::stored_message() {
    if (!writer_ || error_) return std::nullopt;
    auto text = writer_->content();
    if (!text) {
        error_ = std::make_error_code(std::errc::io_error);
        spdlog::error("spool {} id={} cannot read the message back for the filters", settings_.log_label, queue_id_);
    }
    return text;
}

std::error_code MessageIntake::rewrite(const spool::Envelope& envelope, std::string_view message) {
    if (!writer_ || error_) return error_;
    if (auto ec = writer_->restart(envelope)) {
        error_ = ec;
        return ec;
    }
    envelope_ = envelope;
    store(message);
    return error_;
}

std::optional<Outcome> MessageIntake::apply_filters(const filter::FilteredMessage& f, std::string_view hostname) {
    using Action = filter::Decision::Action;
    const std::string& label = settings_.log_label;
    for (const std::string& line : f.log) spdlog::info("filtered {} id={} {}", label, queue_id_, loggable_line(line));
    switch (f.decision.action) {
    case Action::proceed:
    case Action::accept:
        break;
    case Action::discard: {
        spdlog::info("discarded {} id={} by {}", label, queue_id_, f.filter);
        if (writer_) writer_->discard();
        Outcome o;
        o.kind = Outcome::Kind::committed;   // 250 to the client; the file is gone, nobody gets a copy
        o.queue_id = queue_id_;
        o.discarded = true;
        return o;
    }
    case Action::reject:
    case Action::tempfail:
    case Action::shutdown: {
        const smtp::Reply reply = filter::reply_for(f.decision, hostname);
        spdlog::warn("refused {} id={} by {}: {} {}", label, queue_id_, f.filter, reply.code,
                     loggable_line(f.decision.reason));
        return refuse(reply, f.filter + ": " + f.decision.reason);
    }
    }
    if (f.junk) addendum_.folder = "Junk";
    if (f.hold) addendum_.hold = spool::hold_reason(f.hold_reason);
    addendum_.headers += f.prepended;
    if (!f.message && !f.sender && !f.recipients) return std::nullopt;

    // The envelope or the message changed: the spool file is written again, under the same queue id.
    spool::Envelope changed = envelope_;
    if (f.sender) changed.sender = *f.sender;
    if (f.recipients) {
        std::vector<spool::RecipientDsn> dsn;
        for (const std::string& r : *f.recipients) {
            const auto it = std::find(envelope_.recipients.begin(), envelope_.recipients.end(), r);
            const auto i = static_cast<std::size_t>(it - envelope_.recipients.begin());
            dsn.push_back(it != envelope_.recipients.end() && i < envelope_.recipient_dsn.size()
                              ? envelope_.recipient_dsn[i]
                              : spool::RecipientDsn{});
        }
        changed.recipients = *f.recipients;
        changed.recipient_dsn = std::move(dsn);
    }
    std::optional<std::string> message = f.message;
    if (!message) message = stored_message();
    if (!message || rewrite(changed, *message)) return failure();
    if (f.message && settings_.signing_keys) {
        // The signature is over what is delivered: computed again over the changed message.
        const filter::MessageText text = filter::MessageText::split(*f.message);
        signer_ = settings_.signing_keys->signer_for(text.header, changed.sender);
        if (signer_) signer_->feed_body(text.body);
    }
    spdlog::info("filtered {} id={} stored with the filters' changes{}{}", label, queue_id_,
                 f.sender ? " sender=" + loggable(*f.sender) : std::string(),
                 f.recipients ? " recipients=" + std::to_string(f.recipients->size()) : std::string());
    return std::nullopt;
}

std::optional<Outcome> MessageIntake::seal(std::time_t now) {
    if (signer_) addendum_.headers += signer_->finish(now);
    if (!writer_ || error_) return failure();
    writer_->set_addendum(std::move(addendum_));
    return std::nullopt;
}

void MessageIntake::submit(spool::Committer& committer, spool::Committer::Callback done) {
    committer.submit(*writer_, std::move(done));
}

Outcome MessageIntake::committed(std::error_code ec) {
    if (ec) {
        spdlog::error("spool {} id={} commit failed: {}", settings_.log_label, queue_id_, ec.message());
        error_ = ec;
        return failure();
    }
    Outcome o;
    o.kind = Outcome::Kind::committed;
    o.queue_id = queue_id_;
    return o;
}

}  // namespace ferry::intake
