// What one delivery attempt of a message does, decided before any I/O: the envelope's recipients that are not
// final yet, routed (aliases expanded), become legs: a local Maildir copy, a remote delivery, or a recipient
// that cannot be routed (its result is known at once). Remote legs are grouped by destination domain into one
// job each (all its recipients in one transaction). Pure: the router is a function passed in.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "delivery/router.hpp"
#include "delivery/smtp_client.hpp"
#include "queue/delivery_record.hpp"

namespace ferry::queue {

// One copy or remote delivery of one recipient: a recipient has one leg per final destination (aliases expand).
struct Leg {
    enum class Kind { local, remote, unroutable };
    std::size_t recipient = 0;   // index into the envelope's recipients
    std::string destination;     // final address; the recipient itself when it could not be routed
    Kind kind = Kind::local;
    std::string local;           // local: the mailbox's lower-case local part
    std::string domain;          // local and remote: the lower-case domain
    delivery::DeliveryResult result = delivery::temporary_result("4.3.0", "not attempted");

    bool remote() const { return kind == Kind::remote; }
};

// The remote legs going to one destination domain: one job for delivery/outbound.
struct RemoteGroup {
    std::string domain;              // lower-case
    std::vector<std::size_t> legs;   // indexes into DeliveryPlan::legs, in leg order
};

struct DeliveryPlan {
    std::vector<Leg> legs;
    std::vector<std::size_t> local_legs;   // indexes of the local legs, in order
    std::vector<RemoteGroup> remote;       // sorted by domain
};

using RouteLookup = std::function<delivery::Route(const std::string& recipient)>;

// Recipients final in `record` are not routed; a copy final in it ("rcpt>destination") is skipped. A final
// address reached by two recipients (two aliases, or an alias and the address itself) gets one leg, the
// first's: one copy per mailbox.
DeliveryPlan plan_delivery(const std::vector<std::string>& recipients, const DeliveryRecord& record,
                           const RouteLookup& route);

}  // namespace ferry::queue
