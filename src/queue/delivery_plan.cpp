#include "queue/delivery_plan.hpp"

#include <map>
#include <set>

#include "util/ascii.hpp"

namespace ferry::queue {

DeliveryPlan plan_delivery(const std::vector<std::string>& recipients, const DeliveryRecord& record,
                           const RouteLookup& route_of) {
    DeliveryPlan plan;
    std::set<std::string> planned;   // final addresses with a leg: one copy each, however many ways reached
    std::map<std::string, std::vector<std::size_t>> by_domain;
    for (std::size_t ri = 0; ri < recipients.size(); ++ri) {
        const std::string& rcpt = recipients[ri];
        if (record.is_final(rcpt)) continue;
        const delivery::Route route = route_of(rcpt);
        if (!route.error.empty()) {
            Leg leg;
            leg.recipient = ri;
            leg.destination = rcpt;
            leg.kind = Leg::Kind::unroutable;
            leg.result = route.permanent ? delivery::permanent_result(route.status, route.error)
                                         : delivery::temporary_result(route.status, route.error);
            plan.legs.push_back(std::move(leg));
            continue;
        }
        for (const auto& dest : route.destinations) {
            if (record.is_final(rcpt, dest.address) || !planned.insert(dest.address).second) continue;
            Leg leg;
            leg.recipient = ri;
            leg.destination = dest.address;
            leg.local = dest.local;
            leg.domain = util::ascii_lower(dest.domain.empty() ? dest.address.substr(dest.address.rfind('@') + 1)
                                                               : dest.domain);
            const std::size_t index = plan.legs.size();
            if (dest.kind == delivery::Destination::Kind::remote) {
                leg.kind = Leg::Kind::remote;
                by_domain[leg.domain].push_back(index);
            } else {
                leg.kind = Leg::Kind::local;
                plan.local_legs.push_back(index);
            }
            plan.legs.push_back(std::move(leg));
        }
    }
    for (auto& [domain, legs] : by_domain) plan.remote.push_back(RemoteGroup{domain, std::move(legs)});
    return plan;
}

}  // namespace ferry::queue
