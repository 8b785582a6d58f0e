#include "delivery/router.hpp"

#include <set>

#include "policy/mail_policy.hpp"

namespace ferry::delivery {
namespace {
// Alias chains deeper than this are a configuration loop (Postfix's local(8) uses a similar bound).
constexpr int kMaxAliasDepth = 10;
}

Route Router::resolve(const std::string& recipient) {
    Route route;
    std::set<std::string> seen;
    struct Pending {
        std::string key;
        int depth;
    };
    std::vector<Pending> todo{{policy::LocalDirectory::key_of(recipient), 0}};
    while (!todo.empty()) {
        Pending p = std::move(todo.back());
        todo.pop_back();
        if (!seen.insert(p.key).second) continue;   // a target reached twice gets one copy
        const auto at = p.key.rfind('@');
        if (at == std::string::npos) {
            route.error = "no domain in " + p.key;
            route.status = "5.1.3";
            route.permanent = true;
            return route;
        }
        Destination d;
        d.address = p.key;
        d.local = p.key.substr(0, at);
        d.domain = p.key.substr(at + 1);
        if (!directory_.is_local_domain(d.domain)) {
            d.kind = Destination::Kind::remote;
            route.destinations.push_back(std::move(d));
            continue;
        }
        const auto targets = directory_.alias_targets(p.key);
        if (targets && p.depth < kMaxAliasDepth) {
            for (const auto& t : *targets) {
                const std::string tkey = policy::LocalDirectory::key_of(t);
                if (tkey == p.key) {   // "a = [a, b]": a keeps its own mailbox too
                    route.destinations.push_back(d);
                    continue;
                }
                todo.push_back({tkey, p.depth + 1});
            }
            continue;
        }
        if (targets) {
            route.error = "alias loop or chain deeper than 10 at " + p.key;
            route.status = "5.4.6";   // RFC 3463: routing loop detected
            route.permanent = true;
            return route;
        }
        if (directory_.has_account(p.key) || policy::is_postmaster(d.local)) {
            route.destinations.push_back(std::move(d));
            continue;
        }
        route.error = "unknown user " + p.key;
        route.status = "5.1.1";
        route.permanent = true;
        return route;
    }
    return route;
}

}  // namespace ferry::delivery
