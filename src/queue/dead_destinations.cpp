#include "queue/dead_destinations.hpp"

#include <algorithm>

namespace ferry::queue {

using delivery::DeliveryResult;

bool is_destination_failure(const DeliveryResult& r) {
    return r.kind == DeliveryResult::Kind::temporary && !r.from_server && r.status.size() >= 4 &&
           r.status.compare(0, 4, "4.4.") == 0;
}

bool DeadDestinations::record(const std::string& domain, const std::vector<DeliveryResult>& results,
                              Clock::time_point now, Clock::duration hold) {
    if (results.empty()) return false;
    if (!std::all_of(results.begin(), results.end(), is_destination_failure)) {
        // It answered, or the failures were about the message or its recipients: alive.
        if (std::any_of(results.begin(), results.end(),
                        [](const DeliveryResult& r) { return r.kind == DeliveryResult::Kind::sent || r.from_server; }))
            dead_.erase(domain);
        return false;
    }
    const bool was_dead = find(domain, now).has_value();
    dead_[domain] = Dead{now + hold, results.front().diagnostic};
    return !was_dead;
}

std::optional<DeadDestinations::Dead> DeadDestinations::find(const std::string& domain, Clock::time_point now) {
    const auto it = dead_.find(domain);
    if (it == dead_.end()) return std::nullopt;
    if (now >= it->second.until) {
        dead_.erase(it);
        return std::nullopt;
    }
    return it->second;
}

}  // namespace ferry::queue
