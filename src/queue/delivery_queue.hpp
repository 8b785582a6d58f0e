// The queue manager: takes committed messages, routes each recipient (local mailboxes, remote domains), delivers
// local copies itself and hands remote ones to delivery/outbound, retries temporary failures with exponential
// backoff, bounces permanent failures and expired messages with a DSN, and removes the spool file once every
// recipient is final. A message a content filter quarantined (its addendum's "Hold") is parked, not delivered,
// until the operator releases it (`ferry queue release`, recorded in its delivery record). The decisions are pure and live beside it: the legs of an attempt (delivery_plan), what
// its results mean and when it is tried next (attempt_decision), the record kept next to the spool file
// (delivery_record), destinations held as dead (dead_destinations); delivery/maildir_batch writes local copies.
// This class does the scheduling, the threads and the I/O between them.
#pragma once

#include <chrono>
#include <condition_variable>
#include <ctime>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "config/config.hpp"
#include "delivery/outbound.hpp"
#include "delivery/router.hpp"
#include "mime/dsn_report.hpp"
#include "queue/attempt_decision.hpp"
#include "queue/dead_destinations.hpp"
#include "queue/delivery_record.hpp"
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
    std::size_t active_limit = 20000;   // messages in memory at once; more wait on disk (see scan_spool)
    // [outbound] relay_host: when set, every remote leg goes to that one host, so a failure marks it dead for
    // every domain (queue/dead_destinations), not only for the domain whose job failed.
    std::string relay_host;
};

// What `ferry queue list` shows of one message.
struct QueuedRecipient {
    std::string address;
    bool in_flight = false;
    int attempts = 0;
    std::string last_error;
    std::time_t next_attempt = 0;   // 0: in flight or due now
};

struct QueuedMessage {
    std::string id;
    std::time_t arrival = 0;
    std::string sender;
    std::uint64_t size = 0;
    std::vector<QueuedRecipient> recipients;   // those not final yet
    bool held = false;                          // quarantined: waits for `ferry queue release`
    std::string hold_reason;                    // why (the addendum's "Hold" line)
};

class DeliveryQueue {
public:
    // `outbound` may be null (remote recipients are then deferred).
    DeliveryQueue(spool::Spool& spool, delivery::Router& router, delivery::Outbound* outbound, QueueSettings settings);
    ~DeliveryQueue();

    void start();
    // Thread-safe; due now. `recovered`: found in the spool at start-up, so a crash may have come after some of
    // its copies landed and before that was recorded; those copies are looked for before writing new ones.
    void submit(const std::string& queue_id, bool recovered = false);
    void stop();   // workers finish the message in hand (and record remote results that came back), then exit

    // Operator commands (`ferry queue`), thread-safe.
    std::vector<QueuedMessage> list();
    bool more_on_disk();   // messages wait in the spool beyond the active limit (not in list())
    std::optional<QueuedMessage> find(const std::string& queue_id);
    std::size_t flush(const std::string& queue_id);   // "" = every message; returns how many are now due (held
                                                      // messages are not: a flush never releases one)
    enum class Release { released, not_found, not_held, failed };
    // Records the release in the message's delivery record, then it is due now. `failed`: the record could not be
    // written (logged); the message stays held.
    Release release(const std::string& queue_id);
    std::size_t release_all();   // every message parked as held; returns how many were released
    std::size_t held_count();    // messages parked as held
    bool remove(const std::string& queue_id);          // without a bounce; false when there is no such message
    // The envelope and the header section of a queued message (at most 64 KiB of it), for `ferry queue show`.
    std::string message_headers(const std::string& queue_id);

    struct Attempt;   // one delivery attempt of one message (defined in the .cpp)

private:
    using Clock = std::chrono::steady_clock;
    enum class Outcome { done, deferred, remote, held };
    // How an attempt ended, applied to the schedule by settle() under the lock.
    struct AttemptEnd {
        Outcome outcome = Outcome::deferred;
        int attempt = 0;                         // 0: not decided (unreadable file); settle() counts it
        std::chrono::milliseconds delay{0};      // until the next attempt
        std::time_t next_attempt = 0;            // the same, wall clock (as recorded in queue/<id>.done)
        std::map<std::string, std::string> errors;   // deferred recipient -> why
        std::string hold;                            // Outcome::held: the reason

        static AttemptEnd of(Outcome outcome) {
            AttemptEnd end;
            end.outcome = outcome;
            return end;
        }
    };

    struct MessageState {
        int attempts = 0;
        bool in_flight = false;     // a worker or the outbound side has it
        bool recovered = false;
        bool deleted = false;       // `ferry queue delete` while in flight: dropped when it comes back
        bool flush_requested = false;   // `ferry queue flush` while in flight: due again as soon as it comes back
        bool held = false;              // parked: its addendum says "Hold" and its record no "released"; not in due_
        bool release_requested = false;   // released while in flight: due again if that attempt parked it
        std::string hold_reason;
        Clock::time_point due{};
        std::time_t next_attempt = 0;
        std::map<std::string, std::string> last_error;   // recipient -> why its last attempt failed
    };

    void work();
    std::vector<AttemptEnd> deliver(const std::vector<std::string>& queue_ids, const std::vector<bool>& recovered);
    AttemptEnd finish(Attempt& attempt);
    struct LegReports {
        std::vector<mime::DsnRecipient> failed, succeeded;   // for the failure and the success DSN
        std::vector<std::size_t> failed_legs;                // the legs in `failed`
    };
    static LegReports log_legs(const Attempt& attempt, const AttemptDecision& decision, std::time_t now);
    void send_remote(std::unique_ptr<Attempt> attempt);
    void settle(const std::string& id, AttemptEnd end);
    void erase_due(const std::string& id);
    bool record_release(const std::string& id);
    void unpark(const std::string& id, MessageState& state);
    void schedule_from_record(const std::string& id, MessageState& state, const DeliveryRecord& record);
    void hold_dead_destinations(Attempt& attempt);
    void note_destination(const std::string& domain, const std::vector<delivery::DeliveryResult>& results);
    std::string destination_of(const std::string& domain) const;
    void take_in_from_disk(std::unique_lock<std::mutex>& lock);
    std::optional<QueuedMessage> describe(const std::string& id, const MessageState& state);

    spool::Spool& spool_;
    delivery::Router& router_;
    delivery::Outbound* outbound_;
    QueueSettings settings_;

    std::mutex mutex_;
    std::condition_variable wake_;
    std::map<std::string, MessageState> messages_;           // every message the queue knows about
    std::multimap<Clock::time_point, std::string> due_;       // those waiting for a worker, by due time
    std::map<std::string, std::unique_ptr<Attempt>> remote_;  // attempts whose remote jobs are out
    std::deque<std::string> returned_;                       // of those, the ones whose every job came back
    std::mt19937 random_{std::random_device{}()};             // retry spread; guarded by mutex_
    DeadDestinations dead_;                                   // remote domains that just failed; guarded by mutex_
    bool stopping_ = false;
    // Messages were left on disk because the active set was full: a worker scans the spool for them once the
    // active set has room (at most half full), oldest first.
    bool on_disk_ = false;
    bool scanning_ = false;
    Clock::time_point next_scan_{};
    std::vector<std::thread> workers_;
};

}  // namespace ferry::queue
