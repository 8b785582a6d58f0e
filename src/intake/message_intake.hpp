// One message on its way from the envelope to the committed spool file, whichever door it came through (an SMTP
// session, the pickup directory). The door decodes the transport (dot-stuffing, BDAT chunks, a pickup file) and
// feeds the decoded content; the intake does the rest, in stages:
//
//   begin()          envelope known: the spool file is opened, the envelope and our Received: field written
//   feed()           content: the header section is held until it is complete (mime::HeaderSplitter), then
//                      header complete: forged Authentication-Results removed (RFC 8601 5), the inbound check
//                      (mx: SPF/DKIM/DMARC) and the DKIM signer started, the header written
//                      body chunk: to the inbound check, the signer and the spool file
//   end_of_data()    checks that need nothing more: header size, storage errors, hop count (RFC 5321 6.3), one
//                    From: (RFC 5322 3.6), every From: address the authenticated user's
//   inbound_check() / apply_inbound_verdict()   mx: the DNS part of the checks runs on the door's event loop
//   stored_message() / apply_filters()   content filters (milters, rspamd: filter/SessionFilters) read the
//                    message as stored; their verdict refuses, discards, holds or files it in Junk, and their
//                    changes are stored: added fields in the addendum, anything else by rewriting the file
//   seal()           the addendum: Authentication-Results, Junk folder, DKIM-Signature
//   submit() / committed()   group commit; the outcome
//
// Every outcome is a value (Outcome): committed
// with its queue id, refused with the reply that says why, or failed for now (storage, 451/452).
#pragma once

#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "filter/session_filters.hpp"
#include "mailauth/inbound_check.hpp"
#include "mailauth/signing.hpp"
#include "mime/header_splitter.hpp"
#include "mime/hop_counter.hpp"
#include "smtp/reply.hpp"
#include "smtp/session.hpp"
#include "spool/spool.hpp"

namespace ferry::intake {

struct Outcome {
    enum class Kind {
        committed,      // durable: answer 250 with queue_id
        refused,        // the content breaks a rule: answer `reply`
        failed,         // the spool could not store it: 451 4.3.0, try again
        out_of_space,   // the same for a full disk or quota: 452 4.3.1
    };
    Kind kind = Kind::failed;
    std::string queue_id;   // committed
    smtp::Reply reply;      // refused
    std::string reason;     // refused: one line for a log or a pickup file set aside
    std::error_code error;  // failed, out_of_space: what the spool said
    bool discarded = false; // committed: a filter discarded it; 250, but nothing was stored or queued
};

struct IntakeSettings {
    std::string log_label;            // who sent it, for log lines: "client=[192.0.2.1]:4711", "pickup file=..."
    std::string authserv_id;          // Authentication-Results under this name come only from us (RFC 8601 5)
    std::string authenticated_user;   // "" for mail that did not log in
    // Non-null: every address of the From: field must be one `authenticated_user` may send as (sender_allowed).
    smtp::MailPolicy* from_owner = nullptr;
    // Non-null: a DKIM signature with the keys of the From: domain (authenticated or local mail).
    std::shared_ptr<const mailauth::SigningKeys> signing_keys;
    // Set: SPF, DKIM and DMARC of this message (mx listeners).
    std::optional<mailauth::InboundFacts> inbound;
};

class MessageIntake {
public:
    explicit MessageIntake(IntakeSettings settings);
    ~MessageIntake();
    MessageIntake(const MessageIntake&) = delete;
    MessageIntake& operator=(const MessageIntake&) = delete;

    // Envelope known. Opens the spool file with `envelope`, then writes `received` (our trace field, RFC 5321
    // 4.4). A spool that cannot take the file is returned here and is the outcome at the end of data.
    std::error_code begin(spool::Spool& spool, const spool::Envelope& envelope, std::string_view received);

    // Decoded content, in order, in pieces of any size.
    void feed(std::string_view decoded);

    // End of data: the refusals and failures known now; nullopt when the message goes on.
    std::optional<Outcome> end_of_data();

    // mx: the check to finish over DNS (by the caller, on its event loop), then apply_inbound_verdict; null when
    // there is none.
    mailauth::InboundCheck* inbound_check() { return inbound_.get(); }
    // A DMARC reject refuses the message; otherwise the results go into the addendum.
    std::optional<Outcome> apply_inbound_verdict(const mailauth::InboundVerdict& verdict);

    // The message as stored so far (our Received: field, then the content), for content filters; nullopt when
    // the spool cannot give it back (the outcome then says so).
    std::optional<std::string> stored_message();
    // What the filters decided: a refusal (their reply, or 550 5.7.1 / 451 4.7.1), a discard (the outcome is
    // "committed" without a commit: 250, delivered to nobody), or the message goes on with their changes stored.
    std::optional<Outcome> apply_filters(const filter::FilteredMessage& filtered, std::string_view hostname);

    // The addendum, signatures included. nullopt when the message can be committed.
    std::optional<Outcome> seal(std::time_t now);
    // Hands the message to the group committer; `done` runs on the committer thread. Only after seal().
    void submit(spool::Committer& committer, spool::Committer::Callback done);
    // The outcome of the commit `submit` asked for.
    Outcome committed(std::error_code ec);

    const std::string& queue_id() const { return queue_id_; }
    std::size_t hops() const { return hops_.hops(); }

private:
    void header_complete();
    void body_chunk(std::string_view body);
    void store(std::string_view content);   // a failure is kept in error_ and frees the file
    Outcome refuse(smtp::Reply reply, std::string reason);
    Outcome failure() const;
    std::optional<std::string> from_not_owned() const;
    std::error_code rewrite(const spool::Envelope& envelope, std::string_view message);

    IntakeSettings settings_;
    std::string queue_id_;
    std::string sender_;   // the envelope sender: the DKIM signer's fallback domain
    spool::Envelope envelope_;   // as written; a filter's envelope change rewrites the file with a changed copy
    std::unique_ptr<spool::MessageWriter> writer_;
    std::error_code error_;   // the spool refused this message's content; the outcome at its end
    mime::HeaderSplitter splitter_;
    mime::HopCounter hops_;
    std::unique_ptr<mailauth::InboundCheck> inbound_;
    std::optional<mailauth::DkimSigner> signer_;
    spool::Addendum addendum_;
};

// Client text in a log line: printable ASCII only, cut short, so it cannot forge lines or flood the log.
std::string loggable(std::string_view text);
// A longer text (a filter's reason, a summary) for a log line: printable ASCII with spaces, cut at 300 octets.
std::string loggable_line(std::string_view text);

// A full disk or an exhausted quota: worth telling the client (452 4.3.1), it will pass.
bool out_of_space(std::error_code ec);

}  // namespace ferry::intake
