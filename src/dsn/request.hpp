// What a sender asks of delivery status notifications (RFC 3461), as the SMTP session accepts it and the spool
// keeps it: the NOTIFY conditions and ORCPT of each recipient, and RET. One vocabulary below both smtp/ (which
// parses the ESMTP parameters, smtp/dsn.hpp) and spool/ (which stores them, spool/envelope.hpp). Pure.
#pragma once

#include <string>
#include <string_view>

namespace ferry::dsn {

// RFC 3461 4.1: NOTIFY=NEVER, or a list of SUCCESS, FAILURE and DELAY, as bits of an unsigned; 0 means NOTIFY was
// not given (the default of RFC 3461 4.1: FAILURE and maybe DELAY). The spool stores the same bits.
enum NotifyFlag : unsigned { kNotifyNever = 1, kNotifySuccess = 2, kNotifyFailure = 4, kNotifyDelay = 8 };

// Canonical text: "NEVER", or the given ones of "SUCCESS,FAILURE,DELAY" in that order; "" for 0 (and for bits
// outside these).
std::string format_notify(unsigned notify);

// RFC 3461 4.3: RET=FULL|HDRS, what of the message a failure DSN returns.
enum class Ret { unspecified, full, hdrs };
std::string_view to_string(Ret ret);   // "", "FULL", "HDRS"

// The DSN parameters of one accepted RCPT.
struct RecipientDsn {
    unsigned notify = 0;   // NotifyFlag bits; 0 when NOTIFY was not given
    std::string orcpt;     // RFC 3461 4.2 "addr-type;xtext" as received (still encoded), "" when absent
    bool operator==(const RecipientDsn&) const = default;
};

}  // namespace ferry::dsn
