#include "delivery/outbound.hpp"

#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <fstream>

#include "dns/mail_route.hpp"

namespace ferry::delivery {

namespace {

// How long an address whose TLS handshake failed gets mail without TLS before TLS is tried again.
constexpr auto kTlsRetryAfter = std::chrono::hours(1);

std::string read_password(const std::filesystem::path& file) {
    std::ifstream in(file);
    std::string line;
    if (!in || !std::getline(in, line)) throw std::runtime_error("cannot read " + file.string());
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
}

// "host", "host:port", "[v6]", "[v6]:port", as the config loader has checked it.
std::pair<std::string, std::uint16_t> split_relay(const std::string& text, std::uint16_t default_port) {
    config::HostPort hp;
    config::split_host_port(text, false, false, hp);
    return {hp.host, hp.port ? static_cast<std::uint16_t>(*hp.port) : default_port};
}

// What a job that Ferry stops before it is sent comes back with: a temporary failure, so the attempt settles
// (the legs already sent are recorded) and the job is tried again after the restart. RFC 3463 4.3.2: "system not
// accepting network messages".
DeliveryResult shutting_down() { return temporary_result("4.3.2", "shutting down before the message was sent"); }

void fail_job(RemoteJob& job) { job.done(std::vector<DeliveryResult>(job.recipients.size(), shutting_down())); }

std::shared_ptr<asio::ssl::context> client_tls_context() {
    auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    // Opportunistic TLS (RFC 7435): any certificate gets encryption. The system's roots are still loaded so
    // the log can say whether the certificate would have verified.
    ctx->set_default_verify_paths();
    ctx->set_verify_mode(asio::ssl::verify_none);
    return ctx;
}

}  // namespace

RemoteJob::RemoteJob(RemoteJob&& o) noexcept
    : message(std::move(o.message)), recipients(std::move(o.recipients)), destination(std::move(o.destination)),
      done(std::move(o.done)) {
    o.message.fd = -1;
}

RemoteJob& RemoteJob::operator=(RemoteJob&& o) noexcept {
    if (this != &o) {
        if (message.fd >= 0) ::close(message.fd);
        message = std::move(o.message);
        recipients = std::move(o.recipients);
        destination = std::move(o.destination);
        done = std::move(o.done);
        o.message.fd = -1;
    }
    return *this;
}

RemoteJob::~RemoteJob() {
    if (message.fd >= 0) ::close(message.fd);
}

Outbound::Outbound(const config::Config& config)
    : port_(config.outbound.port),
      max_connections_(config.outbound.max_connections),
      per_destination_(config.outbound.max_connections_per_destination) {
    const auto& o = config.outbound;
    client_.helo_name = o.helo_name.empty() ? config.hostname : o.helo_name;
    client_.connect_timeout = o.connect_timeout;
    client_.command_timeout = o.command_timeout;
    client_.data_timeout = o.data_timeout;
    client_.tls = client_tls_context();
    if (!o.relay_host.empty()) std::tie(relay_host_, relay_port_) = split_relay(o.relay_host, port_);
    if (!o.relay_user.empty()) {
        client_.auth_user = o.relay_user;
        client_.auth_password = read_password(o.relay_password_file);
        client_.require_tls = true;   // a password never goes out in the clear
    }
    // Checked here, at start, rather than at each connection: an address this host does not have would defer
    // every message to that family.
    for (const bool v6 : {false, true}) {
        const std::string& text = v6 ? o.source_address6 : o.source_address;
        if (text.empty()) continue;
        const auto address = asio::ip::make_address(text);   // the config loader checked the syntax and family
        asio::ip::tcp::socket probe(io_);
        boost::system::error_code ec;
        probe.open(v6 ? asio::ip::tcp::v6() : asio::ip::tcp::v4(), ec);
        if (!ec) probe.bind(asio::ip::tcp::endpoint(address, 0), ec);
        if (ec)
            throw std::runtime_error(fmt::format("outbound.{} {}: cannot bind to it: {}",
                                                 v6 ? "source_address6" : "source_address", text, ec.message()));
        (v6 ? client_.source_v6 : client_.source_v4) = address;
    }
    resolver_ = std::make_unique<dns::Resolver>(io_.get_executor(), config.dns);
}

Outbound::~Outbound() { stop(); }

void Outbound::start() {
    work_.emplace(io_.get_executor());
    thread_ = std::thread([this] {
        try {
            io_.run();
        } catch (const std::exception& e) {
            spdlog::critical("outbound delivery stopped: {}", e.what());
        }
    });
}

void Outbound::stop() {
    if (!thread_.joinable()) return;
    {
        // Jobs submitted before this point are posted before the shutdown and run first (one thread: handlers
        // in order); later ones are failed in submit().
        std::lock_guard lock(submit_mutex_);
        accepting_ = false;
        asio::post(io_, [this] { shut_down(); });
    }
    thread_.join();
    resolver_.reset();
}

// Every waiting job comes back now; the connections are cut, so their coroutines return what they carried (a
// transaction cut midway is a temporary failure) and end. The thread ends when the last of them has.
void Outbound::shut_down() {
    stopping_ = true;
    for (auto& [key, d] : destinations_) fail_waiting(d, shutting_down());
    for (SmtpClient* c : clients_) c->abort();
    resolver_->cancel_all();
    work_.reset();
}

void Outbound::submit(RemoteJob job) {
    if (!relay_host_.empty()) job.destination = "[" + relay_host_ + "]";
    {
        std::lock_guard lock(submit_mutex_);
        if (accepting_) {
            asio::post(io_, [this, job = std::make_shared<RemoteJob>(std::move(job))]() mutable {
                enqueue(std::move(*job));
            });
            return;
        }
    }
    fail_job(job);
}

void Outbound::enqueue(RemoteJob job) {
    if (stopping_) {
        fail_job(job);
        return;
    }
    const std::string key = job.destination;
    destinations_[key].jobs.push_back(std::move(job));
    spawn_connections(key);
}

// A new connection when the waiting jobs outnumber the connections that are about to take one, within limits.
void Outbound::spawn_connections(const std::string& key) {
    auto it = destinations_.find(key);
    if (it == destinations_.end()) return;
    Destination& d = it->second;
    while (!stopping_ && d.jobs.size() > d.connections - d.busy && d.connections < per_destination_ &&
           connections_ < max_connections_) {
        ++d.connections;
        ++connections_;
        asio::co_spawn(io_, run_connection(key), [](std::exception_ptr e) {
            if (!e) return;
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                spdlog::error("outbound connection failed: {}", ex.what());
            }
        });
    }
}

std::optional<RemoteJob> Outbound::next_job(Destination& d) {
    if (stopping_ || d.jobs.empty()) return std::nullopt;
    RemoteJob job = std::move(d.jobs.front());
    d.jobs.erase(d.jobs.begin());
    return job;
}

void Outbound::fail_waiting(Destination& d, const DeliveryResult& result) {
    std::vector<RemoteJob> jobs = std::move(d.jobs);
    d.jobs.clear();
    for (auto& job : jobs) job.done(std::vector<DeliveryResult>(job.recipients.size(), result));
}

bool Outbound::use_tls_to(const std::string& address) {
    if (client_.require_tls) return true;
    const auto it = tls_broken_.find(address);
    if (it == tls_broken_.end()) return true;
    if (std::chrono::steady_clock::now() - it->second < kTlsRetryAfter) return false;
    tls_broken_.erase(it);
    return true;
}

asio::awaitable<void> Outbound::run_connection(std::string key) {
    struct Release {   // the connection's slots, whichever way the coroutine ends
        Outbound& o;
        std::string key;
        ~Release() {
            auto it = o.destinations_.find(key);
            --it->second.connections;
            --o.connections_;
            if (it->second.connections == 0 && it->second.jobs.empty()) o.destinations_.erase(it);
            // A slot is free: destinations that waited for one (the total limit) may start a connection.
            std::vector<std::string> waiting;
            for (const auto& [k, d] : o.destinations_)
                if (d.jobs.size() > d.connections - d.busy) waiting.push_back(k);
            for (const auto& k : waiting) o.spawn_connections(k);
        }
    } release{*this, key};

    const bool relay = !relay_host_.empty();
    // Two statements, not `relay ? co_await ... : co_await ...`: g++ 12 destroys the temporary of such a
    // conditional twice.
    dns::MailRoute route;
    if (relay) route = co_await dns::resolve_host_route(*resolver_, relay_host_);
    else route = co_await dns::resolve_mail_route(*resolver_, key, random_);
    Destination& d = destinations_.at(key);
    if (stopping_) co_return;
    if (route.kind != dns::MailRoute::Kind::deliver) {
        const bool permanent = route.kind == dns::MailRoute::Kind::permanent;
        spdlog::warn("outbound destination={} route {}: {} {}", key, permanent ? "failed" : "unavailable",
                     route.status, route.reason);
        fail_waiting(d, permanent ? permanent_result(route.status, route.reason)
                                  : temporary_result(route.status, route.reason));
        co_return;
    }
    for (const auto& note : route.notes) spdlog::info("outbound destination={} {}", key, note);

    const std::uint16_t port = relay ? relay_port_ : port_;
    DeliveryResult last = temporary_result("4.4.1", "no MX host of " + key + " could be reached");
    std::optional<RemoteJob> current;   // a job whose connection was lost midway: it goes to the next host
    struct ReturnCurrent {              // ... or, when Ferry stops first, back to the queue
        std::optional<RemoteJob>& job;
        ~ReturnCurrent() {
            if (job) fail_job(*job);
        }
    } return_current{current};
    for (const auto& target : route.targets) {
        for (const auto& address : target.addresses) {
            if (stopping_) co_return;
            if (!current && d.jobs.empty()) co_return;
            SmtpClient client(io_.get_executor(), client_);
            clients_.insert(&client);
            struct Forget {
                std::set<SmtpClient*>& set;
                SmtpClient* c;
                ~Forget() { set.erase(c); }
            } forget{clients_, &client};
            const bool tls = use_tls_to(address);
            if (auto failed = co_await client.open(target.host, address, port, tls)) {
                if (client.tls_failed()) tls_broken_[address] = std::chrono::steady_clock::now();
                spdlog::warn("outbound destination={} {}", key, failed->diagnostic);
                last = std::move(*failed);
                continue;
            }
            spdlog::info("outbound destination={} connected to {} tls={}", key, client.peer(), client.tls_summary());
            while (client.usable()) {
                std::optional<RemoteJob> job = current ? std::move(current) : next_job(d);
                current.reset();
                if (!job) break;
                ++d.busy;
                std::vector<DeliveryResult> results = co_await client.send(job->message, job->recipients);
                --d.busy;
                const bool all_temporary = std::all_of(results.begin(), results.end(), [](const DeliveryResult& r) {
                    return r.kind == DeliveryResult::Kind::temporary;
                });
                if (!client.usable() && all_temporary && !stopping_) {
                    // Lost midway: the next host may do better (RFC 5321 5.1), in this same attempt.
                    last = results.front();
                    current = std::move(job);
                    break;
                }
                for (auto& r : results)
                    if (r.kind == DeliveryResult::Kind::sent) {
                        r.via = client.peer() + " tls=" + client.tls_summary();
                        r.next_hop_dsn = client.capabilities().dsn;
                    }
                job->done(std::move(results));
            }
            co_await client.quit();
            // The session served what it could. Jobs that came meanwhile get a connection of their own (Release);
            // only a job cut off midway goes on to the next host.
            if (!current) co_return;
        }
    }
    if (stopping_) co_return;
    // Every host tried without a session that ended well: what is left waits for the next attempt, with the
    // last host's error.
    if (current) {
        current->done(std::vector<DeliveryResult>(current->recipients.size(), last));
        current.reset();
    }
    fail_waiting(d, last);
}

}  // namespace ferry::delivery
