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
#include "spool/envelope.hpp"
#include "util/fs.hpp"

namespace ferry::queue {

namespace fs = std::filesystem;

namespace {

// Messages one worker delivers together, sharing two syncs. Large enough to amortise a journal commit,
// small enough that one slow mailbox does not hold many others back.
constexpr std::size_t kDeliveryBatch = 64;

// Reads the spool file head until the envelope's terminating empty line.
std::optional<spool::ParsedEnvelope> read_envelope(int fd) {
    std::string head;
    char buf[16384];
    off_t off = 0;
    for (;;) {
        const ssize_t n = ::pread(fd, buf, sizeof buf, off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return std::nullopt;
        head.append(buf, static_cast<std::size_t>(n));
        off += n;
        if (head.find("\n\n") != std::string::npos) return spool::parse_envelope(head);
    }
}

std::set<std::string> read_done(const fs::path& file) {
    std::set<std::string> done;
    FILE* f = std::fopen(file.c_str(), "r");
    if (!f) return done;
    char line[2048];
    while (std::fgets(line, sizeof line, f)) {
        std::string s(line);
        while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
        if (!s.empty()) done.insert(s);
    }
    std::fclose(f);
    return done;
}

// Records recipients that are final, so a retry or a restart does not deliver them twice.
void append_done(const fs::path& file, const std::vector<std::string>& recipients) {
    const bool created = !fs::exists(file);
    const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) return;
    std::string text;
    for (const auto& r : recipients) text += r + "\n";
    util::write_all(fd, text);
    ::fdatasync(fd);
    ::close(fd);
    if (created) util::fsync_dir(file.parent_path());
}

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

DeliveryQueue::DeliveryQueue(spool::Spool& spool, delivery::Router& router, QueueSettings settings)
    : spool_(spool), router_(router), settings_(std::move(settings)) {}

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
        if (recovered) recovered_.insert(queue_id);
        if (!attempts_.emplace(queue_id, 0).second) return;   // already queued
        due_.emplace(Clock::now(), queue_id);
    }
    wake_.notify_one();
}

void DeliveryQueue::work() {
    std::unique_lock lock(mutex_);
    std::vector<std::string> batch;
    std::vector<bool> recovered;
    for (;;) {
        if (stopping_) return;
        if (due_.empty()) {
            wake_.wait(lock);
            continue;
        }
        if (due_.begin()->first > Clock::now()) {
            wake_.wait_until(lock, due_.begin()->first);
            continue;
        }
        // Take every due message up to the batch size: their copies share two syncs.
        batch.clear();
        recovered.clear();
        const auto now = Clock::now();
        while (!due_.empty() && due_.begin()->first <= now && batch.size() < kDeliveryBatch) {
            batch.push_back(due_.begin()->second);
            recovered.push_back(recovered_.count(batch.back()) > 0);
            due_.erase(due_.begin());
        }
        lock.unlock();
        std::vector<Outcome> outcomes(batch.size(), Outcome::deferred);
        try {
            outcomes = deliver(batch, recovered);
        } catch (const std::exception& e) {
            spdlog::error("delivery batch of {} failed: {}", batch.size(), e.what());
        }
        lock.lock();
        for (std::size_t i = 0; i < batch.size(); ++i) {
            const std::string& id = batch[i];
            if (outcomes[i] == Outcome::done) {
                attempts_.erase(id);
                recovered_.erase(id);
                continue;
            }
            const int attempts = ++attempts_[id];
            due_.emplace(Clock::now() + retry_delay(attempts, settings_.min_retry, settings_.max_retry,
                                                    std::uniform_real_distribution<double>(0, 1)(random_)),
                         id);
        }
    }
}

namespace {

// One message of a delivery batch.
struct BatchMessage {
    std::string id;
    int fd = -1;
    spool::Envelope envelope;
    off_t content_offset = 0;
    std::size_t content_length = 0;
    std::time_t age = 0;
    bool expired = false;
    bool usable = false;                   // envelope read; otherwise deferred untouched
    std::set<std::string> done;            // from the .done record: "rcpt" or "rcpt>destination"
    std::vector<std::string> newly_done;   // to append to the .done record
    bool deferred = false;
    ~BatchMessage() {
        if (fd >= 0) ::close(fd);
    }
};

// One copy for one final mailbox.
struct Copy {
    std::size_t message;      // index into the batch
    std::size_t recipient;    // index into that message's envelope recipients
    delivery::Destination destination;
    delivery::MaildirFile file;
    bool ok = true;
    std::string failure;
    bool landed_before = false;   // found in the mailbox already (recovery after a crash): nothing to write
};

}  // namespace

std::vector<DeliveryQueue::Outcome> DeliveryQueue::deliver(const std::vector<std::string>& queue_ids,
                                                           const std::vector<bool>& recovered) {
    const bool per_file = settings_.sync == config::SyncMode::files;
    std::vector<std::unique_ptr<BatchMessage>> messages;
    std::vector<Copy> copies;
    // Per message and recipient: why it failed (empty: no failure) and whether permanently.
    std::vector<std::vector<std::pair<std::string, bool>>> failures;

    // 1. Read each envelope, route each recipient, write each copy into tmp/.
    for (std::size_t qi = 0; qi < queue_ids.size(); ++qi) {
        const std::string& id = queue_ids[qi];
        auto m = std::make_unique<BatchMessage>();
        m->id = id;
        const fs::path file = spool_.queue_file(id);
        m->fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
        const std::size_t mi = messages.size();
        failures.emplace_back();
        if (m->fd < 0) {
            spdlog::error("delivery id={} cannot open spool file: {}", id, std::strerror(errno));
            m->deferred = errno != ENOENT;   // gone: somebody (ferry queue delete) removed it
            messages.push_back(std::move(m));
            continue;
        }
        const auto parsed = read_envelope(m->fd);
        const auto length = spool::committed_length(m->fd);
        if (!parsed || !length || *length < parsed->content_offset) {
            // Unreadable spool files are kept for the operator, never delivered half-understood.
            spdlog::error("delivery id={} spool file has no valid envelope or trailer; left in {}", id, file.string());
            m->deferred = true;
            messages.push_back(std::move(m));
            continue;
        }
        m->usable = true;
        m->envelope = parsed->envelope;
        m->content_offset = static_cast<off_t>(parsed->content_offset);
        m->content_length = static_cast<std::size_t>(*length - parsed->content_offset);
        m->done = read_done(file.string() + ".done");
        m->age = std::time(nullptr) - m->envelope.arrival;
        m->expired = m->age > settings_.lifetime.count();
        failures.back().assign(m->envelope.recipients.size(), {});

        std::set<std::string> copied;   // one copy per final mailbox, however many ways it is reached
        for (std::size_t ri = 0; ri < m->envelope.recipients.size(); ++ri) {
            const std::string& rcpt = m->envelope.recipients[ri];
            if (m->done.count(rcpt)) continue;
            const delivery::Route route = router_.resolve(rcpt);
            auto& [failure, permanent] = failures[mi][ri];
            if (!route.error.empty()) {
                failure = route.error;
                permanent = route.permanent;
                continue;
            }
            for (const auto& dest : route.destinations) {
                if (m->done.count(rcpt + ">" + dest.address) || !copied.insert(dest.address).second) continue;
                if (dest.kind == delivery::Destination::Kind::remote) {
                    failure = "remote delivery is not available in this version";
                    continue;
                }
                Copy c{mi, ri, dest, {}, true, {}, false};
                const std::string headers =
                    fmt::format("Return-Path: <{}>\r\nDelivered-To: {}\r\n", m->envelope.sender, dest.address);
                const fs::path maildir = delivery::maildir_path(settings_.mail_root, dest.domain, dest.local);
                const std::string name = delivery::maildir_name(id, m->envelope.arrival, settings_.hostname,
                                                                headers.size() + m->content_length);
                if (recovered[qi] && delivery::maildir_has(maildir, name)) {
                    // Landed before the crash that kept it from being recorded: deliver it once, not twice.
                    c.landed_before = true;
                    copies.push_back(std::move(c));
                    continue;
                }
                const auto r = delivery::write_maildir_file(maildir, name, headers, m->fd, m->content_offset,
                                                            m->content_length, per_file, c.file);
                if (!r.ok) {
                    failure = r.reason;
                    permanent = r.permanent;
                    copied.erase(dest.address);
                    continue;
                }
                copies.push_back(std::move(c));
            }
        }
        messages.push_back(std::move(m));
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
        if (const auto ec = util::sync_filesystem(messages[copies.front().message]->fd)) {
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
            ec = util::sync_filesystem(messages[copies.front().message]->fd);
        }
        // The copies are in new/ and may be read already; a failed barrier only means a retry could
        // duplicate them, so say so rather than pretend they are not there.
        if (ec) spdlog::error("delivery batch: sync after rename failed: {}", ec.message());
    }

    // 5. Per recipient: final when every copy landed (or it failed for good); per message: remove or retry.
    for (const auto& c : copies) {
        BatchMessage& m = *messages[c.message];
        const std::string& rcpt = m.envelope.recipients[c.recipient];
        if (c.ok) {
            spdlog::info("delivered id={} to=<{}> orig_to=<{}> relay=maildir delay={}s status=sent{}", m.id,
                         c.destination.address, rcpt, m.age,
                         c.landed_before ? " (copy found in the mailbox, written before a restart)" : "");
            m.newly_done.push_back(rcpt + ">" + c.destination.address);
        } else if (failures[c.message][c.recipient].first.empty()) {
            failures[c.message][c.recipient] = {c.failure, false};
        }
    }
    std::vector<Outcome> outcomes;
    for (std::size_t mi = 0; mi < messages.size(); ++mi) {
        BatchMessage& m = *messages[mi];
        if (!m.usable) {
            outcomes.push_back(m.deferred ? Outcome::deferred : Outcome::done);
            continue;
        }
        for (std::size_t ri = 0; ri < m.envelope.recipients.size(); ++ri) {
            const std::string& rcpt = m.envelope.recipients[ri];
            if (m.done.count(rcpt)) continue;
            const auto& [failure, permanent] = failures[mi][ri];
            if (failure.empty()) {
                m.newly_done.push_back(rcpt);
            } else if (permanent || m.expired) {
                // DSN bounces to the sender come with the outbound issue; until then the log is the record.
                spdlog::warn("delivery id={} to=<{}> status=bounced reason=\"{}\"", m.id, rcpt,
                             m.expired ? "expired in queue: " + failure : failure);
                m.newly_done.push_back(rcpt);
            } else {
                spdlog::warn("delivery id={} to=<{}> status=deferred reason=\"{}\"", m.id, rcpt, failure);
                m.deferred = true;
            }
        }
        if (!m.deferred) {
            spool_.remove(m.id);
            spdlog::info("removed id={}", m.id);
            outcomes.push_back(Outcome::done);
        } else {
            if (!m.newly_done.empty()) append_done(spool_.queue_file(m.id).string() + ".done", m.newly_done);
            outcomes.push_back(Outcome::deferred);
        }
    }
    return outcomes;
}

}  // namespace ferry::queue
