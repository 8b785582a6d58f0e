// The spool envelope of a message, built once from what the door it came through knows: the SMTP transaction
// (MAIL and RCPT with their parameters) or a pickup file's head, and the facts of its arrival. Pure: values in,
// a spool::Envelope out. A new MAIL or RCPT parameter is parsed by smtp::Session, kept in smtp::Transaction and
// carried into the envelope here, and nowhere else.
#pragma once

#include <ctime>
#include <string>
#include <string_view>

#include "smtp/session.hpp"
#include "spool/envelope.hpp"
#include "spool/pickup.hpp"

namespace ferry::intake {

// What the receiving side knows of a message besides its envelope commands.
struct ArrivalFacts {
    std::string queue_id;
    std::time_t arrival = 0;
    std::string client;              // the client's IP address ("127.0.0.1" for local submission)
    std::string postmaster_domain;   // completes RCPT TO:<Postmaster> (RFC 5321 4.5.1), which has no domain
};

// Sender, recipients (as accepted at RCPT; <Postmaster> completed), SMTPUTF8, BODY=8BITMIME, RET, ENVID and each
// recipient's NOTIFY and ORCPT. The addendum is always announced: what is decided at the end of data goes there.
spool::Envelope make_envelope(const smtp::Transaction& tx, const ArrivalFacts& facts);

// A message from the pickup directory: as if it had come over SMTP with BODY=8BITMIME when its content is not
// ASCII, and with SMTPUTF8 when an address is not (RFC 6531 3.4: a UTF-8 address travels only with it). No DSN
// parameters: sendmail's defaults.
spool::Envelope make_envelope(const spool::PickupEnvelope& pickup, std::string_view content, const ArrivalFacts& facts);

}  // namespace ferry::intake
