#include "cli/dns_command.hpp"

#include <boost/asio.hpp>
#include <fmt/format.h>

#include <iostream>
#include <random>

#include "config/config.hpp"
#include "smtp/address.hpp"
#include "dns/mail_route.hpp"

namespace ferry::cli {

namespace asio = boost::asio;

int run_dns_command(const std::string& domain, const std::filesystem::path& config_file) {
    config::Config cfg;
    try {
        cfg = config::load_config(config_file);
    } catch (const config::ConfigError& e) {
        std::cerr << e.what() << "\n";
        return 2;
    }
    const std::string why = smtp::domain_error(domain);
    if (!why.empty()) {
        std::cerr << "ferry dns: \"" << domain << "\" is not a domain name (" << why << ")\n";
        return 2;
    }
    asio::io_context io;
    dns::MailRoute route;
    try {
        dns::Resolver resolver(io.get_executor(), cfg.dns);
        std::mt19937 random{std::random_device{}()};
        asio::co_spawn(io, dns::resolve_mail_route(resolver, config::ascii_lower(domain), random),
                       [&](std::exception_ptr e, dns::MailRoute r) {
                           if (e) std::rethrow_exception(e);
                           route = std::move(r);
                       });
        io.run();
    } catch (const std::exception& e) {
        std::cerr << "ferry dns: " << e.what() << "\n";
        return 2;
    }
    for (const auto& note : route.notes) std::cout << "# " << note << "\n";
    switch (route.kind) {
    case dns::MailRoute::Kind::deliver:
        for (const auto& t : route.targets) {
            std::cout << fmt::format("{} {}{}", t.preference, t.host, t.implicit ? " (no MX: implicit)" : "");
            for (const auto& a : t.addresses) std::cout << " " << a;
            std::cout << "\n";
        }
        return 0;
    case dns::MailRoute::Kind::permanent:
        std::cout << fmt::format("permanent {} {}\n", route.status, route.reason);
        return 1;
    case dns::MailRoute::Kind::temporary:
        std::cout << fmt::format("temporary {} {}\n", route.status, route.reason);
        return 75;
    }
    return 1;
}

}  // namespace ferry::cli
