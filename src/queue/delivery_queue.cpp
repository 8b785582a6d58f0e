#include "queue/delivery_queue.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <memory>

#include "delivery/maildir.hpp"
#include "delivery/maildir_batch.hpp"
#include "queue/attempt_decision.hpp"
#include "queue/bounce.hpp"
#include "queue/delivery_plan.hpp"
#include "queue/delivery_record.hpp"
#include "smtp/dsn.hpp"
#include "spool/envelope.hpp"
#include "spool/queue_id.hpp"

namespace ferry::queue {

namespace fs = std::filesystem;
using delivery::DeliveryResult;

namespace {

// Messages one worker delivers together, sharing two syncs. Large enough to amortise a journal commit,
// small enough that one slow mailbox does not hold many others back.
constexpr std::size_t kDeliveryBatch = 64;

// Shortest time between two reads of queue/ for messages left on disk (a read costs a stat per spool file).
constexpr auto kScanInterval = std::chrono::seconds(5);

}  // namespace

struct DeliveryQueue::Attempt {
    std::string id;
    int fd = -1;
    spool::Envelope envelope;
    off_t content_offset = 0;
    std::size_t content_length = 0;
    spool::Addendum addendum;   // header fields to put first, the folder for local copies
    std::time_t age = 0;
    bool usable = false;      // envelope read; otherwise kept untouched (keep) or gone
    bool keep = false;
    bool held = false;        // quarantined and not released: parked, nothing delivered
    DeliveryRecord record;
    DeliveryPlan plan;
    std::size_t jobs_out = 0;   // remote jobs not back yet
    ~Attempt() {
        if (fd >= 0) ::close(fd);
    }
};

DeliveryQueue::DeliveryQueue(spool::Spool& spool, delivery::Router& router, delivery::Outbound* outbound,
                             QueueSettings settings)
    : spool_(spool), router_(router), outbound_(outbound), settings_(std::move(settings)) {}

DeliveryQueue::~DeliveryQueue() { stop(); }

void DeliveryQueue::start() {
    for (std::size_t i = 0; i < std::max<std::size_t>(1, settings_.workers); ++i)
        workers_.emplace_back([this] { work(); });
}

void DeliveryQueue::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    for (auto& t : workers_)
        if (t.joinable()) t.join();
    workers_.clear();
}

void DeliveryQueue::submit(const std::string& queue_id, bool recovered) {
    // A message found at start-up may have been tried before: it waits for the next attempt its record holds, so a
    // restart does not undo the backoff (20,000 messages for a dead relay all came back at once before).
    const DeliveryRecord record =
        recovered ? read_delivery_record(delivery_record_path(spool_.queue_file(queue_id))) : DeliveryRecord{};
    {
        std::lock_guard lock(mutex_);
        if (const auto known = messages_.find(queue_id); known != messages_.end()) {
            if (recovered) known->second.recovered = true;
            return;   // already queued
        }
        if (messages_.size() >= settings_.active_limit) {
            on_disk_ = true;   // it is safe in the spool; the scan takes it in when there is room
            return;
        }
        auto it = messages_.try_emplace(queue_id).first;
        it->second.recovered = recovered;
        schedule_from_record(queue_id, it->second, record);
    }
    wake_.notify_one();
}

// Schedules a message new to the scheduler: due now, or at the next attempt its delivery record holds (with the
// attempts made and the last errors). A stored time beyond max_retry from now (the clock was set back) is
// brought to max_retry. Called with mutex_ held.
void DeliveryQueue::schedule_from_record(const std::string& id, MessageState& st, const DeliveryRecord& record) {
    st.attempts = std::max(st.attempts, record.attempts);
    if (st.last_error.empty()) st.last_error = record.last_error;
    st.due = Clock::now();
    st.next_attempt = 0;
    const std::time_t now = std::time(nullptr);
    if (record.next_attempt && *record.next_attempt > now) {
        const auto wait = std::min<std::chrono::seconds>(std::chrono::seconds(*record.next_attempt - now),
                                                         settings_.max_retry);
        st.due += wait;
        st.next_attempt = now + wait.count();
    }
    due_.emplace(st.due, id);
}

void DeliveryQueue::work() {
    std::unique_lock lock(mutex_);
    std::vector<std::string> batch;
    std::vector<bool> recovered;
    for (;;) {
        // Attempts whose remote jobs all came back are finished first, also when stopping: their results
        // (mail that was sent) must be recorded, or a restart would send it again.
        if (!returned_.empty()) {
            const std::string id = returned_.front();
            returned_.pop_front();
            auto node = remote_.extract(id);
            lock.unlock();
            AttemptEnd end = AttemptEnd::of(Outcome::deferred);
            try {
                end = finish(*node.mapped());
            } catch (const std::exception& e) {
                spdlog::error("delivery id={} failed: {}", id, e.what());
            }
            node.mapped().reset();
            lock.lock();
            settle(id, std::move(end));
            continue;
        }
        if (stopping_) return;
        const bool scan_wanted = on_disk_ && !scanning_ && messages_.size() <= settings_.active_limit / 2;
        if (scan_wanted && Clock::now() >= next_scan_) {
            take_in_from_disk(lock);
            continue;
        }
        // A copy of the time, not a reference into due_: flush() and remove() erase entries while this waits.
        auto next = due_.empty() ? Clock::time_point::max() : due_.begin()->first;
        if (scan_wanted) next = std::min(next, next_scan_);
        if (next > Clock::now()) {
            if (next == Clock::time_point::max()) wake_.wait(lock);
            else wake_.wait_until(lock, next);
            continue;
        }
        if (due_.empty()) continue;
        // Take every due message up to the batch size: their copies share two syncs.
        batch.clear();
        recovered.clear();
        const auto now = Clock::now();
        while (!due_.empty() && due_.begin()->first <= now && batch.size() < kDeliveryBatch) {
            const std::string id = due_.begin()->second;
            due_.erase(due_.begin());
            MessageState& st = messages_[id];
            st.in_flight = true;
            batch.push_back(id);
            recovered.push_back(st.recovered);
        }
        lock.unlock();
        std::vector<AttemptEnd> outcomes(batch.size(), AttemptEnd::of(Outcome::deferred));
        try {
            outcomes = deliver(batch, recovered);
        } catch (const std::exception& e) {
            spdlog::error("delivery batch of {} failed: {}", batch.size(), e.what());
        }
        lock.lock();
        for (std::size_t i = 0; i < batch.size(); ++i)
            if (outcomes[i].outcome != Outcome::remote) settle(batch[i], std::move(outcomes[i]));
    }
}

// Applies the end of an attempt to the schedule; called with mutex_ held. An attempt that was decided brings
// its number and next time (also in its delivery record); one that was not (an unreadable spool file) is
// counted and given the backoff here.
void DeliveryQueue::settle(const std::string& id, AttemptEnd end) {
    const auto it = messages_.find(id);
    if (it == messages_.end()) return;
    MessageState& st = it->second;
    if (end.outcome == Outcome::done) {
        messages_.erase(it);
        return;
    }
    if (st.deleted) {   // `ferry queue delete` came while finish() was recording this attempt
        messages_.erase(it);
        spool_.remove(id);
        remove_delivery_record(delivery_record_path(spool_.queue_file(id)));
        spdlog::info("removed id={} (deleted by the operator)", id);
        return;
    }
    st.in_flight = false;
    if (end.outcome == Outcome::held) {
        // Parked: not in due_, so never retried, bounced or expired while held (attempt_decision is not asked).
        st.flush_requested = false;   // a flush does not release
        if (st.release_requested) {   // released while this worker was reading the record from before the release
            st.release_requested = false;
            st.due = Clock::now();
            st.next_attempt = 0;
            due_.emplace(st.due, id);
            return;
        }
        if (!st.held) spdlog::warn("held id={} reason=\"{}\" (`ferry queue release {}` delivers it)", id, end.hold, id);
        st.held = true;
        st.hold_reason = std::move(end.hold);
        st.next_attempt = 0;
        return;
    }
    st.release_requested = false;
    if (!end.errors.empty()) st.last_error = std::move(end.errors);
    if (end.attempt == 0) {
        end.attempt = st.attempts + 1;
        end.delay = retry_delay(end.attempt, settings_.min_retry, settings_.max_retry,
                                std::uniform_real_distribution<double>(0, 1)(random_));
        end.next_attempt = std::time(nullptr) + std::chrono::ceil<std::chrono::seconds>(end.delay).count();
    }
    st.attempts = end.attempt;
    st.due = Clock::now() + end.delay;
    st.next_attempt = end.next_attempt;
    if (st.flush_requested) {   // the operator asked for a try while this one was under way: that try is now
        st.flush_requested = false;
        st.due = Clock::now();
        st.next_attempt = 0;
    }
    due_.emplace(st.due, id);
}

std::vector<DeliveryQueue::AttemptEnd> DeliveryQueue::deliver(const std::vector<std::string>& queue_ids,
                                                              const std::vector<bool>& recovered) {
    delivery::MaildirBatch maildir(settings_.sync == config::SyncMode::files ? delivery::MaildirBatch::Sync::files
                                                                            : delivery::MaildirBatch::Sync::filesystem);
    std::vector<std::unique_ptr<Attempt>> attempts;
    std::vector<std::pair<std::size_t, std::size_t>> copies;   // per copy of the batch: (attempt, leg)

    // 1. Read each envelope, route each recipient, write each local copy into tmp/.
    for (std::size_t qi = 0; qi < queue_ids.size(); ++qi) {
        const std::string& id = queue_ids[qi];
        auto a = std::make_unique<Attempt>();
        a->id = id;
        const fs::path file = spool_.queue_file(id);
        a->fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
        const std::size_t ai = attempts.size();
        if (a->fd < 0) {
            spdlog::error("delivery id={} cannot open spool file: {}", id, std::strerror(errno));
            a->keep = errno != ENOENT;   // gone: somebody (ferry queue delete) removed it
            attempts.push_back(std::move(a));
            continue;
        }
        auto stored = spool::read_stored_message(a->fd);
        if (!stored) {
            // Unreadable spool files are kept for the operator, never delivered half-understood.
            spdlog::error("delivery id={} spool file has no valid envelope or trailer; left in {}", id, file.string());
            a->keep = true;
            attempts.push_back(std::move(a));
            continue;
        }
        a->usable = true;
        a->envelope = std::move(stored->envelope);
        a->content_offset = stored->content_offset;
        a->content_length = stored->content_length;
        a->addendum = std::move(stored->addendum);
        // After a restart the record holds the attempts made before: the backoff goes on from where it was.
        a->record = read_delivery_record(delivery_record_path(file));
        a->age = std::time(nullptr) - a->envelope.arrival;
        // Quarantined by a filter (SMFIR_QUARANTINE): nothing goes out until the operator's release is recorded.
        if (!a->addendum.hold.empty() && !a->record.released) {
            a->held = true;
            attempts.push_back(std::move(a));
            continue;
        }

        a->plan = plan_delivery(a->envelope.recipients, a->record,
                                [this](const std::string& rcpt) { return router_.resolve(rcpt); });
        for (const std::size_t li : a->plan.local_legs) {
            const Leg& leg = a->plan.legs[li];
            const std::string headers =
                fmt::format("Return-Path: <{}>\r\nDelivered-To: {}\r\n", a->envelope.sender, leg.destination) +
                a->addendum.headers;
            const fs::path box = delivery::maildir_folder(
                delivery::maildir_path(settings_.mail_root, leg.domain, leg.local), a->addendum.folder);
            const std::string name = delivery::maildir_name(id, a->envelope.arrival, settings_.hostname,
                                                            headers.size() + a->content_length);
            maildir.add({box, name, headers, a->fd, a->content_offset, a->content_length, recovered[qi]});
            copies.emplace_back(ai, li);
        }
        attempts.push_back(std::move(a));
    }

    // 2. to 4.: content durable, copies into new/, the renames durable (delivery/maildir_batch).
    const auto results = maildir.commit();
    // The copies are in new/ and may be read already; a failed barrier only means a retry after a crash could
    // duplicate them, so say so rather than pretend they are not there.
    if (const auto ec = maildir.publish_sync_error())
        spdlog::error("delivery batch: sync after rename failed: {}", ec.message());
    for (std::size_t ci = 0; ci < copies.size(); ++ci) {
        const auto& r = results[ci];
        Leg& leg = attempts[copies[ci].first]->plan.legs[copies[ci].second];
        if (r.ok)
            leg.result = DeliveryResult{DeliveryResult::Kind::sent, "2.0.0", "delivered to maildir", false, {},
                                        r.landed_before ? "maildir (copy found in the mailbox, written before a restart)"
                                                        : "maildir"};
        else
            leg.result = r.permanent ? delivery::permanent_result("5.2.0", r.reason)
                                     : delivery::temporary_result("4.2.0", r.reason);
    }

    // 5. Messages with remote legs go out; the others are finished here.
    std::vector<AttemptEnd> outcomes;
    for (auto& a : attempts) {
        if (a->held) {
            AttemptEnd end = AttemptEnd::of(Outcome::held);
            end.hold = a->addendum.hold;
            outcomes.push_back(std::move(end));
            continue;
        }
        if (a->usable && outbound_) hold_dead_destinations(*a);
        const bool remote = a->usable && !a->plan.remote.empty();
        if (remote && outbound_) {
            outcomes.push_back(AttemptEnd::of(Outcome::remote));
            send_remote(std::move(a));
            continue;
        }
        if (!outbound_)
            for (auto& leg : a->plan.legs)
                if (leg.remote()) leg.result = delivery::temporary_result("4.3.0", "remote delivery is not configured");
        outcomes.push_back(finish(*a));
    }
    return outcomes;
}

// Remote legs to a destination held as dead (queue/dead_destinations) are deferred now, without a job: their
// group leaves the plan, so only the jobs sent out report back on the destination.
void DeliveryQueue::hold_dead_destinations(Attempt& a) {
    std::lock_guard lock(mutex_);
    const auto now = Clock::now();
    std::erase_if(a.plan.remote, [&](const RemoteGroup& group) {
        const std::string destination = destination_of(group.domain);
        const auto dead = dead_.find(destination, now);
        if (!dead) return false;
        const auto left = std::chrono::ceil<std::chrono::seconds>(dead->until - now).count();
        for (const std::size_t li : group.legs)
            a.plan.legs[li].result = delivery::temporary_result(
                "4.4.1", fmt::format("not tried: {} failed and is held for {}s more ({})", destination, left,
                                     dead->reason));
        return true;
    });
}

// What a job that went out says about its destination (queue/dead_destinations): dead, or alive again. Called on
// the outbound thread with mutex_ held.
void DeliveryQueue::note_destination(const std::string& domain, const std::vector<DeliveryResult>& results) {
    const std::string destination = destination_of(domain);
    if (dead_.record(destination, results, Clock::now(), settings_.min_retry))
        spdlog::warn("outbound destination={} held as dead for {}s: {}; its other messages wait without a connection",
                     destination, settings_.min_retry.count(), one_line(results.front().diagnostic));
}

// What a remote domain's jobs connect to, as the dead-destination marks are kept: the domain (its MX hosts), or
// with a relay host that one host for every domain (named as delivery/outbound names it in its log).
std::string DeliveryQueue::destination_of(const std::string& domain) const {
    return settings_.relay_host.empty() ? domain : "[" + settings_.relay_host + "]";
}

// Hands an attempt's remote legs to delivery/outbound, one job per domain (all its recipients in one
// transaction); the attempt is finished by a worker when every job has come back.
void DeliveryQueue::send_remote(std::unique_ptr<Attempt> a) {
    std::vector<delivery::RemoteJob> jobs;
    const auto stored = std::make_shared<const spool::Envelope>(a->envelope);   // one copy for all the jobs
    for (const RemoteGroup& group : a->plan.remote) {
        const std::vector<std::size_t>& legs = group.legs;
        delivery::RemoteJob job;
        job.destination = group.domain;
        const spool::Envelope& e = a->envelope;
        job.message = delivery::OutboundMessage{stored, ::dup(a->fd), a->content_offset, a->content_length,
                                                a->addendum.headers};
        for (const std::size_t li : legs) {
            const Leg& leg = a->plan.legs[li];
            const std::string& rcpt = e.recipients[leg.recipient];
            const spool::RecipientDsn dsn = leg.recipient < e.recipient_dsn.size() ? e.recipient_dsn[leg.recipient]
                                                                                    : spool::RecipientDsn{};
            // RFC 3461 4.2: an address we expanded (an alias) travels with the recipient it came from.
            std::string orcpt = dsn.orcpt;
            if (orcpt.empty() && leg.destination != rcpt) orcpt = "rfc822;" + smtp::xtext_encode(rcpt);
            job.recipients.push_back(delivery::OutboundRecipient{leg.destination, smtp::format_notify(dsn.notify), orcpt});
        }
        const std::string id = a->id;
        job.done = [this, id, legs, domain = group.domain](std::vector<DeliveryResult> results) {
            std::lock_guard lock(mutex_);
            // At once, not when the attempt is finished (after its record is synced): messages coming due meanwhile
            // already see the destination as dead.
            note_destination(domain, results);
            const auto it = remote_.find(id);
            if (it == remote_.end()) return;
            for (std::size_t i = 0; i < legs.size() && i < results.size(); ++i)
                it->second->plan.legs[legs[i]].result = std::move(results[i]);
            if (--it->second->jobs_out == 0) {
                returned_.push_back(id);
                wake_.notify_one();
            }
        };
        jobs.push_back(std::move(job));
    }
    a->jobs_out = jobs.size();
    {
        std::lock_guard lock(mutex_);
        remote_.emplace(a->id, std::move(a));
    }
    for (auto& job : jobs) outbound_->submit(std::move(job));
}

// Logs each leg of a decided attempt (one line each: delivered, bounced or deferred) and collects what the sender
// is to be told in a DSN (RFC 3461 NOTIFY).
DeliveryQueue::LegReports DeliveryQueue::log_legs(const Attempt& a, const AttemptDecision& decision, std::time_t now) {
    LegReports out;
    const spool::Envelope& e = a.envelope;
    auto dsn_of = [&](std::size_t ri) {
        return ri < e.recipient_dsn.size() ? e.recipient_dsn[ri] : spool::RecipientDsn{};
    };
    auto report_line = [&](const Leg& leg, std::string action, const DeliveryResult& r) {
        const std::string& rcpt = e.recipients[leg.recipient];
        std::string orcpt = dsn_of(leg.recipient).orcpt;
        if (orcpt.empty() && leg.destination != rcpt) orcpt = "rfc822;" + smtp::xtext_encode(rcpt);
        return mime::DsnRecipient{leg.destination, orcpt, std::move(action), r.status, r.remote_mta,
                                  r.diagnostic, now};
    };
    // The recipient as the client gave it, when an alias turned it into another address.
    auto orig_to = [&](const Leg& leg) {
        const std::string& rcpt = e.recipients[leg.recipient];
        return leg.destination == rcpt ? std::string() : " orig_to=<" + rcpt + ">";
    };
    for (std::size_t li = 0; li < a.plan.legs.size(); ++li) {
        const Leg& leg = a.plan.legs[li];
        const DeliveryResult& r = decision.legs[li].result;
        const unsigned notify = dsn_of(leg.recipient).notify;
        switch (decision.legs[li].kind) {
        case LegVerdict::Kind::delivered:
            spdlog::info("delivered id={} to=<{}> relay={} delay={}s status=sent ({}){}", a.id, leg.destination, r.via,
                         a.age, one_line(r.diagnostic), orig_to(leg));
            // RFC 3461 6.2.2: success is reported when asked for, by us for a mailbox, or as "relayed" when the
            // next hop cannot report it itself.
            if ((notify & smtp::kNotifySuccess) && (!leg.remote() || !r.next_hop_dsn))
                out.succeeded.push_back(report_line(leg, leg.remote() ? "relayed" : "delivered", r));
            break;
        case LegVerdict::Kind::bounced:
            spdlog::warn("delivery id={} to=<{}> status=bounced dsn={} reason=\"{}\"{}", a.id, leg.destination,
                         r.status, one_line(r.diagnostic), orig_to(leg));
            // RFC 3461 4.1: without NOTIFY, failures are reported; NOTIFY=NEVER or a list without FAILURE: not.
            if (notify == 0 || (notify & smtp::kNotifyFailure)) {
                out.failed.push_back(report_line(leg, "failed", r));
                out.failed_legs.push_back(li);
            }
            break;
        case LegVerdict::Kind::deferred:
            spdlog::warn("delivery id={} to=<{}> status=deferred dsn={} reason=\"{}\"{}", a.id, leg.destination,
                         r.status, one_line(r.diagnostic), orig_to(leg));
            break;
        }
    }

    return out;
}

// Decides every leg of an attempt (queue/attempt_decision), logs it, writes the DSNs, records the decision
// (queue/delivery_record), and removes the message when nothing is left to try. settle() then applies the same
// decision to the schedule.
DeliveryQueue::AttemptEnd DeliveryQueue::finish(Attempt& a) {
    if (!a.usable) return AttemptEnd::of(a.keep ? Outcome::deferred : Outcome::done);
    const fs::path done_file = delivery_record_path(spool_.queue_file(a.id));
    int attempts_before = 0;
    double spread = 0;
    {
        std::lock_guard lock(mutex_);
        const auto it = messages_.find(a.id);
        if (it != messages_.end() && it->second.deleted) {
            spool_.remove(a.id);
            remove_delivery_record(done_file);
            spdlog::info("removed id={} (deleted by the operator)", a.id);
            return AttemptEnd::of(Outcome::done);
        }
        if (it != messages_.end()) attempts_before = it->second.attempts;
        spread = std::uniform_real_distribution<double>(0, 1)(random_);
    }
    const spool::Envelope& e = a.envelope;
    const std::time_t now = std::time(nullptr);
    AttemptDecision decision =
        decide_attempt(e.recipients, a.record, a.plan.legs, e.arrival, now, attempts_before,
                       RetryPolicy{settings_.min_retry, settings_.max_retry, settings_.lifetime}, spread);

    const LegReports reports = log_legs(a, decision, now);
    const auto& [failed, succeeded, failed_legs] = reports;

    const ReportedMessage reported{e, a.fd, a.content_offset, a.content_length, a.addendum.headers};
    if (!failed.empty()) {
        if (e.sender.empty()) {
            spdlog::info("bounce id={} not sent: the sender is <> (a bounce is never answered)", a.id);
        } else if (const auto dsn = write_dsn(spool_, settings_.hostname, reported, failed)) {
            spdlog::info("bounce id={} dsn={} to=<{}> recipients={}", a.id, *dsn, e.sender, failed.size());
            submit(*dsn);
        } else {
            // The bounce could not be stored: the failed legs stay open and are tried (and reported) again.
            keep_bounces_open(decision, e.recipients, a.plan.legs, failed_legs);
        }
    }
    if (!succeeded.empty() && !e.sender.empty()) {
        if (const auto dsn = write_dsn(spool_, settings_.hostname, reported, succeeded)) {
            spdlog::info("notify id={} dsn={} to=<{}> recipients={} (success)", a.id, *dsn, e.sender, succeeded.size());
            submit(*dsn);
        }
    }

    if (decision.done) {
        spool_.remove(a.id);
        remove_delivery_record(done_file);
        spdlog::info("removed id={}", a.id);
        return AttemptEnd::of(Outcome::done);
    }
    const DeliveryRecordUpdate update{decision.final, decision.attempt, decision.deferred, decision.next_attempt,
                                      std::nullopt};
    if (const auto ec = append_delivery_record(done_file, update))
        spdlog::error("delivery id={} cannot record the attempt in {}: {}", a.id, done_file.string(), ec.message());
    return {Outcome::deferred, decision.attempt, decision.delay, decision.next_attempt, std::move(decision.deferred), {}};
}

// Reads queue/ for committed messages the scheduler does not hold and takes in as many as there is room for,
// oldest first (queue ids sort by arrival). Called with the lock held; drops it for the directory read.
void DeliveryQueue::take_in_from_disk(std::unique_lock<std::mutex>& lock) {
    scanning_ = true;
    on_disk_ = false;   // a message left out from now on sets it again
    lock.unlock();
    std::vector<std::string> ids;
    std::error_code ec;
    const auto now = fs::file_time_type::clock::now();
    for (const auto& entry : fs::directory_iterator(spool_.queue_dir(), ec)) {
        const std::string name = entry.path().filename().string();
        if (!spool::is_queue_id(name)) continue;   // .done records and the like
        // A file still being received or committed has no valid trailer yet, or has it only for an instant
        // before its 250: wait until it is a few seconds old. It is in the spool either way; nothing is lost.
        std::error_code e;
        if (now - fs::last_write_time(entry.path(), e) < std::chrono::seconds(5) || e) {
            ids.push_back("");   // looked at again by a later scan
            continue;
        }
        const int fd = ::open(entry.path().c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        const bool committed = spool::committed_length(fd).has_value();
        ::close(fd);
        if (committed) ids.push_back(name);
    }
    std::sort(ids.begin(), ids.end());
    // The delivery records of those it will take, read without the lock like the files above: a message may have
    // been tried before a restart, and its backoff holds.
    std::vector<std::string> candidates;
    lock.lock();
    const std::size_t room = settings_.active_limit > messages_.size() ? settings_.active_limit - messages_.size() : 0;
    for (const auto& id : ids)
        if (candidates.size() < room && !id.empty() && !messages_.count(id)) candidates.push_back(id);
    lock.unlock();
    std::map<std::string, DeliveryRecord> records;
    for (const auto& id : candidates) records.emplace(id, read_delivery_record(delivery_record_path(spool_.queue_file(id))));
    lock.lock();
    std::size_t taken = 0;
    bool left = false;
    for (const auto& id : ids) {
        if (id.empty()) {
            left = true;
            continue;
        }
        if (messages_.count(id)) continue;
        if (messages_.size() >= settings_.active_limit) {
            left = true;
            continue;
        }
        // Its record was read before the lock was taken again; one that was not (room opened meanwhile) waits for
        // the next scan rather than be read from disk under the lock the SMTP side's submit() takes.
        const auto record = records.find(id);
        if (record == records.end()) {
            left = true;
            continue;
        }
        MessageState& st = messages_[id];
        // It may have been tried before a restart: its copies are looked for before new ones are written.
        st.recovered = true;
        schedule_from_record(id, st, record->second);
        ++taken;
    }
    if (left) on_disk_ = true;
    scanning_ = false;
    next_scan_ = Clock::now() + kScanInterval;
    if (taken) spdlog::info("queue: took in {} message(s) waiting in the spool{}", taken,
                            on_disk_ ? "; more wait for room" : "");
    wake_.notify_all();
}

// ---------------------------------------------------------------------------------------------------------
// Operator commands

void DeliveryQueue::erase_due(const std::string& id) {
    for (auto it = due_.begin(); it != due_.end(); ++it)
        if (it->second == id) {
            due_.erase(it);
            return;
        }
}

std::optional<QueuedMessage> DeliveryQueue::describe(const std::string& id, const MessageState& state) {
    const fs::path file = spool_.queue_file(id);
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    const auto stored = spool::read_stored_message(fd);
    ::close(fd);
    if (!stored) return std::nullopt;
    QueuedMessage m;
    m.id = id;
    m.arrival = stored->envelope.arrival;
    m.sender = stored->envelope.sender;
    m.size = stored->addendum.headers.size() + stored->content_length;
    const DeliveryRecord record = read_delivery_record(delivery_record_path(file));
    // Held as the file says, also before a worker has parked it (just arrived, or just recovered).
    m.held = state.held || (!stored->addendum.hold.empty() && !record.released && !state.release_requested);
    if (m.held) m.hold_reason = state.held ? state.hold_reason : stored->addendum.hold;
    for (const auto& rcpt : stored->envelope.recipients) {
        if (record.is_final(rcpt)) continue;
        QueuedRecipient r;
        r.address = rcpt;
        r.in_flight = state.in_flight;
        r.attempts = state.attempts;
        const auto err = state.last_error.find(rcpt);
        if (err != state.last_error.end()) r.last_error = err->second;
        else if (const auto old = record.last_error.find(rcpt); old != record.last_error.end()) r.last_error = old->second;
        r.next_attempt = state.in_flight ? 0 : state.next_attempt;
        m.recipients.push_back(std::move(r));
    }
    return m;
}

std::vector<QueuedMessage> DeliveryQueue::list() {
    std::vector<std::pair<std::string, MessageState>> states;
    {
        std::lock_guard lock(mutex_);
        for (const auto& [id, st] : messages_)
            if (!st.deleted) states.emplace_back(id, st);
    }
    std::vector<QueuedMessage> out;
    for (const auto& [id, st] : states)
        if (auto m = describe(id, st)) out.push_back(std::move(*m));
    return out;
}

bool DeliveryQueue::more_on_disk() {
    std::lock_guard lock(mutex_);
    return on_disk_;
}

std::optional<QueuedMessage> DeliveryQueue::find(const std::string& id) {
    MessageState st;
    {
        std::lock_guard lock(mutex_);
        const auto it = messages_.find(id);
        if (it == messages_.end() || it->second.deleted) return std::nullopt;
        st = it->second;
    }
    return describe(id, st);
}

std::size_t DeliveryQueue::flush(const std::string& id) {
    std::size_t count = 0;
    {
        std::lock_guard lock(mutex_);
        // The operator says try now: destinations held as dead are tried again too.
        if (dead_.size()) spdlog::info("queue flush: {} destination(s) held as dead are tried again", dead_.size());
        dead_.clear();
        const auto now = Clock::now();
        for (auto& [mid, st] : messages_) {
            if ((!id.empty() && mid != id) || st.deleted || st.held) continue;
            ++count;
            if (st.in_flight) {   // being tried right now: once this attempt settles, the next one is due at once
                st.flush_requested = true;
                continue;
            }
            erase_due(mid);
            st.due = now;
            st.next_attempt = 0;
            due_.emplace(now, mid);
        }
    }
    wake_.notify_all();
    return count;
}

// Appends the release to the message's delivery record (fdatasync()ed) before anything is scheduled, so a restart
// does not hold it again. Called with mutex_ held: an operator's command, rare; holding the lock keeps a concurrent
// `ferry queue delete` from removing the record first and this append from leaving an orphan .done file.
bool DeliveryQueue::record_release(const std::string& id) {
    DeliveryRecordUpdate update;
    update.released = std::time(nullptr);
    const fs::path file = delivery_record_path(spool_.queue_file(id));
    if (const auto ec = append_delivery_record(file, update)) {
        spdlog::error("release id={}: cannot record it in {}: {}; the message stays held", id, file.string(),
                      ec.message());
        return false;
    }
    spdlog::info("released id={} by the operator", id);
    return true;
}

// A parked message whose release is recorded: due now. Called with mutex_ held.
void DeliveryQueue::unpark(const std::string& id, MessageState& st) {
    st.held = false;
    st.hold_reason.clear();
    st.due = Clock::now();
    st.next_attempt = 0;
    due_.emplace(st.due, id);
}

DeliveryQueue::Release DeliveryQueue::release(const std::string& id) {
    // First pass: parked already (the usual case). Otherwise the file is read without the lock (a message just
    // taken in, or in a worker's hands right now) and the second pass records the release if it is held.
    bool held_in_file = false;
    for (int pass = 0; pass < 2; ++pass) {
        {
            std::lock_guard lock(mutex_);
            const auto it = messages_.find(id);
            if (it == messages_.end() || it->second.deleted) return Release::not_found;
            MessageState& st = it->second;
            if (st.held) {
                if (!record_release(id)) return Release::failed;
                unpark(id, st);
                wake_.notify_one();
                return Release::released;
            }
            if (pass == 1) {
                if (!held_in_file || st.release_requested) return Release::not_held;
                if (!record_release(id)) return Release::failed;
                // A worker that read the record before this line parks it; settle() then makes it due at once.
                st.release_requested = true;
                return Release::released;
            }
        }
        const int fd = ::open(spool_.queue_file(id).c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return Release::not_found;
        const auto stored = spool::read_stored_message(fd);
        ::close(fd);
        held_in_file = stored && !stored->addendum.hold.empty() &&
                       !read_delivery_record(delivery_record_path(spool_.queue_file(id))).released;
    }
    return Release::not_held;
}

std::size_t DeliveryQueue::release_all() {
    std::size_t count = 0;
    {
        std::lock_guard lock(mutex_);
        for (auto& [id, st] : messages_) {
            if (!st.held || st.deleted || !record_release(id)) continue;
            unpark(id, st);
            ++count;
        }
    }
    wake_.notify_all();
    return count;
}

std::size_t DeliveryQueue::held_count() {
    std::lock_guard lock(mutex_);
    return static_cast<std::size_t>(
        std::count_if(messages_.begin(), messages_.end(), [](const auto& m) { return m.second.held && !m.second.deleted; }));
}

bool DeliveryQueue::remove(const std::string& id) {
    {
        std::lock_guard lock(mutex_);
        const auto it = messages_.find(id);
        if (it == messages_.end() || it->second.deleted) return false;
        if (it->second.in_flight) {
            it->second.deleted = true;   // finish() drops it when its attempt is over
            spdlog::info("delete id={} requested by the operator; it goes when its delivery attempt ends", id);
            return true;
        }
        erase_due(id);
        messages_.erase(it);
    }
    spool_.remove(id);
    remove_delivery_record(delivery_record_path(spool_.queue_file(id)));
    spdlog::info("removed id={} (deleted by the operator, no bounce)", id);
    return true;
}

std::string DeliveryQueue::message_headers(const std::string& id) {
    constexpr std::size_t kMaxShown = 64 * 1024;
    const int fd = ::open(spool_.queue_file(id).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return "";
    const auto stored = spool::read_stored_message(fd);
    std::string text;
    if (stored) {
        text = spool::serialize_envelope(stored->envelope) + stored->addendum.headers;
        std::string content(std::min(kMaxShown, stored->content_length), '\0');
        const ssize_t n = ::pread(fd, content.data(), content.size(), stored->content_offset);
        content.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
        // The header section ends with an empty line.
        const auto headers_end = content.find("\r\n\r\n");
        if (headers_end != std::string::npos) content.resize(headers_end + 4);
        text += content;
    }
    ::close(fd);
    return text;
}

}  // namespace ferry::queue
