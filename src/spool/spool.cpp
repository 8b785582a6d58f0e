#include "spool/spool.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

#include "spool/queue_id.hpp"
#include "util/fs.hpp"

namespace ferry::spool {

namespace fs = std::filesystem;

// Content is handed to the kernel in blocks of this size: few syscalls, bounded memory per session.
constexpr std::size_t kWriteBufferSize = 64 * 1024;

Spool::Spool(fs::path root, config::SyncMode sync)
    : root_(std::move(root)), incoming_(root_ / "incoming"), queue_(root_ / "queue"), sync_(sync) {
    util::make_dirs(incoming_);
    util::make_dirs(queue_);
    queue_fd_ = ::open(queue_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (queue_fd_ < 0) throw std::system_error(util::last_error(), "cannot open " + queue_.string());
}

Spool::~Spool() {
    if (queue_fd_ >= 0) ::close(queue_fd_);
}

std::vector<std::string> Spool::recover() {
    for (const auto& entry : fs::directory_iterator(incoming_)) {
        std::error_code ec;
        fs::remove(entry.path(), ec);
    }
    util::fsync_dir(incoming_);
    std::vector<std::string> ids;
    for (const auto& entry : fs::directory_iterator(queue_)) {
        const std::string name = entry.path().filename().string();
        if (is_queue_id(name)) ids.push_back(name);
    }
    std::sort(ids.begin(), ids.end());   // queue ids sort by arrival time
    return ids;
}

void Spool::remove(const std::string& queue_id) {
    std::error_code ec;
    fs::remove(queue_ / queue_id, ec);
    fs::remove(queue_ / (queue_id + ".done"), ec);
}

MessageWriter::MessageWriter(Spool& spool, const Envelope& envelope)
    : queue_id_(envelope.queue_id),
      temp_path_(spool.incoming_dir() / envelope.queue_id),
      final_path_(spool.queue_file(envelope.queue_id)) {
    fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd_ < 0) throw std::system_error(util::last_error(), "cannot create " + temp_path_.string());
    buffer_ = serialize_envelope(envelope);
    buffer_.reserve(kWriteBufferSize);
}

MessageWriter::~MessageWriter() {
    if (!committed_) discard();
    else if (fd_ >= 0) ::close(fd_);
}

std::error_code MessageWriter::append(std::string_view content) {
    if (error_) return error_;
    if (buffer_.size() + content.size() > kWriteBufferSize) {
        if (auto ec = flush()) return ec;
        if (content.size() >= kWriteBufferSize) return error_ = util::write_all(fd_, content);
    }
    buffer_.append(content);
    return {};
}

std::error_code MessageWriter::flush() {
    if (error_) return error_;
    if (!buffer_.empty()) {
        error_ = util::write_all(fd_, buffer_);
        buffer_.clear();
    }
    return error_;
}

void MessageWriter::discard() {
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
        ::unlink(temp_path_.c_str());
    }
}

Committer::Committer(Spool& spool) : spool_(spool), thread_([this] { run(); }) {}

Committer::~Committer() { stop(); }

void Committer::submit(MessageWriter& writer, Callback done) {
    {
        std::lock_guard lock(mutex_);
        pending_.push_back(Item{&writer, std::move(done)});
    }
    wake_.notify_one();
}

void Committer::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_one();
    if (thread_.joinable()) thread_.join();
}

void Committer::run() {
    std::vector<Item> batch;
    std::vector<std::error_code> results;
    for (;;) {
        {
            std::unique_lock lock(mutex_);
            wake_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
            if (pending_.empty()) return;   // stopping, nothing left
            batch.assign(std::make_move_iterator(pending_.begin()), std::make_move_iterator(pending_.end()));
            pending_.clear();
        }
        // Every file of the batch first reaches the disk, then its name moves into queue/, then the renames
        // reach the disk: two barriers for the whole batch. Never rename before the content is durable, or a
        // crash could leave a truncated message in queue/ that recovery would deliver.
        const bool per_file = spool_.sync_mode() == config::SyncMode::files;
        results.assign(batch.size(), std::error_code{});
        for (std::size_t i = 0; i < batch.size(); ++i) {
            MessageWriter& w = *batch[i].writer;
            results[i] = w.flush();
            if (!results[i] && per_file && ::fdatasync(w.fd()) != 0) results[i] = util::last_error();
        }
        if (!per_file) {
            if (const auto ec = util::sync_filesystem(spool_.queue_dir_fd()))
                for (auto& r : results)
                    if (!r) r = ec;
        }
        bool any_renamed = false;
        for (std::size_t i = 0; i < batch.size(); ++i) {
            MessageWriter& w = *batch[i].writer;
            if (results[i]) continue;
            if (::rename(w.temp_path().c_str(), w.final_path().c_str()) != 0) results[i] = util::last_error();
            else any_renamed = true;
        }
        std::error_code dir_ec;
        if (any_renamed)
            dir_ec = per_file ? util::fsync_dir(spool_.queue_dir()) : util::sync_filesystem(spool_.queue_dir_fd());
        for (std::size_t i = 0; i < batch.size(); ++i) {
            MessageWriter& w = *batch[i].writer;
            std::error_code ec = results[i] ? results[i] : dir_ec;
            if (!ec) {
                w.mark_committed();
            } else if (!results[i]) {
                // Renamed but the directory sync failed: take it back so it is neither acked nor delivered.
                ::unlink(w.final_path().c_str());
            }
            batch[i].done(ec);
        }
        batch.clear();
    }
}

}  // namespace ferry::spool
