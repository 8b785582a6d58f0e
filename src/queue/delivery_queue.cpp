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
#include "queue/bounce.hpp"
#include "smtp/dsn.hpp"
#include "spool/envelope.hpp"
#include "spool/queue_id.hpp"
#include "util/fs.hpp"

namespace ferry::queue {

namespace fs = std::filesystem;
using delivery::DeliveryResult;

namespace {

// Messages one worker delivers together, sharing two syncs. Large enough to amortise a journal commit,
// small enough that one slow mailbox does not hold many others back.
constexpr std::size_t kDeliveryBatch = 64;

// Shortest time between two reads of queue/ for messages left on disk (a read costs a stat per spool file).
constexpr auto kScanInterval = std::chrono::seconds(5);

// queue/<id>.done: what is final, so a retry or a restart does not deliver twice. One line each: "rcpt" (the
// recipient is final) or "rcpt>destination" (one of its copies is). Lines starting with a tab record a deferral,
// "\t<attempt>\t<rcpt>\t<reason>", so the backoff and the last error survive a restart; an address never holds
// a tab (RFC 5321 4.1.2 allows no control characters in it).
struct DoneRecord {
    std::set<std::string> done;
    int attempts = 0;
    std::map<std::string, std::string> last_error;
};

DoneRecord read_done(const fs::path& file) {
    DoneRecord out;
    FILE* f = std::fopen(file.c_str(), "r");
    if (!f) return out;
    char line[4096];
    while (std::fgets(line, sizeof line, f)) {
        std::string s(line);
        while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
        if (s.empty()) continue;
        if (s.front() != '\t') {
            out.done.insert(s);
            continue;
        }
        const auto t2 = s.find('\t', 1), t3 = t2 == std::string::npos ? t2 : s.find('\t', t2 + 1);
        if (t3 == std::string::npos) continue;
        out.attempts = std::max(out.attempts, std::atoi(s.substr(1, t2 - 1).c_str()));
        out.last_error[s.substr(t2 + 1, t3 - t2 - 1)] = s.substr(t3 + 1);
    }
    std::fclose(f);
    return out;
}

void append_done(const fs::path& file, const std::vector<std::string>& lines) {
    if (lines.empty()) return;
    const bool created = !fs::exists(file);
    const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) return;
    std::string text;
    for (const auto& l : lines) text += l + "\n";
    util::write_all(fd, text);
    ::fdatasync(fd);
    ::close(fd);
    if (created) util::fsync_dir(file.parent_path());
}

std::string one_line(std::string text) {
    for (char& c : text)
        if (c == '\n' || c == '\r' || c == '\t') c = ' ';
    return text;
}

std::string domain_of(const std::string& address) { return address.substr(address.rfind('@') + 1); }

}  // namespace

std::chrono::milliseconds retry_delay(int attempt, std::chrono::seconds min_retry, std::chrono::seconds max_retry,
                                      double spread) {
    std::chrono::milliseconds delay = min_retry;
    for (int i = 1; i < attempt && delay < max_retry; ++i) delay *= 2;
    delay = std::min<std::chrono::milliseconds>(delay, max_retry);
    const auto extra = std::chrono::milliseconds(static_cast<std::int64_t>(static_cast<double>(delay.count()) / 4 *
                                                                           std::clamp(spread, 0.0, 1.0)));
    return std::min<std::chrono::milliseconds>(delay + extra, max_retry);
}

// One copy or remote delivery of one recipient: a recipient has one leg per final destination (aliases expand).
struct Leg {
    std::size_t recipient;      // index into the envelope's recipients
    std::string destination;    // final address; the recipient itself when it could not be routed
    bool remote = false;
    DeliveryResult result = delivery::temporary_result("4.3.0", "not attempted");
};

struct DeliveryQueue::Attempt {
    std::string id;
    int fd = -1;
    spool::Envelope envelope;
    off_t content_offset = 0;
    std::size_t content_length = 0;
    spool::Addendum addendum;   // header fields to put first, the folder for local copies
    std::time_t age = 0;
    bool expired = false;
    bool usable = false;      // envelope read; otherwise kept untouched (keep) or gone
    bool keep = false;
    DoneRecord record;
    std::vector<Leg> legs;
    std::size_t jobs_out = 0;   // remote jobs not back yet
    std::map<std::string, std::string> errors;   // filled by finish(): deferred recipient -> why
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
        it->second.due = Clock::now();
        due_.emplace(it->second.due, queue_id);
    }
    wake_.notify_one();
}

void DeliveryQueue::work() {
    std::unique_lock lock(mutex_);
    std::vector<std::string> batch;
    std::vector<bool> recovered;
    std::vector<int> attempts;
    for (;;) {
        // Attempts whose remote jobs all came back are finished first, also when stopping: their results
        // (mail that was sent) must be recorded, or a restart would send it again.
        if (!returned_.empty()) {
            const std::string id = returned_.front();
            returned_.pop_front();
            auto node = remote_.extract(id);
            lock.unlock();
            Outcome outcome = Outcome::deferred;
            try {
                outcome = finish(*node.mapped());
            } catch (const std::exception& e) {
                spdlog::error("delivery id={} failed: {}", id, e.what());
            }
            auto errors = std::move(node.mapped()->errors);
            node.mapped().reset();
            lock.lock();
            settle(id, outcome, std::move(errors));
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
        attempts.clear();
        const auto now = Clock::now();
        while (!due_.empty() && due_.begin()->first <= now && batch.size() < kDeliveryBatch) {
            const std::string id = due_.begin()->second;
            due_.erase(due_.begin());
            MessageState& st = messages_[id];
            st.in_flight = true;
            batch.push_back(id);
            recovered.push_back(st.recovered);
            attempts.push_back(st.attempts);
        }
        lock.unlock();
        std::vector<Outcome> outcomes(batch.size(), Outcome::deferred);
        std::vector<std::map<std::string, std::string>> errors(batch.size());
        try {
            outcomes = deliver(batch, recovered, attempts);
        } catch (const std::exception& e) {
            spdlog::error("delivery batch of {} failed: {}", batch.size(), e.what());
        }
        lock.lock();
        for (std::size_t i = 0; i < batch.size(); ++i)
            if (outcomes[i] != Outcome::remote) settle(batch[i], outcomes[i], {});
    }
}

// Called with mutex_ held.
void DeliveryQueue::settle(const std::string& id, Outcome outcome, std::map<std::string, std::string> errors) {
    const auto it = messages_.find(id);
    if (it == messages_.end()) return;
    MessageState& st = it->second;
    if (outcome == Outcome::done) {
        messages_.erase(it);
        return;
    }
    if (st.deleted) {   // `ferry queue delete` came while finish() was recording this attempt
        messages_.erase(it);
        spool_.remove(id);
        ::unlink((spool_.queue_file(id).string() + ".done").c_str());
        spdlog::info("removed id={} (deleted by the operator)", id);
        return;
    }
    st.in_flight = false;
    if (!errors.empty()) st.last_error = std::move(errors);
    ++st.attempts;
    const auto delay = retry_delay(st.attempts, settings_.min_retry, settings_.max_retry,
                                   std::uniform_real_distribution<double>(0, 1)(random_));
    st.due = Clock::now() + delay;
    st.next_attempt = std::time(nullptr) + std::chrono::ceil<std::chrono::seconds>(delay).count();
    due_.emplace(st.due, id);
}

namespace {

// One Maildir copy of one leg.
struct Copy {
    std::size_t attempt;   // index into the batch
    std::size_t leg;       // index into that attempt's legs
    delivery::MaildirFile file;
    bool ok = true;
    std::string failure;
    bool landed_before = false;   // found in the mailbox already (recovery after a crash): nothing to write
};

}  // namespace

std::vector<DeliveryQueue::Outcome> DeliveryQueue::deliver(const std::vector<std::string>& queue_ids,
                                                           const std::vector<bool>& recovered,
                                                           const std::vector<int>& prior_attempts) {
    const bool per_file = settings_.sync == config::SyncMode::files;
    std::vector<std::unique_ptr<Attempt>> attempts;
    std::vector<Copy> copies;

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
        a->record = read_done(file.string() + ".done");
        if (a->record.attempts > prior_attempts[qi]) {
            std::lock_guard lock(mutex_);   // a restart: the backoff goes on from where it was
            if (auto it = messages_.find(id); it != messages_.end()) it->second.attempts = a->record.attempts;
        }
        a->age = std::time(nullptr) - a->envelope.arrival;
        a->expired = a->age > settings_.lifetime.count();

        std::set<std::string> copied;   // one copy per final mailbox, however many ways it is reached
        for (std::size_t ri = 0; ri < a->envelope.recipients.size(); ++ri) {
            const std::string& rcpt = a->envelope.recipients[ri];
            if (a->record.done.count(rcpt)) continue;
            const delivery::Route route = router_.resolve(rcpt);
            if (!route.error.empty()) {
                a->legs.push_back(Leg{ri, rcpt, false,
                                      route.permanent ? delivery::permanent_result(route.status, route.error)
                                                      : delivery::temporary_result(route.status, route.error)});
                continue;
            }
            for (const auto& dest : route.destinations) {
                if (a->record.done.count(rcpt + ">" + dest.address) || !copied.insert(dest.address).second) continue;
                if (dest.kind == delivery::Destination::Kind::remote) {
                    a->legs.push_back(Leg{ri, dest.address, true});
                    continue;
                }
                a->legs.push_back(Leg{ri, dest.address, false});
                Copy c{ai, a->legs.size() - 1, {}, true, {}, false};
                const std::string headers =
                    fmt::format("Return-Path: <{}>\r\nDelivered-To: {}\r\n", a->envelope.sender, dest.address) +
                    a->addendum.headers;
                const fs::path maildir = delivery::maildir_folder(
                    delivery::maildir_path(settings_.mail_root, dest.domain, dest.local), a->addendum.folder);
                const std::string name = delivery::maildir_name(id, a->envelope.arrival, settings_.hostname,
                                                                headers.size() + a->content_length);
                if (recovered[qi] && delivery::maildir_has(maildir, name)) {
                    // Landed before the crash that kept it from being recorded: deliver it once, not twice.
                    c.landed_before = true;
                    copies.push_back(std::move(c));
                    continue;
                }
                const auto r = delivery::write_maildir_file(maildir, name, headers, a->fd, a->content_offset,
                                                            a->content_length, per_file, c.file);
                if (!r.ok) {
                    a->legs.back().result = r.permanent ? delivery::permanent_result("5.2.0", r.reason)
                                                        : delivery::temporary_result("4.2.0", r.reason);
                    copied.erase(dest.address);
                    continue;
                }
                copies.push_back(std::move(c));
            }
        }
        attempts.push_back(std::move(a));
    }

    // 2. Content durable before any copy becomes visible; 3. into new/; 4. the renames durable.
    auto fail_all = [&](const std::string& why) {
        for (auto& c : copies)
            if (c.ok) {
                c.ok = false;
                c.failure = why;
            }
    };
    if (!copies.empty() && !per_file) {
        if (const auto ec = util::sync_filesystem(attempts[copies.front().attempt]->fd)) {
            fail_all("syncfs: " + ec.message());
            for (auto& c : copies)
                if (!c.landed_before) delivery::discard_maildir_file(c.file);
        }
    }
    std::set<fs::path> new_dirs;
    for (auto& c : copies) {
        if (!c.ok || c.landed_before) continue;
        const auto r = delivery::publish_maildir_file(c.file);
        if (!r.ok) {
            c.ok = false;
            c.failure = r.reason;
        } else {
            new_dirs.insert(c.file.new_dir);
        }
    }
    if (!new_dirs.empty()) {
        std::error_code ec;
        if (per_file) {
            for (const auto& d : new_dirs)
                if (auto e = util::fsync_dir(d)) ec = e;
        } else {
            ec = util::sync_filesystem(attempts[copies.front().attempt]->fd);
        }
        // The copies are in new/ and may be read already; a failed barrier only means a retry could
        // duplicate them, so say so rather than pretend they are not there.
        if (ec) spdlog::error("delivery batch: sync after rename failed: {}", ec.message());
    }
    for (const auto& c : copies) {
        Leg& leg = attempts[c.attempt]->legs[c.leg];
        leg.result = c.ok ? DeliveryResult{DeliveryResult::Kind::sent, "2.0.0", "delivered to maildir", false, {},
                                           c.landed_before ? "maildir (copy found in the mailbox, written before a restart)"
                                                           : "maildir"}
                          : delivery::temporary_result("4.3.0", c.failure);
    }

    // 5. Messages with remote legs go out; the others are finished here.
    std::vector<Outcome> outcomes;
    for (auto& a : attempts) {
        const bool remote = a->usable && std::any_of(a->legs.begin(), a->legs.end(), [](const Leg& l) { return l.remote; });
        if (remote && outbound_) {
            outcomes.push_back(Outcome::remote);
            send_remote(std::move(a));
            continue;
        }
        for (auto& leg : a->legs)
            if (leg.remote) leg.result = delivery::temporary_result("4.3.0", "remote delivery is not configured");
        const Outcome o = finish(*a);
        {
            std::lock_guard lock(mutex_);
            if (auto it = messages_.find(a->id); it != messages_.end() && o != Outcome::done && !a->errors.empty())
                it->second.last_error = a->errors;
        }
        outcomes.push_back(o);
    }
    return outcomes;
}

// Hands an attempt's remote legs to delivery/outbound, one job per domain (all its recipients in one
// transaction); the attempt is finished by a worker when every job has come back.
void DeliveryQueue::send_remote(std::unique_ptr<Attempt> a) {
    std::map<std::string, std::vector<std::size_t>> by_domain;
    for (std::size_t li = 0; li < a->legs.size(); ++li)
        if (a->legs[li].remote) by_domain[config::ascii_lower(domain_of(a->legs[li].destination))].push_back(li);
    std::vector<delivery::RemoteJob> jobs;
    const auto stored = std::make_shared<const spool::Envelope>(a->envelope);   // one copy for all the jobs
    for (const auto& [domain, legs] : by_domain) {
        delivery::RemoteJob job;
        job.destination = domain;
        const spool::Envelope& e = a->envelope;
        job.message = delivery::OutboundMessage{stored, ::dup(a->fd), a->content_offset, a->content_length,
                                                a->addendum.headers};
        for (const std::size_t li : legs) {
            const Leg& leg = a->legs[li];
            const std::string& rcpt = e.recipients[leg.recipient];
            const spool::RecipientDsn dsn = leg.recipient < e.recipient_dsn.size() ? e.recipient_dsn[leg.recipient]
                                                                                    : spool::RecipientDsn{};
            // RFC 3461 4.2: an address we expanded (an alias) travels with the recipient it came from.
            std::string orcpt = dsn.orcpt;
            if (orcpt.empty() && leg.destination != rcpt) orcpt = "rfc822;" + smtp::xtext_encode(rcpt);
            job.recipients.push_back(delivery::OutboundRecipient{leg.destination, smtp::format_notify(dsn.notify), orcpt});
        }
        const std::string id = a->id;
        job.done = [this, id, legs](std::vector<DeliveryResult> results) {
            std::lock_guard lock(mutex_);
            const auto it = remote_.find(id);
            if (it == remote_.end()) return;
            for (std::size_t i = 0; i < legs.size() && i < results.size(); ++i)
                it->second->legs[legs[i]].result = std::move(results[i]);
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

// Decides every leg of an attempt: logs it, records what is final, writes the DSNs, and removes the message when
// nothing is left to try.
DeliveryQueue::Outcome DeliveryQueue::finish(Attempt& a) {
    if (!a.usable) return a.keep ? Outcome::deferred : Outcome::done;
    const fs::path done_file = spool_.queue_file(a.id).string() + ".done";
    {
        std::lock_guard lock(mutex_);
        const auto it = messages_.find(a.id);
        if (it != messages_.end() && it->second.deleted) {
            spool_.remove(a.id);
            ::unlink(done_file.c_str());
            spdlog::info("removed id={} (deleted by the operator)", a.id);
            return Outcome::done;
        }
    }
    const spool::Envelope& e = a.envelope;
    std::vector<std::string> records;
    std::vector<bool> pending(e.recipients.size(), false);
    std::vector<mime::DsnRecipient> failed, succeeded;
    std::vector<std::size_t> failed_legs;
    const std::time_t now = std::time(nullptr);
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
    for (const Leg& leg : a.legs) {
        const std::string& rcpt = e.recipients[leg.recipient];
        const unsigned notify = dsn_of(leg.recipient).notify;
        DeliveryResult r = leg.result;
        if (r.kind == DeliveryResult::Kind::temporary && a.expired) {
            r.kind = DeliveryResult::Kind::permanent;
            r.diagnostic = fmt::format("message expired after {}s in the queue; last error: {}", a.age, r.diagnostic);
            r.from_server = false;
        }
        switch (r.kind) {
        case DeliveryResult::Kind::sent:
            spdlog::info("delivered id={} to=<{}> relay={} delay={}s status=sent ({}){}", a.id, leg.destination, r.via,
                         a.age, one_line(r.diagnostic), orig_to(leg));
            records.push_back(rcpt + ">" + leg.destination);
            // RFC 3461 6.2.2: success is reported when asked for, by us for a mailbox, or as "relayed" when the
            // next hop cannot report it itself.
            if ((notify & smtp::kNotifySuccess) && (!leg.remote || !r.next_hop_dsn))
                succeeded.push_back(report_line(leg, leg.remote ? "relayed" : "delivered", r));
            break;
        case DeliveryResult::Kind::permanent:
            spdlog::warn("delivery id={} to=<{}> status=bounced dsn={} reason=\"{}\"{}", a.id, leg.destination,
                         r.status, one_line(r.diagnostic), orig_to(leg));
            records.push_back(rcpt + ">" + leg.destination);
            // RFC 3461 4.1: without NOTIFY, failures are reported; NOTIFY=NEVER or a list without FAILURE: not.
            if (notify == 0 || (notify & smtp::kNotifyFailure)) {
                failed.push_back(report_line(leg, "failed", r));
                failed_legs.push_back(records.size() - 1);
            }
            break;
        case DeliveryResult::Kind::temporary:
            spdlog::warn("delivery id={} to=<{}> status=deferred dsn={} reason=\"{}\"{}", a.id, leg.destination,
                         r.status, one_line(r.diagnostic), orig_to(leg));
            pending[leg.recipient] = true;
            a.errors[rcpt] = one_line(r.diagnostic);
            break;
        }
    }

    bool deferred = std::any_of(pending.begin(), pending.end(), [](bool p) { return p; });
    const ReportedMessage reported{e, a.fd, a.content_offset, a.content_length, a.addendum.headers};
    if (!failed.empty()) {
        if (e.sender.empty()) {
            spdlog::info("bounce id={} not sent: the sender is <> (a bounce is never answered)", a.id);
        } else if (const auto dsn = write_dsn(spool_, settings_.hostname, reported, failed)) {
            spdlog::info("bounce id={} dsn={} to=<{}> recipients={}", a.id, *dsn, e.sender, failed.size());
            submit(*dsn);
        } else {
            // The bounce could not be stored: the failed legs stay open and are tried (and reported) again.
            for (auto it = failed_legs.rbegin(); it != failed_legs.rend(); ++it) records.erase(records.begin() + *it);
            for (const auto& leg : a.legs)
                if (leg.result.kind != DeliveryResult::Kind::sent) pending[leg.recipient] = true;
            deferred = true;
        }
    }
    if (!succeeded.empty() && !e.sender.empty()) {
        if (const auto dsn = write_dsn(spool_, settings_.hostname, reported, succeeded)) {
            spdlog::info("notify id={} dsn={} to=<{}> recipients={} (success)", a.id, *dsn, e.sender, succeeded.size());
            submit(*dsn);
        }
    }
    for (std::size_t ri = 0; ri < e.recipients.size(); ++ri)
        if (!pending[ri] && !a.record.done.count(e.recipients[ri])) records.push_back(e.recipients[ri]);

    if (!deferred) {
        spool_.remove(a.id);
        ::unlink(done_file.c_str());
        spdlog::info("removed id={}", a.id);
        return Outcome::done;
    }
    int attempt = 0;
    {
        std::lock_guard lock(mutex_);
        if (auto it = messages_.find(a.id); it != messages_.end()) attempt = it->second.attempts + 1;
    }
    for (const auto& [rcpt, why] : a.errors) records.push_back(fmt::format("\t{}\t{}\t{}", attempt, rcpt, why));
    append_done(done_file, records);
    return Outcome::deferred;
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
        MessageState& st = messages_[id];
        // It may have been tried before a restart: its copies are looked for before new ones are written.
        st.recovered = true;
        st.due = Clock::now();
        due_.emplace(st.due, id);
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
    const DoneRecord record = read_done(file.string() + ".done");
    for (const auto& rcpt : stored->envelope.recipients) {
        if (record.done.count(rcpt)) continue;
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
        const auto now = Clock::now();
        for (auto& [mid, st] : messages_) {
            if ((!id.empty() && mid != id) || st.deleted) continue;
            ++count;
            if (st.in_flight) continue;   // being tried right now
            erase_due(mid);
            st.due = now;
            st.next_attempt = 0;
            due_.emplace(now, mid);
        }
    }
    wake_.notify_all();
    return count;
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
    ::unlink((spool_.queue_file(id).string() + ".done").c_str());
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
