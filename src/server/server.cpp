#include "server/server.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <list>

#include "delivery/outbound.hpp"
#include "delivery/router.hpp"
#include "dns/resolver.hpp"
#include "mailauth/public_suffix.hpp"
#include "mailauth/signing.hpp"
#include "policy/local_directory.hpp"
#include "queue/delivery_queue.hpp"
#include "server/accept_shedder.hpp"
#include "server/client_policy.hpp"
#include "server/connection_limits.hpp"
#include "server/descriptor_budget.hpp"
#include "server/control_socket.hpp"
#include "server/pickup_service.hpp"
#include "server/privileges.hpp"
#include "server/smtp_connection.hpp"
#include "server/tls_context.hpp"
#include "smtp/reply.hpp"
#include "spool/spool.hpp"
#include "util/fs.hpp"

namespace ferry::server {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

namespace {

std::string_view role_name(config::ListenerRole role) {
    switch (role) {
    case config::ListenerRole::mx: return "mx";
    case config::ListenerRole::submission: return "submission";
    case config::ListenerRole::submissions: return "submissions";
    }
    return "?";
}

// The organizational-domain rules DMARC needs. Without the list (Debian's publicsuffix not installed), every
// domain's organizational domain is its last two labels (the list's implicit "*" rule), which is right for
// most domains and wrong under suffixes like co.uk: say so, but keep serving.
mailauth::PublicSuffixList load_public_suffixes(const config::Config& c) {
    std::string error;
    if (auto list = mailauth::PublicSuffixList::load(c.mailauth.public_suffix_list, error)) return std::move(*list);
    if (c.mailauth.verify)
        spdlog::warn("mailauth: {}; DMARC takes the last two labels of a domain as its organizational domain", error);
    return mailauth::PublicSuffixList::parse("");
}

queue::QueueSettings queue_settings(const config::Config& c) {
    queue::QueueSettings q;
    q.mail_root = c.mail_dir();
    q.sync = c.queue.sync;
    q.hostname = c.hostname;
    q.min_retry = c.queue.min_retry;
    q.max_retry = c.queue.max_retry;
    q.lifetime = c.queue.lifetime;
    q.workers = c.queue.delivery_workers;
    q.active_limit = c.queue.active_limit;
    q.relay_host = c.outbound.relay_host;
    return q;
}

class Server {
    struct Acceptor {
        tcp::acceptor acceptor;
        std::string name;
        config::Listener settings;                  // as bound; listener changes wait for the next start
        std::unique_ptr<ConnectionLimits> limits;   // this listener's sessions only
        AcceptBackoff backoff;
    };

public:
    explicit Server(config::Config cfg)
        : config_(std::make_shared<const config::Config>(std::move(cfg))),
          directory_(config_->local_domains, config_->aliases, config_->accounts_file()),
          spool_(config_->spool_dir(), config_->queue.sync),
          committer_(spool_),
          router_(directory_),
          outbound_(*config_),
          queue_(spool_, router_, &outbound_, queue_settings(*config_)),
          control_(io_, auth_pool_.get_executor(), queue_),
          pickup_(io_, auth_pool_.get_executor(), spool_, committer_, queue_,
                  [this] {
                      std::lock_guard lock(shared_mutex_);
                      return config_;
                  },
                  [this] {
                      std::lock_guard lock(shared_mutex_);
                      return services_.signing_keys;
                  }),
          services_{io_,     directory_, spool_,  committer_, queue_,  {}, nullptr, auth_pool_, {},
                    nullptr, nullptr,    nullptr, std::mt19937{std::random_device{}()}, nullptr},
          resolver_(io_.get_executor(), config_->dns),
          public_suffixes_(load_public_suffixes(*config_)),
          signals_(io_, SIGTERM, SIGINT, SIGHUP) {
        services_.resolver = &resolver_;
        services_.public_suffixes = &public_suffixes_;
        // Before the privilege drop, like the TLS key: signing keys may be readable by root only.
        services_.signing_keys = std::make_shared<const mailauth::SigningKeys>(mailauth::SigningKeys::load(config_->dkim));
        services_.rspamd = make_rspamd(*config_);
        services_.client_policy = &client_policy_;
    }

    // One rspamd client (and its pool of connections) for every session; null when [rspamd] url is not set.
    std::shared_ptr<filter::RspamdClient> make_rspamd(const config::Config& cfg) {
        if (cfg.rspamd.url.empty()) return nullptr;
        return std::make_shared<filter::RspamdClient>(io_.get_executor(), cfg.rspamd);
    }

    int run() {
        // Before the privilege drop: the key may be readable by root only.
        services_.tls = make_tls_context(*config_);
        for (const auto& l : config_->listeners) bind(l);
        drop_privileges(*config_);
        const auto recovered = spool_.recover();
        control_.start(config_->data_dir);
        outbound_.start();
        queue_.start();
        pickup_.start(config_->data_dir);
        client_policy_.start();   // after the privilege drop: its table file belongs to the serving user
        for (const auto& id : recovered) queue_.submit(id, true);
        if (!recovered.empty()) spdlog::info("recovered messages={} from spool", recovered.size());
        for (auto& a : acceptors_) asio::co_spawn(io_, accept_loop(a), asio::detached);
        wait_for_signal();
        spdlog::info("ready hostname={} data_dir={}", config_->hostname, config_->data_dir.string());
        io_.run();
        auth_pool_.join();
        committer_.stop();
        // Outbound first: connections are cut and what they had comes back to the queue, whose workers record
        // it (mail that went out is not sent again after a restart) before they stop.
        outbound_.stop();
        queue_.stop();
        spdlog::info("stopped");
        return 0;
    }

private:
    void bind(const config::Listener& l) {
        error_code ec;
        const auto address = asio::ip::make_address(l.host, ec);
        if (ec) throw std::runtime_error(fmt::format("bad listen address {}: {}", l.host, ec.message()));
        tcp::endpoint endpoint(address, l.port);
        tcp::acceptor acceptor(io_);
        acceptor.open(endpoint.protocol());
        acceptor.set_option(asio::socket_base::reuse_address(true));
        acceptor.bind(endpoint, ec);
        if (ec) throw std::runtime_error(fmt::format("cannot listen on {}:{}: {}", l.host, l.port, ec.message()));
        acceptor.listen(asio::socket_base::max_listen_connections);
        const auto local = acceptor.local_endpoint();
        std::string name = fmt::format("{}:{}", local.address().to_string(), local.port());
        spdlog::info("listening address={} role={}", name, role_name(l.role));
        auto limits = std::make_unique<ConnectionLimits>(config_->connections_of(l), config_->connections_per_ip_of(l));
        acceptors_.push_back(Acceptor{std::move(acceptor), std::move(name), l, std::move(limits), {}});
    }

    asio::awaitable<void> accept_loop(Acceptor& a) {
        for (;;) {
            auto [ec, socket] = co_await a.acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
            if (stopping_) co_return;
            if (ec) {
                if (ec == asio::error::operation_aborted) co_return;
                std::chrono::milliseconds pause{100};
                if (is_resource_exhaustion(ec)) {
                    // Out of descriptors or memory: the waiting clients get 421 instead of silence, and accepting
                    // pauses (100 ms doubling to 1 s) so sessions can end, instead of spinning on the error.
                    const std::size_t shed = shedder_.shed(a.acceptor.native_handle(), shed_reply());
                    pause = a.backoff.failed();
                    OverloadReport::Counts counts;
                    if (overload_report_.failed(OverloadReport::Clock::now(), shed, counts))
                        spdlog::error("accept on {} failed: {}; on all listeners since the last such line: {} failed "
                                      "accepts, {} waiting clients answered 421 4.3.2 (one line per {} s at most)",
                                      a.name, ec.message(), counts.failures, counts.shed,
                                      OverloadReport::kInterval.count());
                } else {
                    spdlog::error("accept on {} failed: {}", a.name, ec.message());
                }
                asio::steady_timer timer(io_, pause);
                co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
                continue;
            }
            a.backoff.succeeded();
            auto connection =
                std::make_shared<SmtpConnection>(std::move(socket), services_, config_, a.name, a.settings, *a.limits);
            asio::co_spawn(io_, [connection]() { return connection->run(); }, asio::detached);
        }
    }

    std::string shed_reply() const {
        return smtp::Reply(421, "4.3.2", config_->hostname + " Error: too busy, try again later").render();
    }

    void wait_for_signal() {
        signals_.async_wait([this](error_code ec, int signal) {
            if (ec) return;
            if (signal == SIGHUP) {
                reload();
                wait_for_signal();
                return;
            }
            spdlog::info("signal={} stopping: no new connections, closing sessions", signal);
            stopping_ = true;
            control_.close();
            pickup_.stop();
            resolver_.cancel_all();   // checks waiting on DNS end now (temperror), their sessions get 421
            client_policy_.stop();    // the greylist table's last save
            if (services_.rspamd) services_.rspamd->close();
            for (auto& a : acceptors_) {
                error_code ignored;
                a.acceptor.close(ignored);
            }
            // Copy: sessions remove themselves from `live` as they end.
            const std::vector<SmtpConnection*> live(services_.live.begin(), services_.live.end());
            for (SmtpConnection* c : live) c->shutdown();
        });
    }

    void reload() {
        if (config_->source.empty()) {
            spdlog::info("reload: running on the built-in configuration; accounts re-read");
            directory_.reload_accounts();
            return;
        }
        try {
            config::Config fresh = config::load_config(config_->source);
            auto tls = make_tls_context(fresh);   // a broken certificate refuses the whole reload
            auto keys = std::make_shared<const mailauth::SigningKeys>(mailauth::SigningKeys::load(fresh.dkim));
            // Connection limits that cannot fit the descriptor limit refuse the reload, as they refuse a start.
            if (const auto why = descriptor_limit_error(fresh); !why.empty()) throw std::runtime_error(why);
            services_.tls = std::move(tls);
            // Sessions under way keep the client they started with; new ones take the fresh settings.
            if (services_.rspamd) services_.rspamd->close();
            services_.rspamd = make_rspamd(fresh);
            client_policy_.reconfigure(fresh);
            directory_.update(fresh.local_domains, fresh.aliases);
            directory_.reload_accounts();
            set_listener_limits(fresh);
            std::lock_guard lock(shared_mutex_);   // the pickup service reads both from its worker thread
            services_.signing_keys = std::move(keys);
            config_ = std::make_shared<const config::Config>(std::move(fresh));
            spdlog::info("reload: configuration {} applied to new sessions", config_->source.string());
        } catch (const std::exception& e) {
            spdlog::error("reload failed, keeping the running configuration: {}", e.what());
        }
    }

    // Reload: each listener takes the limits its entry in the fresh file gives (found by address), or the fresh
    // [limits] defaults when the entry is gone; other listener changes wait for the next start.
    void set_listener_limits(const config::Config& fresh) {
        bool changed = fresh.listeners.size() != acceptors_.size();
        std::size_t i = 0;
        for (auto& a : acceptors_) {
            const auto same_address = [&](const config::Listener& l) {
                return l.host == a.settings.host && l.port == a.settings.port;
            };
            // The same place in the file first: two listeners on port 0 (kernel-picked) share an address.
            auto same = fresh.listeners.begin() + static_cast<std::ptrdiff_t>(std::min(i++, fresh.listeners.size()));
            if (same == fresh.listeners.end() || !same_address(*same))
                same = std::find_if(fresh.listeners.begin(), fresh.listeners.end(), same_address);
            if (same == fresh.listeners.end()) {
                changed = true;
                a.limits->set_limits(fresh.limits.connections, fresh.limits.connections_per_ip);
            } else {
                a.limits->set_limits(fresh.connections_of(*same), fresh.connections_per_ip_of(*same));
            }
        }
        if (changed) spdlog::warn("reload: listener changes take effect at the next start");
    }

    asio::io_context io_{1};
    asio::thread_pool auth_pool_{2};
    std::shared_ptr<const config::Config> config_;
    policy::LocalDirectory directory_;
    spool::Spool spool_;
    spool::Committer committer_;
    delivery::Router router_;
    delivery::Outbound outbound_;
    queue::DeliveryQueue queue_;
    ControlSocket control_;
    PickupService pickup_;
    std::mutex shared_mutex_;   // config_ and services_.signing_keys, replaced on reload, read by pickup_
    ServerServices services_;
    dns::Resolver resolver_;   // for the checks of arriving mail; outbound delivery has its own, on its thread
    mailauth::PublicSuffixList public_suffixes_;
    ClientPolicy client_policy_{io_.get_executor(), resolver_, *config_};
    asio::signal_set signals_;
    std::list<Acceptor> acceptors_;
    bool stopping_ = false;
    AcceptShedder shedder_;   // one spare descriptor for all listeners
    OverloadReport overload_report_;
};

// One server per data_dir: at recovery a second one would take the first one's messages still being received
// for partial files, and delete them.
// The lock lives as long as the process (the descriptor is never closed).
void lock_data_dir(const std::filesystem::path& data_dir) {
    const auto lock_file = data_dir / "serve.lock";
    const int fd = ::open(lock_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) throw std::runtime_error(fmt::format("cannot open {}: {}", lock_file.string(), std::strerror(errno)));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0)
        throw std::runtime_error(fmt::format("{} is in use by another ferry serve", data_dir.string()));
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd, 0) == 0) util::write_all(fd, pid);
}

}  // namespace

int serve(config::Config config) {
    check_start_identity(config);
    raise_descriptor_limit();   // main() refused limits that cannot fit the hard limit
    if (rlimit lim{}; ::getrlimit(RLIMIT_NOFILE, &lim) == 0)
        spdlog::info("file descriptors: up to {} needed (connections, outbound, reserve), limit {}",
                     descriptor_budget(config).total(), lim.rlim_cur);
    util::make_dirs(config.data_dir);
    util::make_dirs(config.mail_dir());
    lock_data_dir(config.data_dir);
    Server server(std::move(config));
    return server.run();
}

}  // namespace ferry::server
