// Remote delivery: jobs (some recipients of one message, all for one destination) wait per destination and
// are carried by SMTP connections, at most max_connections_per_destination to one destination and
// max_connections in all. A connection looks up the route (MX, or the relay host), tries its hosts and addresses
// in order, and once in, takes the destination's waiting jobs one after another (connection reuse) before QUIT.
// Runs on a thread and event loop of its own, so a slow remote server never delays the SMTP sessions.
#pragma once

#include <boost/asio.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "config/config.hpp"
#include "delivery/smtp_client.hpp"
#include "dns/resolver.hpp"

namespace ferry::delivery {

struct RemoteJob {
    OutboundMessage message;   // message.fd is the job's own descriptor, closed when the job is destroyed
    std::vector<OutboundRecipient> recipients;
    std::string destination;   // lower-case recipient domain (ignored with a relay host: one destination)
    // One result per recipient, in order; called once, on the outbound thread (or, for a job submitted after
    // stop(), on the submitting thread), for every job submitted after start(). A job Ferry stops before it could
    // be sent comes back as a temporary failure: the queue waits for every job of a message before it records the
    // legs that went out.
    std::function<void(std::vector<DeliveryResult>)> done;

    RemoteJob() = default;
    RemoteJob(RemoteJob&& other) noexcept;
    RemoteJob& operator=(RemoteJob&& other) noexcept;
    ~RemoteJob();
};

class Outbound {
public:
    // Throws std::runtime_error when the relay password file cannot be read or the resolver refuses its settings.
    explicit Outbound(const config::Config& config);
    ~Outbound();
    Outbound(const Outbound&) = delete;
    Outbound& operator=(const Outbound&) = delete;

    void start();
    void submit(RemoteJob job);   // any thread; after stop(), `done` is called at once with a temporary failure
    // Closes every connection and joins the thread. Every job comes back through `done` before stop() returns:
    // what was in flight, and what was still waiting (for its route, for a connection slot, for a host after a
    // lost connection), as temporary failures "shutting down" (their messages stay in the spool).
    void stop();

private:
    struct Destination {
        std::vector<RemoteJob> jobs;   // waiting, oldest first
        std::size_t connections = 0;
        std::size_t busy = 0;          // connections in a transaction
    };

    void enqueue(RemoteJob job);
    void spawn_connections(const std::string& key);
    asio::awaitable<void> run_connection(std::string key);
    std::optional<RemoteJob> next_job(Destination& d);
    void fail_waiting(Destination& d, const DeliveryResult& result);
    void shut_down();   // on the outbound thread
    bool use_tls_to(const std::string& address);

    asio::io_context io_{1};
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
    std::thread thread_;
    ClientSettings client_;
    std::uint16_t port_;
    std::string relay_host_;    // empty: by MX
    std::uint16_t relay_port_ = 25;
    std::size_t max_connections_, per_destination_;
    std::unique_ptr<dns::Resolver> resolver_;
    std::mt19937 random_{std::random_device{}()};
    std::mutex submit_mutex_;     // orders submit() against stop(): a job is posted before the shutdown, or failed
    bool accepting_ = true;       // guarded by submit_mutex_; false once stop() has begun

    // Everything below lives on the outbound thread.
    std::map<std::string, Destination> destinations_;
    std::size_t connections_ = 0;
    std::set<SmtpClient*> clients_;   // open connections, closed by stop()
    // Addresses whose TLS handshake failed, and when: the next attempts go without TLS for a while (RFC 3207
    // leaves it to the client; Postfix does the same), so a broken TLS stack does not hold mail forever.
    std::map<std::string, std::chrono::steady_clock::time_point> tls_broken_;
    bool stopping_ = false;
};

}  // namespace ferry::delivery
