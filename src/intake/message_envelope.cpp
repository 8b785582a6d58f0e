#include "intake/message_envelope.hpp"

#include <algorithm>

#include "util/utf8.hpp"

namespace ferry::intake {
namespace {

spool::Envelope arrived(const ArrivalFacts& facts) {
    spool::Envelope env;
    env.queue_id = facts.queue_id;
    env.arrival = facts.arrival;
    env.client = facts.client;
    env.addendum = true;   // filled at the end of data (authentication results, signatures, folder)
    return env;
}

}  // namespace

spool::Envelope make_envelope(const smtp::Transaction& tx, const ArrivalFacts& facts) {
    spool::Envelope env = arrived(facts);
    env.sender = tx.sender.mailbox ? tx.sender.mailbox->to_string() : std::string();
    for (const smtp::Mailbox& r : tx.recipients)
        env.recipients.push_back(r.domain.empty() ? "postmaster@" + facts.postmaster_domain : r.to_string());
    env.smtputf8 = tx.smtputf8;
    env.body_8bit = tx.body_8bit;
    env.ret = tx.ret;
    env.envid = tx.envid;
    env.recipient_dsn = tx.recipient_dsn;
    env.recipient_dsn.resize(env.recipients.size());   // one per recipient, as parse_envelope gives them
    return env;
}

spool::Envelope make_envelope(const spool::PickupEnvelope& pickup, std::string_view content, const ArrivalFacts& facts) {
    spool::Envelope env = arrived(facts);
    env.sender = pickup.sender;
    env.recipients = pickup.recipients;
    env.recipient_dsn.resize(env.recipients.size());
    env.body_8bit = !util::is_ascii(content);
    env.smtputf8 = !util::is_ascii(env.sender) || std::any_of(env.recipients.begin(), env.recipients.end(),
                                                              [](const std::string& r) { return !util::is_ascii(r); });
    return env;
}

}  // namespace ferry::intake
