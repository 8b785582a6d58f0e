// Destinations that just failed as a whole (Postfix's "dead destination"): when every leg a remote job carried
// to a domain came back with a connection or routing failure, the domain is marked dead for a while (the queue
// uses min_retry), and the other messages waiting for it are deferred without a connection of their own. Without
// it, a dead relay with 20,000 deferred messages saw one connection attempt per batch of messages coming due.
// A destination that answers (anything sent, or any reply from its server) is alive again at once; `ferry queue
// flush` clears every mark. Pure: the queue holds one under its lock and passes the time in.
//
// What counts as the destination failing, rather than a message or recipient: a temporary result we made
// ourselves (not a server's reply) with an RFC 3463 3.5 "network and routing" code, X.4.Y: no answer from a
// host (4.4.1), a connection lost (4.4.2), the route lookup failing (4.4.3, 4.4.4). A server that refuses the
// greeting with a reply (421) has answered, so it is not marked; nor is a TLS or AUTH failure (X.7.Y).
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "delivery/smtp_client.hpp"

namespace ferry::queue {

bool is_destination_failure(const delivery::DeliveryResult& result);

class DeadDestinations {
public:
    using Clock = std::chrono::steady_clock;

    struct Dead {
        Clock::time_point until;
        std::string reason;   // the failure that marked it
    };

    // The results one job to `domain` came back with (one per recipient). Returns true when this marked the
    // domain dead (it was not before).
    bool record(const std::string& domain, const std::vector<delivery::DeliveryResult>& results, Clock::time_point now,
                Clock::duration hold);
    // The mark of `domain` when it is dead at `now` (an expired mark is dropped).
    std::optional<Dead> find(const std::string& domain, Clock::time_point now);
    void clear() { dead_.clear(); }
    std::size_t size() const { return dead_.size(); }

private:
    std::map<std::string, Dead> dead_;
};

}  // namespace ferry::queue
