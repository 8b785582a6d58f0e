#include "dns/mx_plan.hpp"

#include <algorithm>

#include "dns/wire.hpp"

namespace ferry::dns {

MxPlan plan_mx(std::string_view domain, const Answer& mx_answer, std::mt19937& random) {
    MxPlan plan;
    switch (mx_answer.status) {
    case Answer::Status::temporary:
        plan.kind = MxPlan::Kind::temporary;
        plan.reason = "MX lookup for " + std::string(domain) + " failed: " + mx_answer.why;
        return plan;
    case Answer::Status::nxdomain:
        plan.kind = MxPlan::Kind::no_domain;
        plan.reason = "domain " + std::string(domain) + " does not exist (NXDOMAIN)";
        return plan;
    case Answer::Status::no_data:
        plan.kind = MxPlan::Kind::hosts;
        plan.hosts.push_back(MxHost{std::string(domain), 0, true});
        return plan;
    case Answer::Status::data:
        break;
    }
    std::vector<MxRecord> records;
    for (const auto& rdata : mx_answer.rdata)
        if (auto mx = parse_mx(rdata)) records.push_back(std::move(*mx));
    if (records.size() == 1 && records.front().host.empty()) {
        plan.kind = MxPlan::Kind::null_mx;
        plan.reason = "domain " + std::string(domain) + " does not accept mail (null MX, RFC 7505)";
        return plan;
    }
    std::erase_if(records, [](const MxRecord& r) { return r.host.empty(); });
    if (records.empty()) {
        plan.kind = MxPlan::Kind::bad_records;
        plan.reason = "no usable MX record for " + std::string(domain);
        return plan;
    }
    std::shuffle(records.begin(), records.end(), random);
    std::stable_sort(records.begin(), records.end(),
                     [](const MxRecord& a, const MxRecord& b) { return a.preference < b.preference; });
    plan.kind = MxPlan::Kind::hosts;
    for (auto& r : records) {
        const bool seen = std::any_of(plan.hosts.begin(), plan.hosts.end(),
                                      [&](const MxHost& h) { return h.host == r.host; });
        if (seen) continue;   // the same host listed twice: its lowest preference counts
        if (plan.hosts.size() == kMaxMxHosts) break;
        plan.hosts.push_back(MxHost{std::move(r.host), r.preference, false});
    }
    return plan;
}

}  // namespace ferry::dns
