// A delivery status notification (RFC 3464) around the original message: multipart/report with a text/plain
// explanation, a message/delivery-status part and the returned message or its header section. Pure: the
// caller streams the original between `head` and `tail`, so a large message never has to be in memory.
//
// With utf8 (the original came with SMTPUTF8) the parts are RFC 6533's message/global-delivery-status and
// message/global(-headers), addresses keep their UTF-8, and the DSN itself must then be sent with SMTPUTF8;
// with utf8 or body_8bit it must go out as 8BITMIME (its Content-Transfer-Encoding says 8bit).
#pragma once

#include <ctime>
#include <string>
#include <vector>

namespace ferry::mime {

struct DsnRecipient {
    std::string final_recipient;   // address
    std::string orcpt;             // as stored: "rfc822;xtext", or ""
    std::string action;            // failed | delayed | delivered | relayed (RFC 3464 2.3.3)
    std::string status;            // "5.1.1" (RFC 3463)
    std::string remote_mta;        // host name, or ""
    std::string diagnostic;        // the remote reply, e.g. "550 5.1.1 <x>: user unknown", or our reason; "" none
    std::time_t last_attempt = 0;  // 0: not said
};

struct DsnReport {
    std::string reporting_mta;     // our host name
    std::string queue_id;
    std::string envid;             // RFC 3461 ENVID, xtext as stored, or ""
    std::time_t arrival = 0;       // 0: not said
    std::time_t now = 0;           // the Date:
    std::string original_sender;   // the DSN's To:
    std::vector<DsnRecipient> recipients;
    bool return_headers_only = false;   // RET=HDRS, or content not returned in full
    bool utf8 = false;             // original was SMTPUTF8: RFC 6533 media types
    bool body_8bit = false;        // original was BODY=8BITMIME: the returned part is 8bit
    std::string boundary_token;    // unique (queue id and random letters); only its letters and digits are used
};

// The caller writes head, then the original (the full message, or only its header section), then tail.
// Nothing is asked of the original's end: the tail starts with CRLF, so the closing boundary is on a line of
// its own whether or not the original ends with CRLF. The original must not contain the boundary line, which
// is why the token must be unique. Every line of head and tail ends in CRLF and is at most 998 octets;
// text from remote servers is reduced to printable ASCII.
struct DsnMessage {
    std::string head;
    std::string tail;
};

DsnMessage build_dsn(const DsnReport& report);

}  // namespace ferry::mime
