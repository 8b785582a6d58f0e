#include "queue/delivery_queue.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "delivery/maildir.hpp"
#include "spool/envelope.hpp"
#include "util/fs.hpp"

namespace ferry::queue {

namespace fs = std::filesystem;

namespace {

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

std::chrono::seconds retry_delay(int attempt, std::chrono::seconds min_retry, std::chrono::seconds max_retry) {
    auto delay = min_retry;
    for (int i = 1; i < attempt && delay < max_retry; ++i) delay *= 2;
    return std::min(delay, max_retry);
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

std::size_t DeliveryQueue::size() {
    std::lock_guard lock(mutex_);
    return entries_.size();
}

void DeliveryQueue::submit(const std::string& queue_id) {
    {
        std::lock_guard lock(mutex_);
        if (entries_.count(queue_id)) return;
        entries_[queue_id] = Entry{0, Clock::now()};
        due_.emplace(Clock::now(), queue_id);
    }
    wake_.notify_one();
}

void DeliveryQueue::schedule(const std::string& queue_id, Clock::time_point due) {
    {
        std::lock_guard lock(mutex_);
        entries_[queue_id].due = due;
        due_.emplace(due, queue_id);
    }
    wake_.notify_one();
}

void DeliveryQueue::work() {
    std::unique_lock lock(mutex_);
    for (;;) {
        if (stopping_) return;
        if (due_.empty()) {
            wake_.wait(lock);
            continue;
        }
        const auto first = due_.begin();
        if (first->first > Clock::now()) {
            wake_.wait_until(lock, first->first);
            continue;
        }
        const std::string id = first->second;
        due_.erase(first);
        const int attempts = ++entries_[id].attempts;
        lock.unlock();
        Outcome outcome = Outcome::deferred;
        try {
            outcome = deliver(id);
        } catch (const std::exception& e) {
            spdlog::error("delivery id={} failed: {}", id, e.what());
        }
        lock.lock();
        if (outcome == Outcome::done) {
            entries_.erase(id);
        } else {
            const auto due = Clock::now() + retry_delay(attempts, settings_.min_retry, settings_.max_retry);
            entries_[id].due = due;
            due_.emplace(due, id);
        }
    }
}

DeliveryQueue::Outcome DeliveryQueue::deliver(const std::string& queue_id) {
    const fs::path file = spool_.queue_file(queue_id);
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        spdlog::error("delivery id={} cannot open spool file: {}", queue_id, std::strerror(errno));
        return errno == ENOENT ? Outcome::done : Outcome::deferred;
    }
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};
    const auto parsed = read_envelope(fd);
    if (!parsed) {
        // Unreadable spool files are kept for the operator, never delivered half-understood.
        spdlog::error("delivery id={} spool file has no valid envelope; left in {}", queue_id, file.string());
        return Outcome::deferred;
    }
    const spool::Envelope& env = parsed->envelope;
    const off_t content_offset = static_cast<off_t>(parsed->content_offset);
    const std::size_t content_length = static_cast<std::size_t>(fs::file_size(file)) - parsed->content_offset;
    const fs::path done_file = file.string() + ".done";
    std::set<std::string> done = read_done(done_file);
    const auto age = std::time(nullptr) - env.arrival;
    const bool expired = age > settings_.lifetime.count();

    std::vector<std::string> newly_final;
    std::set<std::string> delivered_here;   // one copy per final mailbox, however many ways it is reached
    bool deferred = false;
    for (const std::string& rcpt : env.recipients) {
        if (done.count(rcpt)) continue;
        const delivery::Route route = router_.resolve(rcpt);
        std::string failure;
        bool permanent = false;
        if (!route.error.empty()) {
            failure = route.error;
            permanent = route.permanent;
        }
        for (const auto& dest : route.destinations) {
            if (!failure.empty()) break;
            if (delivered_here.count(dest.address)) continue;
            if (dest.kind == delivery::Destination::Kind::remote) {
                failure = "remote delivery is not available in this version";
                break;
            }
            const std::string headers =
                fmt::format("Return-Path: <{}>\r\nDelivered-To: {}\r\n", env.sender, dest.address);
            const auto t0 = std::chrono::steady_clock::now();
            const delivery::DeliveryResult r = delivery::deliver_to_maildir(
                delivery::maildir_path(settings_.mail_root, dest.domain, dest.local), settings_.hostname, headers, fd,
                content_offset, content_length);
            const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            if (!r.ok) {
                failure = r.reason;
                permanent = r.permanent;
                break;
            }
            delivered_here.insert(dest.address);
            spdlog::info("delivered id={} to=<{}> orig_to=<{}> relay=maildir delay={}s took={:.3f}s status=sent",
                         queue_id, dest.address, rcpt, age, took);
        }
        if (failure.empty()) {
            newly_final.push_back(rcpt);
        } else if (permanent || expired) {
            // DSN bounces to the sender come with the outbound issue; until then the log is the record.
            spdlog::warn("delivery id={} to=<{}> status=bounced reason=\"{}\"", queue_id, rcpt,
                         expired ? "expired in queue: " + failure : failure);
            newly_final.push_back(rcpt);
        } else {
            spdlog::warn("delivery id={} to=<{}> status=deferred reason=\"{}\"", queue_id, rcpt, failure);
            deferred = true;
        }
    }
    if (!deferred) {
        spool_.remove(queue_id);
        spdlog::info("removed id={}", queue_id);
        return Outcome::done;
    }
    if (!newly_final.empty()) append_done(done_file, newly_final);
    return Outcome::deferred;
}

}  // namespace ferry::queue
