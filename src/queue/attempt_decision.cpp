#include "queue/attempt_decision.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace ferry::queue {

using delivery::DeliveryResult;

namespace {

void schedule(AttemptDecision& d, std::time_t now, const RetryPolicy& policy, double spread) {
    d.delay = retry_delay(d.attempt, policy.min_retry, policy.max_retry, spread);
    d.next_attempt = now + std::chrono::ceil<std::chrono::seconds>(d.delay).count();
}

// "rcpt" for each recipient that has no deferred leg and is not final yet.
void add_final_recipients(AttemptDecision& d, const std::vector<std::string>& recipients, const DeliveryRecord& record,
                          const std::vector<bool>& pending) {
    for (std::size_t ri = 0; ri < recipients.size(); ++ri)
        if (!pending[ri] && !record.is_final(recipients[ri])) d.final.push_back(recipients[ri]);
}

}  // namespace

std::chrono::milliseconds retry_delay(int attempt, std::chrono::seconds min_retry, std::chrono::seconds max_retry,
                                      double spread) {
    std::chrono::milliseconds delay = min_retry;
    for (int i = 1; i < attempt && delay < max_retry; ++i) delay *= 2;
    delay = std::min<std::chrono::milliseconds>(delay, max_retry);
    const auto extra = std::chrono::milliseconds(static_cast<std::int64_t>(static_cast<double>(delay.count()) / 4 *
                                                                           std::clamp(spread, 0.0, 1.0)));
    return std::min<std::chrono::milliseconds>(delay + extra, max_retry);
}

AttemptDecision decide_attempt(const std::vector<std::string>& recipients, const DeliveryRecord& record,
                               const std::vector<Leg>& legs, std::time_t arrival, std::time_t now,
                               int attempts_before, const RetryPolicy& policy, double spread) {
    AttemptDecision d;
    d.attempt = std::max(attempts_before, record.attempts) + 1;
    const std::time_t age = now - arrival;
    d.expired = age > policy.lifetime.count();
    std::vector<bool> pending(recipients.size(), false);
    for (const Leg& leg : legs) {
        LegVerdict v{LegVerdict::Kind::deferred, leg.result};
        DeliveryResult& r = v.result;
        if (r.kind == DeliveryResult::Kind::temporary && d.expired) {
            // RFC 5321 4.5.4.1: give up after the lifetime, and say why with the last error.
            r.kind = DeliveryResult::Kind::permanent;
            r.diagnostic = fmt::format("message expired after {}s in the queue; last error: {}",
                                       static_cast<long long>(age), r.diagnostic);
            r.from_server = false;
        }
        const std::string& rcpt = recipients.at(leg.recipient);
        switch (r.kind) {
        case DeliveryResult::Kind::sent:
            v.kind = LegVerdict::Kind::delivered;
            d.final.push_back(rcpt + ">" + leg.destination);
            break;
        case DeliveryResult::Kind::permanent:
            v.kind = LegVerdict::Kind::bounced;
            d.final.push_back(rcpt + ">" + leg.destination);
            break;
        case DeliveryResult::Kind::temporary:
            v.kind = LegVerdict::Kind::deferred;
            pending[leg.recipient] = true;
            d.deferred[rcpt] = one_line(r.diagnostic);
            break;
        }
        d.legs.push_back(std::move(v));
    }
    add_final_recipients(d, recipients, record, pending);
    d.done = d.deferred.empty();
    schedule(d, now, policy, spread);   // also when done: keep_bounces_open() may reopen legs
    return d;
}

void keep_bounces_open(AttemptDecision& d, const std::vector<std::string>& recipients, const std::vector<Leg>& legs,
                       const std::vector<std::size_t>& unreported) {
    if (unreported.empty()) return;
    std::vector<std::string> reopened;
    for (const std::size_t li : unreported) reopened.push_back(recipients.at(legs.at(li).recipient) + ">" +
                                                               legs.at(li).destination);
    std::vector<bool> pending(recipients.size(), false);
    for (std::size_t li = 0; li < legs.size(); ++li)
        if (d.legs[li].kind != LegVerdict::Kind::delivered) pending[legs[li].recipient] = true;
    std::erase_if(d.final, [&](const std::string& entry) {
        if (std::find(reopened.begin(), reopened.end(), entry) != reopened.end()) return true;
        // A whole-recipient entry of a recipient with a leg that is open again.
        for (std::size_t ri = 0; ri < recipients.size(); ++ri)
            if (pending[ri] && entry == recipients[ri]) return true;
        return false;
    });
    d.done = false;
}

}  // namespace ferry::queue
