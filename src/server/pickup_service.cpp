#include "server/pickup_service.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <future>
#include <vector>

#include "intake/message_envelope.hpp"
#include "intake/message_intake.hpp"
#include "smtp/address.hpp"
#include "smtp/content_decoder.hpp"
#include "spool/pickup.hpp"
#include "spool/queue_id.hpp"
#include "util/fs.hpp"
#include "util/time_format.hpp"

namespace ferry::server {

namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

// The head of a pickup file on top of the message itself (a sender and up to 10,000 recipients).
constexpr std::uint64_t kMaxHead = 1 << 20;

std::string user_name(uid_t uid) {
    passwd pw{};
    passwd* found = nullptr;
    char buf[4096];
    if (::getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found && found->pw_name) return found->pw_name;
    return "uid " + std::to_string(uid);
}

bool plain_address(const std::string& a) { return smtp::address_error(a).empty(); }

}  // namespace

PickupService::PickupService(asio::io_context& io, asio::any_io_executor work, spool::Spool& spool,
                             spool::Committer& committer, queue::DeliveryQueue& queue,
                             std::function<std::shared_ptr<const config::Config>()> config,
                             std::function<std::shared_ptr<const mailauth::SigningKeys>()> keys)
    : io_(io),
      work_(std::move(work)),
      strand_(asio::make_strand(work_)),
      spool_(spool),
      committer_(committer),
      queue_(queue),
      config_(std::move(config)),
      keys_(std::move(keys)) {}

PickupService::~PickupService() { stop(); }

void PickupService::start(const fs::path& data_dir) {
    dir_ = data_dir / "pickup";
    std::error_code ec;
    fs::create_directories(dir_ / "failed", ec);
    // Others may pass through data_dir to reach pickup/, and add files there; nothing else (the sticky bit keeps
    // them from removing each other's files, the missing read bit from listing them).
    if (!ec) fs::permissions(data_dir, static_cast<fs::perms>(0711), fs::perm_options::replace, ec);
    if (!ec) fs::permissions(dir_, static_cast<fs::perms>(01733), fs::perm_options::replace, ec);
    if (!ec) fs::permissions(dir_ / "failed", static_cast<fs::perms>(0700), fs::perm_options::replace, ec);
    if (ec) throw std::runtime_error(fmt::format("pickup directory {}: {}", dir_.string(), ec.message()));
    inotify_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (inotify_fd_ < 0 || ::inotify_add_watch(inotify_fd_, dir_.c_str(), IN_MOVED_TO | IN_CLOSE_WRITE) < 0)
        throw std::runtime_error(fmt::format("pickup directory {}: inotify: {}", dir_.string(), std::strerror(errno)));
    events_ = std::make_unique<asio::posix::stream_descriptor>(io_, inotify_fd_);
    watch();
    sweep_ = std::make_unique<asio::steady_timer>(io_);
    sweep_later();
    schedule_scan();   // what was left while the server was down
}

void PickupService::stop() {
    stopping_ = true;
    if (sweep_) sweep_->cancel();
    if (events_) {
        boost::system::error_code ignored;
        events_->close(ignored);   // closes inotify_fd_ too
        events_.reset();
        inotify_fd_ = -1;
    }
}

void PickupService::watch() {
    events_->async_read_some(asio::buffer(event_buffer_), [this](boost::system::error_code ec, std::size_t) {
        if (ec || stopping_) return;   // closed at shutdown
        schedule_scan();               // what changed does not matter: the folder is read whole
        watch();
    });
}

void PickupService::schedule_scan() {
    // One queued scan is enough: it reads the whole folder. A scan clears the flag as it starts, so an event
    // that comes while it runs queues the next one; the strand keeps two from running at once.
    if (scan_queued_.exchange(true)) return;
    asio::post(strand_, [this] {
        scan_queued_ = false;
        scan();
    });
}

// A file that could not be stored (the spool's disk full, say) is taken at the next scan; without more mail
// arriving, this is the next scan.
void PickupService::sweep_later() {
    sweep_->expires_after(std::chrono::minutes(1));
    sweep_->async_wait([this](boost::system::error_code ec) {
        if (ec || stopping_) return;
        schedule_scan();
        sweep_later();
    });
}

void PickupService::scan() {
    if (stopping_) return;
    std::vector<std::string> names;
    if (DIR* d = ::opendir(dir_.c_str())) {
        while (const dirent* e = ::readdir(d))
            if (spool::is_pickup_name(e->d_name)) names.emplace_back(e->d_name);
        ::closedir(d);
    }
    std::sort(names.begin(), names.end());   // oldest first: names start with the time
    for (const auto& n : names) {
        if (stopping_) return;
        take(n);
    }
}

void PickupService::set_aside(const std::string& name, const std::string& why) {
    spdlog::error("pickup file={} refused: {}; moved to {}", name, why, (dir_ / "failed").string());
    std::error_code ec;
    fs::rename(dir_ / name, dir_ / "failed" / name, ec);
    if (ec) fs::remove(dir_ / name, ec);
}

void PickupService::take(const std::string& name) {
    const auto cfg = config_();
    const fs::path path = dir_ / name;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) {
        if (errno != ENOENT) set_aside(name, std::strerror(errno));
        return;
    }
    struct stat st {};
    std::string file;
    bool readable = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    if (readable && static_cast<std::uint64_t>(st.st_size) > cfg->limits.message_size + kMaxHead) {
        ::close(fd);
        set_aside(name, fmt::format("{} octets, over [limits] message_size", st.st_size));
        return;
    }
    if (readable) {
        file.resize(static_cast<std::size_t>(st.st_size));
        std::size_t got = 0;
        while (got < file.size()) {
            const ssize_t n = ::read(fd, file.data() + got, file.size() - got);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            got += static_cast<std::size_t>(n);
        }
        readable = got == file.size();
    }
    ::close(fd);
    if (!readable) {
        set_aside(name, "not a regular file, or it could not be read");
        return;
    }
    const auto parsed = spool::parse_pickup(file);
    if (!parsed) {
        set_aside(name, "not a pickup file (its head is malformed)");
        return;
    }
    const spool::PickupEnvelope& pe = parsed->envelope;
    if (!pe.sender.empty() && !plain_address(pe.sender)) {
        set_aside(name, "sender is not an address");
        return;
    }
    for (const auto& r : pe.recipients)
        if (!plain_address(r)) {
            set_aside(name, "a recipient is not an address");
            return;
        }
    const std::string_view content = std::string_view(file).substr(parsed->message_offset);
    // SMTP's content rules hold here too: a bare CR or LF (smuggling material, which the outbound client would
    // pass on without dot-stuffing), an over-long line or an oversized message is refused as DATA refuses it.
    const auto flaws = smtp::content_flaws(content, cfg->limits.text_line_length, cfg->limits.message_size);
    if (flaws.any()) {
        set_aside(name, smtp::describe_flaws(flaws, cfg->limits.text_line_length, cfg->limits.message_size));
        return;
    }
    const std::string user = user_name(st.st_uid);
    // Local, like a message from loopback; every address is complete (no <Postmaster> without a domain).
    const spool::Envelope env =
        intake::make_envelope(pe, content, intake::ArrivalFacts{spool::make_queue_id(), std::time(nullptr), "127.0.0.1", ""});
    // Local users are trusted senders, as on a submission port: signed with their From: domain's keys; their From:
    // is not checked against an account (the Received: field names the user).
    intake::IntakeSettings settings;
    settings.log_label = "pickup file=" + name;
    settings.authserv_id = cfg->authserv_id();
    if (cfg->dkim.sign) settings.signing_keys = keys_();
    intake::MessageIntake intake(std::move(settings));
    // RFC 5321 4.4 asks for a Received: field from every host that takes a message in; here it names the user.
    const std::string received = fmt::format("Received: by {} (Ferry, from userid {} ({}))\r\n\tid {}; {}\r\n",
                                             cfg->hostname, st.st_uid, user, env.queue_id,
                                             util::rfc5322_date(env.arrival));
    // The whole file at once: the envelope, the content, the end of data.
    std::optional<intake::Outcome> outcome;
    if (const auto ec = intake.begin(spool_, env, received)) {
        intake::Outcome failed;
        failed.error = ec;
        outcome = failed;
    } else {
        intake.feed(content);
        outcome = intake.end_of_data();
        if (!outcome) outcome = intake.seal(env.arrival);
        if (!outcome) {
            std::promise<std::error_code> done;
            intake.submit(committer_, [&done](std::error_code result) { done.set_value(result); });
            outcome = intake.committed(done.get_future().get());
        }
    }
    switch (outcome->kind) {
    case intake::Outcome::Kind::refused:
        set_aside(name, outcome->reason);
        return;
    case intake::Outcome::Kind::failed:
    case intake::Outcome::Kind::out_of_space:
        spdlog::error("pickup file={} cannot be stored: {} (tried again at the next scan, within a minute)", name,
                      outcome->error.message());
        return;
    case intake::Outcome::Kind::committed:
        break;
    }
    // Committed: only now may the pickup file go (a crash before this line takes it again: at least once).
    if (::unlink(path.c_str()) != 0)
        spdlog::error("pickup file={} was queued as {} but cannot be removed: {}", name, env.queue_id,
                      std::strerror(errno));
    spdlog::info("queued id={} client=local uid={} user={} from=<{}> size={} nrcpt={} proto=pickup", env.queue_id,
                 st.st_uid, user, env.sender, content.size(), env.recipients.size());
    queue_.submit(env.queue_id);
}

}  // namespace ferry::server
