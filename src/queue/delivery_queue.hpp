// The queue manager: takes committed messages, hands each recipient to its delivery agent, retries temporary
// failures with exponential backoff, and removes the spool file once every recipient is final.
#pragma once

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "config/config.hpp"
#include "delivery/router.hpp"
#include "spool/spool.hpp"

namespace ferry::queue {

struct QueueSettings {
    std::filesystem::path mail_root;
    config::SyncMode sync = config::SyncMode::filesystem;
    std::string hostname;
    std::chrono::seconds min_retry{300};
    std::chrono::seconds max_retry{3600};
    std::chrono::seconds lifetime{5 * 24 * 3600};
    std::size_t workers = 2;
};

// Backoff for the n-th retry (n >= 1): min_retry doubled each time, plus up to a quarter more by `spread` (0 to 1,
// random in use), never more than max_retry. The spread keeps messages deferred together (a destination that
// was down) from all coming back in the same second.
std::chrono::milliseconds retry_delay(int attempt, std::chrono::seconds min_retry, std::chrono::seconds max_retry,
                                      double spread);

class DeliveryQueue {
public:
    DeliveryQueue(spool::Spool& spool, delivery::Router& router, QueueSettings settings);
    ~DeliveryQueue();

    void start();
    // Thread-safe; due now. `recovered`: found in the spool at start-up, so a crash may have come after some of
    // its copies landed and before that was recorded; those copies are looked for before writing new ones.
    void submit(const std::string& queue_id, bool recovered = false);
    void stop();                                 // workers finish the message in hand, then exit

private:
    using Clock = std::chrono::steady_clock;
    enum class Outcome { done, deferred };

    void work();
    // Delivers a batch of messages with shared syncs; returns one outcome per id, in order.
    std::vector<Outcome> deliver(const std::vector<std::string>& queue_ids, const std::vector<bool>& recovered);

    spool::Spool& spool_;
    delivery::Router& router_;
    QueueSettings settings_;

    std::mutex mutex_;
    std::condition_variable wake_;
    std::map<std::string, int> attempts_;               // every message the queue knows about: attempts so far
    std::multimap<Clock::time_point, std::string> due_;   // those waiting for a worker, by due time
    std::set<std::string> recovered_;
    std::mt19937 random_{std::random_device{}()};         // retry spread; guarded by mutex_                    // found in the spool at start-up, not yet done
    bool stopping_ = false;
    std::vector<std::thread> workers_;
};

}  // namespace ferry::queue
