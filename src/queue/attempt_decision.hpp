// What an attempt's results mean for the message, decided in one place and without I/O: each leg is delivered
// (final), bounced (final: a permanent failure, or a temporary one after the message's lifetime, RFC 5321
// 4.5.4.1) or deferred; the recipients with nothing left to try become final; and when something is deferred,
// the attempt's number and when the next one is due (exponential backoff, retry_delay). The queue writes the
// outcome to the delivery record, then applies it to its schedule under its lock, once.
#pragma once

#include <chrono>
#include <ctime>
#include <map>
#include <string>
#include <vector>

#include "queue/delivery_plan.hpp"
#include "queue/delivery_record.hpp"

namespace ferry::queue {

struct RetryPolicy {
    std::chrono::seconds min_retry{300};
    std::chrono::seconds max_retry{3600};
    std::chrono::seconds lifetime{5 * 24 * 3600};
};

// Backoff for the n-th retry (n >= 1): min_retry doubled each time, plus up to a quarter more by `spread` (0 to 1,
// random in use), never more than max_retry. The spread keeps messages deferred together (a destination that
// was down) from all coming back in the same second.
std::chrono::milliseconds retry_delay(int attempt, std::chrono::seconds min_retry, std::chrono::seconds max_retry,
                                      double spread);

struct LegVerdict {
    enum class Kind { delivered, bounced, deferred };
    Kind kind = Kind::deferred;
    delivery::DeliveryResult result;   // as it is reported: an expired deferral is a permanent failure
};

struct AttemptDecision {
    std::vector<LegVerdict> legs;                   // one per plan leg, in order
    std::vector<std::string> final;                 // record entries: "rcpt>destination" per final leg, then
                                                    // "rcpt" per recipient with nothing left to try
    std::map<std::string, std::string> deferred;    // recipient -> why its leg was deferred (one line)
    bool expired = false;                           // older than the lifetime: nothing is deferred any more
    bool done = true;                               // nothing deferred: the message leaves the spool
    int attempt = 1;                                // this attempt's number
    std::chrono::milliseconds delay{0};             // until the next attempt (used when something is deferred)
    std::time_t next_attempt = 0;                   // now + delay, rounded up to a second
};

// `attempts_before`: attempts made before this one (from the scheduler or the record, whichever is larger).
// `now` and `arrival` are wall-clock seconds; `spread` is retry_delay's.
AttemptDecision decide_attempt(const std::vector<std::string>& recipients, const DeliveryRecord& record,
                               const std::vector<Leg>& legs, std::time_t arrival, std::time_t now,
                               int attempts_before, const RetryPolicy& policy, double spread);

// The bounce of some legs could not be written (no DSN in the spool): those legs, and every leg not delivered
// (their recipients' lines would be final otherwise), stay open and are tried and reported again.
void keep_bounces_open(AttemptDecision& decision, const std::vector<std::string>& recipients,
                       const std::vector<Leg>& legs, const std::vector<std::size_t>& unreported);

}  // namespace ferry::queue
