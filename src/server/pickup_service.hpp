// Takes the files `ferry sendmail` leaves in data_dir/pickup/ (spool/pickup.hpp) into the spool, like messages
// received over SMTP: each gets a queue id, a Received: field naming the local user (from the file's owner, not
// from anything the file says), a DKIM signature when its From: domain has keys (local users are trusted
// senders, as on a submission port), and is committed before its pickup file is removed. Files are taken at
// start (those left while the server was down), as they arrive (inotify), and by a sweep every minute (one that
// could not be stored waits for it). A message is taken at least once: a crash between the commit and the
// removal takes it again at the next start, as Postfix's pickup would.
//
// The folder is mode 1733 (anyone may add a file, nobody else may list or remove it) inside data_dir, which is
// made 0711 so other users can reach it and nothing more. Files that cannot be taken (malformed, too large, bad
// addresses) are moved to pickup/failed/ (0700) and logged.
#pragma once

#include <boost/asio.hpp>

#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "config/config.hpp"
#include "mailauth/signing.hpp"
#include "queue/delivery_queue.hpp"
#include "spool/spool.hpp"

namespace ferry::server {

class PickupService {
public:
    // `config` and `keys` give the current settings (replaced on reload); `work` runs the file handling, off the
    // I/O thread (it reads and syncs files).
    PickupService(boost::asio::io_context& io, boost::asio::any_io_executor work, spool::Spool& spool,
                  spool::Committer& committer, queue::DeliveryQueue& queue,
                  std::function<std::shared_ptr<const config::Config>()> config,
                  std::function<std::shared_ptr<const mailauth::SigningKeys>()> keys);
    ~PickupService();
    void start(const std::filesystem::path& data_dir);   // throws std::runtime_error
    void stop();

private:
    void watch();
    void schedule_scan();
    void sweep_later();
    void scan();                                // on strand_
    void take(const std::string& name);        // one file, on `work`
    void set_aside(const std::string& name, const std::string& why);

    boost::asio::io_context& io_;
    boost::asio::any_io_executor work_;
    boost::asio::strand<boost::asio::any_io_executor> strand_;   // scans on `work`, one at a time
    spool::Spool& spool_;
    spool::Committer& committer_;
    queue::DeliveryQueue& queue_;
    std::function<std::shared_ptr<const config::Config>()> config_;
    std::function<std::shared_ptr<const mailauth::SigningKeys>()> keys_;
    std::filesystem::path dir_;
    int inotify_fd_ = -1;
    std::unique_ptr<boost::asio::posix::stream_descriptor> events_;
    char event_buffer_[4096];
    std::unique_ptr<boost::asio::steady_timer> sweep_;
    std::atomic<bool> scan_queued_{false};      // a scan is queued on strand_ and has not started
    std::atomic<bool> stopping_{false};
};

}  // namespace ferry::server
