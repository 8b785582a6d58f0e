// The durable spool: spool/queue/<id> holds every message, from its first byte received to its removal after
// delivery. A message is committed (and only then acknowledged with 250) once its file, ending with the commit
// trailer (spool/trailer.hpp), is on disk. Commits of concurrent sessions share one barrier (group commit):
// with SyncMode::filesystem a whole batch costs one syncfs(2) call, however many messages it holds.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "config/config.hpp"
#include "spool/addendum.hpp"
#include "spool/envelope.hpp"

namespace ferry::spool {

class Spool {
public:
    // Creates root, root/queue and root/free (mode 0700).
    Spool(std::filesystem::path root, config::SyncMode sync);
    ~Spool();
    Spool(const Spool&) = delete;
    Spool& operator=(const Spool&) = delete;

    config::SyncMode sync_mode() const { return sync_; }
    int queue_dir_fd() const { return queue_fd_; }

    const std::filesystem::path& queue_dir() const { return queue_; }
    const std::filesystem::path& corrupt_dir() const { return corrupt_; }
    std::filesystem::path queue_file(const std::string& queue_id) const { return queue_ / queue_id; }

    // Start-up recovery. Reads every spool file: one without a trailer is a message that was never acknowledged
    // (RFC 5321 6.1 does not apply) and is deleted, as is one whose envelope names another queue id (an old
    // message whose file was reused, the reuse's truncation lost in the crash: it was delivered before it was
    // freed); one whose trailer does not match its bytes is moved to corrupt/ and logged. Returns the ids of
    // committed messages, oldest first.
    std::vector<std::string> recover();

    // Removes a message whose every recipient is final. Its file is emptied and kept in free/ for a later
    // message (up to kFreeFiles of them): creating and deleting an inode per message is most of the kernel's
    // work per message otherwise, and on ext4 without a journal every new inode is searched for past all those
    // deleted in the last minutes. Nothing here is synced: a message that reappears after a crash is delivered
    // again (at-least-once), never lost.
    void remove(const std::string& queue_id);

    // Free octets of the spool's filesystem for an unprivileged writer (statvfs f_bavail); nullopt when it
    // cannot be told. Asked at MAIL, so a message the disk cannot take is refused before it is sent.
    std::optional<std::uint64_t> free_octets() const;

    // Opens queue/<queue_id> for a new message, empty: a file from free/ renamed, else a new one. -1 with
    // `error` set when the filesystem refuses (full, out of inodes, read-only): an expected failure.
    int create_file(const std::string& queue_id, std::error_code& error);

    static constexpr std::size_t kFreeFiles = 1024;

private:
    std::filesystem::path root_, queue_, corrupt_, free_;
    config::SyncMode sync_;
    int queue_fd_ = -1;
    std::mutex free_mutex_;
    std::vector<std::string> free_names_;   // files in free/, reused last in first out
};

// The committed content of a spool file: the bytes before its trailer. nullopt if the file does not end with
// a trailer that matches its size (the CRC is checked by Spool::recover, not here).
std::optional<std::uint64_t> committed_length(int fd);

// A committed message as its file holds it: the envelope, where the content is, and the addendum (what goes in
// front of the content when it is delivered, and the folder for local copies).
struct StoredMessage {
    Envelope envelope;
    off_t content_offset = 0;
    std::size_t content_length = 0;
    Addendum addendum;
};

// Reads the envelope, the trailer and the addendum of a spool file; nullopt when any of them is missing or
// malformed (the CRC is checked by Spool::recover, not here).
std::optional<StoredMessage> read_stored_message(int fd);

// One message being received into queue/<id>. Writes are buffered and summed into the trailer's CRC as they
// are made; the destructor discards an uncommitted file.
class MessageWriter {
public:
    struct Opened {
        std::unique_ptr<MessageWriter> writer;   // null when `error` is set
        std::error_code error;
    };
    // Creates queue/<envelope.queue_id> and writes the envelope. A spool that cannot take the file (disk full,
    // out of inodes, read-only) is a value, not an exception: the caller answers 451/452 or tries again later.
    static Opened open(Spool& spool, const Envelope& envelope);
    ~MessageWriter();
    MessageWriter(const MessageWriter&) = delete;
    MessageWriter& operator=(const MessageWriter&) = delete;

    std::error_code append(std::string_view content);
    // The content appended so far (everything after the envelope), read back: a content filter sees the message
    // as stored. nullopt with the error kept when it cannot be read.
    std::optional<std::string> content();
    // Starts the file over with `envelope` and no content (a filter changed the envelope or the message): the
    // new content follows by append(). Only before seal().
    std::error_code restart(const Envelope& envelope);
    // What seal() writes after the content when the envelope says "Addendum: yes" (an empty one by default).
    void set_addendum(Addendum addendum) { addendum_ = std::move(addendum); }
    // Writes the addendum, if any, and the trailer after everything appended: the file is complete, and
    // committed once synced.
    std::error_code seal();
    void discard();

    const std::string& queue_id() const { return queue_id_; }
    int fd() const { return fd_; }
    void mark_committed() { committed_ = true; }

private:
    MessageWriter(const Envelope& envelope, std::filesystem::path path, int fd);
    std::error_code flush();

    std::string queue_id_;
    std::filesystem::path path_;
    int fd_ = -1;
    std::string buffer_;
    std::uint64_t length_ = 0;   // bytes appended so far, envelope included
    std::uint64_t content_start_ = 0;   // the envelope's length: where the content begins
    std::uint32_t crc_ = 0;
    bool with_addendum_ = false;
    Addendum addendum_;
    bool committed_ = false;
    std::error_code error_;
};

// The group-commit thread. submit() hands over a fully received message; `done` runs on the committer thread
// once the message is sealed and durable (or failed: then the writer removes the file).
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
