#include "dns/mail_route.hpp"

#include <fmt/format.h>

#include "dns/mx_plan.hpp"
#include "dns/wire.hpp"

namespace ferry::dns {

namespace {

struct HostLookup {
    std::vector<std::string> addresses;
    bool temporary = false;
    std::string why;
};

// AAAA, then A. A temporary failure of one type with an answer for the other still gives addresses.
asio::awaitable<HostLookup> look_up_host(Resolver& resolver, const std::string& host) {
    HostLookup out;
    std::vector<std::string> failures;
    for (const int type : {kTypeAaaa, kTypeA}) {
        const Answer a = co_await resolver.query(host, type);
        if (a.status == Answer::Status::data) {
            for (const auto& rdata : a.rdata)
                if (auto text = type == kTypeA ? parse_a(rdata) : parse_aaaa(rdata)) out.addresses.push_back(*text);
        } else if (a.status == Answer::Status::temporary) {
            out.temporary = true;
            failures.push_back(fmt::format("{} lookup for {} failed: {}", type == kTypeA ? "A" : "AAAA", host, a.why));
        } else if (a.status == Answer::Status::nxdomain) {
            failures.push_back(fmt::format("host {} does not exist (NXDOMAIN)", host));
            break;   // AAAA said the name does not exist; A would say the same
        }
    }
    if (out.addresses.empty())
        out.why = failures.empty() ? fmt::format("host {} has no A or AAAA record", host) : failures.back();
    co_return out;
}

}  // namespace

asio::awaitable<MailRoute> resolve_mail_route(Resolver& resolver, std::string domain, std::mt19937& random) {
    MailRoute route;
    const Answer mx = co_await resolver.query(domain, kTypeMx);
    MxPlan plan = plan_mx(domain, mx, random);
    if (plan.kind != MxPlan::Kind::hosts) {
        // RFC 3463: 5.1.10 null MX, 5.1.2 no such domain, 5.4.4 unusable MX records, 4.4.3 directory failure.
        const bool temporary = plan.kind == MxPlan::Kind::temporary;
        route.kind = temporary ? MailRoute::Kind::temporary : MailRoute::Kind::permanent;
        route.status = temporary                                ? "4.4.3"
                       : plan.kind == MxPlan::Kind::null_mx    ? "5.1.10"
                       : plan.kind == MxPlan::Kind::no_domain  ? "5.1.2"
                                                               : "5.4.4";
        route.reason = std::move(plan.reason);
        co_return route;
    }
    bool any_temporary = false;
    for (const MxHost& h : plan.hosts) {
        HostLookup found = co_await look_up_host(resolver, h.host);
        if (found.addresses.empty()) {
            any_temporary = any_temporary || found.temporary;
            route.notes.push_back(found.why);
            continue;
        }
        route.targets.push_back(MailTarget{h.host, h.preference, h.implicit, std::move(found.addresses)});
    }
    if (!route.targets.empty()) {
        route.kind = MailRoute::Kind::deliver;
    } else if (any_temporary) {
        route.kind = MailRoute::Kind::temporary;
        route.status = "4.4.3";
        route.reason = route.notes.back();
    } else {
        // RFC 5321 5.1: no MX host of the domain has an address (or, without MX, the domain itself has none).
        route.kind = MailRoute::Kind::permanent;
        route.status = "5.4.4";
        route.reason = route.notes.back();
    }
    co_return route;
}

asio::awaitable<MailRoute> resolve_host_route(Resolver& resolver, std::string host) {
    MailRoute route;
    boost::system::error_code ec;
    const std::string bare = host.size() > 2 && host.front() == '[' && host.back() == ']' ? host.substr(1, host.size() - 2)
                                                                                          : host;
    asio::ip::make_address(bare, ec);
    if (!ec) {
        route.kind = MailRoute::Kind::deliver;
        route.targets.push_back(MailTarget{bare, 0, true, {bare}});
        co_return route;
    }
    HostLookup found = co_await look_up_host(resolver, host);
    if (found.addresses.empty()) {
        // A relay host is the operator's choice: its name not resolving is a problem to fix, not a reason to
        // return everyone's mail, so even NXDOMAIN defers.
        route.kind = MailRoute::Kind::temporary;
        route.status = "4.4.3";
        route.reason = found.why;
        co_return route;
    }
    route.kind = MailRoute::Kind::deliver;
    route.targets.push_back(MailTarget{host, 0, true, std::move(found.addresses)});
    co_return route;
}

}  // namespace ferry::dns
