// Asynchronous DNS over libunbound, on the server's event loop: libunbound's descriptor is watched by Asio and
// its callbacks run on the I/O thread. libunbound keeps its own cache (answers and negative answers, for
// their TTLs), shared by every lookup of the process.
#pragma once

#include <boost/asio.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <unordered_map>

#include "config/config.hpp"
#include "dns/answer.hpp"
#include "dns/lookup.hpp"

struct ub_ctx;
struct ub_result;

namespace ferry::dns {

namespace asio = boost::asio;

// Record types asked for (RFC 1035, RFC 3596).
inline constexpr int kTypeA = 1;
inline constexpr int kTypePtr = 12;
inline constexpr int kTypeMx = 15;
inline constexpr int kTypeTxt = 16;
inline constexpr int kTypeAaaa = 28;

class Resolver : public Lookup {
public:
    // `[dns] resolver` set: every query goes to that server (recursion desired), loopback included; unset: the
    // servers of /etc/resolv.conf. Throws std::runtime_error when libunbound refuses the settings.
    Resolver(asio::any_io_executor executor, const config::DnsSettings& settings);
    ~Resolver() override;
    Resolver(const Resolver&) = delete;
    Resolver& operator=(const Resolver&) = delete;

    // One lookup, bounded by `[dns] timeout` (then Status::temporary). Call from the executor's thread.
    asio::awaitable<Answer> query(std::string name, int type) override;

    // Ends every lookup in flight now, as temporary failures (shutting down), and answers every later one the
    // same way at once: a check that asks its next question after the stop (DMARC after SPF) must not hold the
    // stop up for a whole `[dns] timeout`. Call from the executor's thread.
    void cancel_all();

private:
    struct Pending;
    static void on_result(void* pending, int err, ub_result* result);
    void watch();
    void finish(Pending* p, Answer answer);

    ub_ctx* ctx_ = nullptr;
    // Lookups in flight, by the pointer libunbound holds. A timer handler keeps its own reference, since it may
    // already be queued when the answer arrives.
    std::unordered_map<Pending*, std::shared_ptr<Pending>> pending_;
    asio::posix::stream_descriptor fd_;
    std::chrono::milliseconds timeout_;
    bool watching_ = false;
    bool shut_down_ = false;   // cancel_all() was called: no new lookups
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);   // handlers that outlive us see it expired
};

}  // namespace ferry::dns
