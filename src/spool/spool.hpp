// The durable spool: spool/incoming/ holds messages being received, spool/queue/ holds committed ones.
// A message is committed (and only then acknowledged with 250) after its content is on disk, its file renamed
// into queue/, and that rename on disk too. Commits of concurrent sessions share the syncs (group commit):
// with SyncMode::filesystem a whole batch costs two syncfs(2) calls, however many messages it holds.
#pragma once

#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "config/config.hpp"
#include "spool/envelope.hpp"

namespace ferry::spool {

class Spool {
public:
    // Creates root/incoming and root/queue (mode 0700).
    Spool(std::filesystem::path root, config::SyncMode sync);
    ~Spool();
    Spool(const Spool&) = delete;
    Spool& operator=(const Spool&) = delete;

    config::SyncMode sync_mode() const { return sync_; }
    int queue_dir_fd() const { return queue_fd_; }

    const std::filesystem::path& incoming_dir() const { return incoming_; }
    const std::filesystem::path& queue_dir() const { return queue_; }
    std::filesystem::path queue_file(const std::string& queue_id) const { return queue_ / queue_id; }

    // Start-up recovery: deletes partial files in incoming/ (never acknowledged, RFC 5321 6.1 does not apply)
    // and returns the ids of committed messages in queue/, oldest first.
    std::vector<std::string> recover();

    // Removes a message whose every recipient is final. The unlink need not be synced: a message that
    // reappears after a crash is delivered again (at-least-once), never lost.
    void remove(const std::string& queue_id);

private:
    std::filesystem::path root_, incoming_, queue_;
    config::SyncMode sync_;
    int queue_fd_ = -1;
};

// One message being received into incoming/<id>. Writes are buffered; the destructor discards an
// uncommitted file.
class MessageWriter {
public:
    MessageWriter(Spool& spool, const Envelope& envelope);   // throws std::system_error
    ~MessageWriter();
    MessageWriter(const MessageWriter&) = delete;
    MessageWriter& operator=(const MessageWriter&) = delete;

    std::error_code append(std::string_view content);
    std::error_code flush();
    void discard();

    const std::string& queue_id() const { return queue_id_; }
    int fd() const { return fd_; }
    const std::filesystem::path& temp_path() const { return temp_path_; }
    const std::filesystem::path& final_path() const { return final_path_; }
    void mark_committed() { committed_ = true; }

private:
    std::string queue_id_;
    std::filesystem::path temp_path_, final_path_;
    int fd_ = -1;
    std::string buffer_;
    bool committed_ = false;
    std::error_code error_;
};

// The group-commit thread. submit() hands over a fully written message; `done` runs on the committer thread
// once the message is durable in queue/ (or failed: then the file is removed).
class Committer {
public:
    using Callback = std::function<void(std::error_code)>;

    explicit Committer(Spool& spool);
    ~Committer();
    void submit(MessageWriter& writer, Callback done);
    void stop();   // finishes what was submitted, then joins

private:
    struct Item {
        MessageWriter* writer;
        Callback done;
    };
    void run();

    Spool& spool_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<Item> pending_;
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace ferry::spool
