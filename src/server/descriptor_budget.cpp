#include "server/descriptor_budget.hpp"

#include <sys/resource.h>

#include <fmt/format.h>

namespace ferry::server {

DescriptorBudget descriptor_budget(const config::Config& config) {
    DescriptorBudget b;
    for (const auto& l : config.listeners) b.sessions += config.connections_of(l);
    b.outbound = config.outbound.max_connections;
    b.filters = b.sessions * config.milters.size() + (config.rspamd.url.empty() ? 0 : config.rspamd.max_connections);
    return b;
}

std::string descriptor_shortfall(const config::Config& config, std::uint64_t limit) {
    const DescriptorBudget b = descriptor_budget(config);
    if (b.total() <= limit) return "";
    std::string terms;
    for (std::size_t i = 0; i < config.listeners.size(); ++i) {
        const auto& l = config.listeners[i];
        terms += l.connections ? fmt::format("listen[{}].connections ({})", i, *l.connections)
                               : fmt::format("limits.connections for listen[{}] ({})", i, config.limits.connections);
        terms += " + ";
    }
    if (b.filters > 0)
        terms = fmt::format("({}) x (1 + {} milter connection{} each) + rspamd.max_connections ({}) + ",
                            terms.substr(0, terms.size() - 3), config.milters.size(),
                            config.milters.size() == 1 ? "" : "s",
                            config.rspamd.url.empty() ? 0 : config.rspamd.max_connections);
    const std::string file = config.source.empty() ? "built-in configuration" : config.source.string();
    return fmt::format("{}: {}outbound.max_connections ({}) + {} reserved need {} file descriptors, but "
                       "RLIMIT_NOFILE allows {}: lower the connection limits, or raise the limit "
                       "(systemd LimitNOFILE=, ulimit -n)",
                       file, terms, b.outbound, b.reserve, b.total(), limit);
}

std::string descriptor_limit_error(const config::Config& config) {
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_max == RLIM_INFINITY) return "";
    return descriptor_shortfall(config, lim.rlim_max);
}

void raise_descriptor_limit() {
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &lim);
    }
}

}  // namespace ferry::server
