// What content filters (milters, rspamd) are told and what they answer, in Ferry's terms: one vocabulary for
// every filter, so the session and the intake apply a milter's and rspamd's verdicts the same way. Pure values.
//
// A filter is asked at each stage of the SMTP session (connect, HELO, MAIL, RCPT, DATA) and once more with the
// whole message at the end of data. A stage answer is a Decision; the end-of-data answer is a ContentVerdict,
// which adds the changes to make to the message before it is committed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "smtp/reply.hpp"

namespace ferry::filter {

// Known at connect; the same for the whole session.
struct ConnectionFacts {
    std::string client_ip;        // "192.0.2.1", "2001:db8::1"
    std::uint16_t client_port = 0;
    std::string client_name;      // the client's verified host name; "" when unknown
    std::string hostname;         // ours (milter macro j, rspamd MTA-Name)
    std::string listener;         // the listener's name (macro {daemon_name})
    bool mx = true;               // an mx listener (not submission)
};

// What the session has learned so far; grows as it goes on.
struct SessionFacts {
    std::string helo;                       // as the client gave it
    std::string tls_version, tls_cipher;    // "" without TLS ("TLSv1.3", "TLS_AES_256_GCM_SHA384")
    int tls_cipher_bits = 0;
    std::string auth_user, auth_mechanism;  // "" when the client did not log in
};

// One message's envelope, as it stands when a filter is asked.
struct MessageFacts {
    std::string queue_id;
    std::string sender;                     // the address; "" for the null reverse-path <>
    std::vector<std::string> sender_args;   // ESMTP MAIL parameters as sent: "SIZE=1234", "BODY=8BITMIME"
    std::vector<std::string> recipients;    // addresses accepted so far, in order
};

// A filter's answer at a stage.
struct Decision {
    enum class Action {
        proceed,    // go on (milter "continue")
        accept,     // accept without further filtering: no more calls to this filter for this message (at
                    // connect: for this session)
        reject,     // 5xx: the command (at RCPT: this recipient; at end of data: the message)
        tempfail,   // 4xx, the same
        discard,    // accept the message with 250 but deliver it to nobody
        shutdown,   // 421: the filter wants the session closed
    };
    Action action = Action::proceed;
    // reject/tempfail/shutdown: the filter's own reply (milter SMFIR_REPLYCODE, rspamd messages.smtp_message);
    // nullopt: the default for the action (550 5.7.1, 451 4.7.1, 421 4.7.0).
    std::optional<smtp::Reply> reply;
    std::string reason;   // one line for the log: what the filter said
};

// The decision refuses what it answers, with its reply (or the default one): reject, tempfail, shutdown.
inline bool refuses(const Decision& d) {
    return d.action == Decision::Action::reject || d.action == Decision::Action::tempfail ||
           d.action == Decision::Action::shutdown;
}

// A change to the message's header section, applied in order (each to the result of the ones before).
struct HeaderEdit {
    enum class Kind {
        insert,   // `name: value` before the field at `index` (0 = first; past the end = last)
        append,   // `name: value` after the last field (milter SMFIR_ADDHEADER)
        change,   // the `index`th field called `name` (1-based, case-insensitive) gets `value`; an empty value
                  // deletes it (milter SMFIR_CHGHEADER); no such field: a change appends, a delete does nothing
        remove,   // fields called `name`: index 0 = all of them, n > 0 the nth, n < 0 the nth from the end
                  // (rspamd milter.remove_headers)
    };
    Kind kind = Kind::append;
    long index = 0;
    std::string name;
    std::string value;   // as the filter gave it: folded lines may be joined by LF or CRLF; leading space kept
};

// A filter's answer to a whole message.
struct ContentVerdict {
    // proceed: deliver (with the changes below). accept: the same, and later filters of the chain still run.
    // reject/tempfail: refuse the message (`reply` or the default). discard: 250, delivered to nobody.
    Decision decision;
    bool quarantine = false;            // hold the message in the queue (milter SMFIR_QUARANTINE)
    std::string quarantine_reason;
    bool junk = false;                  // local copies go to the Junk folder (rspamd "add header")
    std::vector<HeaderEdit> header_edits;
    std::optional<std::string> new_sender;        // milter SMFIR_CHGFROM: the address, without <>
    std::vector<std::string> add_recipients;      // milter SMFIR_ADDRCPT(_PAR): addresses without <>
    std::vector<std::string> delete_recipients;   // milter SMFIR_DELRCPT
    std::optional<std::string> new_body;          // milter SMFIR_REPLBODY: the whole body, CRLF line ends
    std::string summary;   // one line for the log: "action=add header score=6.1/15 symbols=..."
};

}  // namespace ferry::filter
