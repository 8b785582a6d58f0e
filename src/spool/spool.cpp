#include "spool/spool.hpp"

#include <fcntl.h>
#include <stdio.h>   // renameat2
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "spool/envelope.hpp"
#include "spool/queue_id.hpp"
#include "spool/trailer.hpp"
#include "util/fs.hpp"

namespace ferry::spool {

namespace fs = std::filesystem;

// Content is handed to the kernel in blocks of this size: few syscalls, bounded memory per session.
constexpr std::size_t kWriteBufferSize = 64 * 1024;

namespace {

enum class FileState { committed, partial, stale, corrupt };

// The trailer at the end of the file, if it is one and states the file's size.
std::optional<Trailer> read_trailer(int fd) {
    struct stat st {};
    if (::fstat(fd, &st) != 0 || st.st_size < static_cast<off_t>(kTrailerSize)) return std::nullopt;
    const auto size = static_cast<std::uint64_t>(st.st_size);
    std::string tail(kTrailerSize, '\0');
    const off_t at = static_cast<off_t>(size - kTrailerSize);
    if (::pread(fd, tail.data(), tail.size(), at) != static_cast<ssize_t>(tail.size())) return std::nullopt;
    const auto trailer = parse_trailer(tail);
    if (!trailer || trailer->length != size - kTrailerSize) return std::nullopt;
    return trailer;
}

// What start-up finds in a spool file: sealed and intact, never sealed (the crash came first), sealed but
// holding an earlier message (a reused file whose truncation the crash undid), or sealed but not matching its
// bytes.
FileState check_file(int fd, const std::string& name) {
    const auto trailer = read_trailer(fd);
    if (!trailer) return FileState::partial;
    std::uint32_t crc = 0;
    std::string head;   // the first block, which holds the envelope
    std::string buf(1 << 20, '\0');
    for (std::uint64_t off = 0; off < trailer->length;) {
        const std::size_t want =
            static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), trailer->length - off));
        const ssize_t n = ::pread(fd, buf.data(), want, static_cast<off_t>(off));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return FileState::corrupt;
        const std::string_view got(buf.data(), static_cast<std::size_t>(n));
        if (off == 0) head = got;
        crc = crc32_update(crc, got);
        off += static_cast<std::uint64_t>(n);
    }
    if (trailer->crc != crc) return FileState::corrupt;
    const auto envelope = parse_envelope(head);
    if (!envelope) return FileState::corrupt;
    return envelope->envelope.queue_id == name ? FileState::committed : FileState::stale;
}

}  // namespace

std::optional<std::uint64_t> committed_length(int fd) {
    const auto trailer = read_trailer(fd);
    if (!trailer) return std::nullopt;
    return trailer->length;
}

namespace {

// The spool file's head, read until the envelope's terminating empty line.
std::optional<ParsedEnvelope> read_envelope(int fd) {
    std::string head;
    char buf[16384];
    off_t off = 0;
    for (;;) {
        const ssize_t n = ::pread(fd, buf, sizeof buf, off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return std::nullopt;
        head.append(buf, static_cast<std::size_t>(n));
        off += n;
        if (head.find("\n\n") != std::string::npos) return parse_envelope(head);
    }
}

bool pread_all(int fd, std::string& out, std::uint64_t at) {
    std::size_t done = 0;
    while (done < out.size()) {
        const ssize_t n = ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(at + done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        done += static_cast<std::size_t>(n);
    }
    return true;
}

// Far more than the header fields Ferry adds (one Authentication-Results, a few DKIM-Signatures).
constexpr std::uint64_t kMaxAddendum = 1 << 20;

}  // namespace

std::optional<StoredMessage> read_stored_message(int fd) {
    auto parsed = read_envelope(fd);
    const auto length = committed_length(fd);
    if (!parsed || !length || *length < parsed->content_offset) return std::nullopt;
    StoredMessage m;
    m.envelope = std::move(parsed->envelope);
    m.content_offset = static_cast<off_t>(parsed->content_offset);
    std::uint64_t end = *length;
    if (m.envelope.addendum) {
        if (end - parsed->content_offset < kAddendumFooterSize) return std::nullopt;
        std::string footer(kAddendumFooterSize, '\0');
        if (!pread_all(fd, footer, end - kAddendumFooterSize)) return std::nullopt;
        const auto size = parse_addendum_footer(footer);
        if (!size || *size > end - parsed->content_offset || *size > kMaxAddendum) return std::nullopt;
        std::string block(static_cast<std::size_t>(*size), '\0');
        if (!pread_all(fd, block, end - *size)) return std::nullopt;
        auto addendum = parse_addendum(block);
        if (!addendum) return std::nullopt;
        m.addendum = std::move(*addendum);
        end -= *size;
    }
    m.content_length = static_cast<std::size_t>(end - parsed->content_offset);
    return m;
}

Spool::Spool(fs::path root, config::SyncMode sync)
    : root_(std::move(root)),
      queue_(root_ / "queue"),
      corrupt_(root_ / "corrupt"),
      free_(root_ / "free"),
      sync_(sync) {
    util::make_dirs(root_);   // 0700 itself: data_dir lets other users through to pickup/ (server/pickup_service)
    util::make_dirs(queue_);
    util::make_dirs(free_);
    queue_fd_ = ::open(queue_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (queue_fd_ < 0) throw std::system_error(util::last_error(), "cannot open " + queue_.string());
    for (const auto& entry : fs::directory_iterator(free_)) {
        std::string name = entry.path().filename().string();
        std::error_code ec;
        if (is_queue_id(name) && free_names_.size() < kFreeFiles) free_names_.push_back(std::move(name));
        else fs::remove(entry.path(), ec);
    }
}

Spool::~Spool() {
    if (queue_fd_ >= 0) ::close(queue_fd_);
}

std::vector<std::string> Spool::recover() {
    std::vector<std::string> ids;
    bool removed = false;
    for (const auto& entry : fs::directory_iterator(queue_)) {
        const std::string name = entry.path().filename().string();
        if (!is_queue_id(name)) continue;   // .done records go with their message
        const int fd = ::open(entry.path().c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            spdlog::error("recovery: cannot open {}: {}", entry.path().string(), std::strerror(errno));
            continue;
        }
        const FileState state = check_file(fd, name);
        ::close(fd);
        switch (state) {
        case FileState::committed:
            ids.push_back(name);
            break;
        case FileState::partial:
            spdlog::info("recovery: discarded id={}: never committed (the 250 was not sent)", name);
            remove(name);
            removed = true;
            break;
        case FileState::stale:
            spdlog::info("recovery: discarded id={}: a reused file still holding a delivered message", name);
            remove(name);
            removed = true;
            break;
        case FileState::corrupt: {
            util::make_dirs(corrupt_);
            std::error_code ec;
            fs::rename(entry.path(), corrupt_ / name, ec);
            spdlog::error("recovery: id={} does not match its commit trailer (data lost by the filesystem?); "
                          "moved to {}{}",
                          name, (corrupt_ / name).string(), ec ? ": " + ec.message() : "");
            removed = true;
            break;
        }
        }
    }
    if (removed) util::fsync_dir(queue_);
    std::sort(ids.begin(), ids.end());   // queue ids sort by arrival time
    return ids;
}

void Spool::remove(const std::string& queue_id) {
    std::error_code ec;
    fs::remove(queue_ / (queue_id + ".done"), ec);
    const fs::path file = queue_ / queue_id;
    bool keep;
    {
        std::lock_guard lock(free_mutex_);
        keep = free_names_.size() < kFreeFiles;
    }
    // Emptied first, so free/ never holds message content, nor its disk space.
    if (keep && ::truncate(file.c_str(), 0) == 0 && ::rename(file.c_str(), (free_ / queue_id).c_str()) == 0) {
        std::lock_guard lock(free_mutex_);
        free_names_.push_back(queue_id);
        return;
    }
    fs::remove(file, ec);
}

std::optional<std::uint64_t> Spool::free_octets() const {
    struct statvfs st {};
    if (::fstatvfs(queue_fd_, &st) != 0) return std::nullopt;
    return static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize;
}

int Spool::create_file(const std::string& queue_id, std::error_code& error) {
    const fs::path path = queue_ / queue_id;
    for (;;) {
        std::string name;
        {
            std::lock_guard lock(free_mutex_);
            if (free_names_.empty()) break;
            name = std::move(free_names_.back());
            free_names_.pop_back();
        }
        const fs::path old = free_ / name;
        const int fd = ::open(old.c_str(), O_RDWR | O_TRUNC | O_CLOEXEC);
        if (fd >= 0 && ::renameat2(AT_FDCWD, old.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE) == 0) return fd;
        if (fd >= 0) ::close(fd);
        ::unlink(old.c_str());   // unusable: drop it and try the next one
    }
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) error = util::last_error();
    return fd;
}

MessageWriter::Opened MessageWriter::open(Spool& spool, const Envelope& envelope) {
    Opened opened;
    const int fd = spool.create_file(envelope.queue_id, opened.error);
    if (fd < 0) return opened;
    auto writer = std::unique_ptr<MessageWriter>(new MessageWriter(envelope, spool.queue_file(envelope.queue_id), fd));
    // A large envelope (thousands of recipients) is written through at once, and may find the disk full.
    if (const auto ec = writer->append(serialize_envelope(envelope))) {
        opened.error = ec;
        return opened;   // the writer's destructor removes the file
    }
    writer->content_start_ = writer->length_;
    opened.writer = std::move(writer);
    return opened;
}

MessageWriter::MessageWriter(const Envelope& envelope, fs::path path, int fd)
    : queue_id_(envelope.queue_id), path_(std::move(path)), fd_(fd), with_addendum_(envelope.addendum) {
    buffer_.reserve(kWriteBufferSize);
}

MessageWriter::~MessageWriter() {
    if (!committed_) discard();
    else if (fd_ >= 0) ::close(fd_);
}

std::error_code MessageWriter::append(std::string_view content) {
    if (error_) return error_;
    crc_ = crc32_update(crc_, content);
    length_ += content.size();
    if (buffer_.size() + content.size() > kWriteBufferSize) {
        if (auto ec = flush()) return ec;
        if (content.size() >= kWriteBufferSize) return error_ = util::write_all(fd_, content);
    }
    buffer_.append(content);
    return {};
}

std::optional<std::string> MessageWriter::content() {
    if (flush()) return std::nullopt;
    std::string out(length_ - content_start_, '\0');
    std::size_t done = 0;
    while (done < out.size()) {
        const ssize_t n = ::pread(fd_, out.data() + done, out.size() - done, static_cast<off_t>(content_start_ + done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            error_ = std::error_code(n < 0 ? errno : EIO, std::system_category());
            return std::nullopt;
        }
        done += static_cast<std::size_t>(n);
    }
    return out;
}

std::error_code MessageWriter::restart(const Envelope& envelope) {
    if (error_) return error_;
    buffer_.clear();
    if (::ftruncate(fd_, 0) != 0 || ::lseek(fd_, 0, SEEK_SET) != 0)
        return error_ = std::error_code(errno, std::system_category());
    crc_ = 0;
    length_ = 0;
    with_addendum_ = envelope.addendum;
    if (auto ec = append(serialize_envelope(envelope))) return ec;
    content_start_ = length_;
    return {};
}

std::error_code MessageWriter::seal() {
    if (error_) return error_;
    if (with_addendum_) {
        if (auto ec = append(serialize_addendum(addendum_))) return ec;
        with_addendum_ = false;
    }
    buffer_ += make_trailer(Trailer{length_, crc_});
    return flush();
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
        ::unlink(path_.c_str());
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
        // Each file is sealed with its trailer, then one barrier makes the whole batch durable: a syncfs of the
        // spool's filesystem, or an fdatasync per file and one fsync of queue/ for the new names. Nothing is
        // acknowledged before the barrier returns.
        const bool per_file = spool_.sync_mode() == config::SyncMode::files;
        results.assign(batch.size(), std::error_code{});
        bool any_sealed = false;
        for (std::size_t i = 0; i < batch.size(); ++i) {
            MessageWriter& w = *batch[i].writer;
            results[i] = w.seal();
            if (!results[i] && per_file && ::fdatasync(w.fd()) != 0) results[i] = util::last_error();
            any_sealed = any_sealed || !results[i];
        }
        std::error_code sync_ec;
        if (any_sealed)
            sync_ec = per_file ? util::fsync_dir(spool_.queue_dir()) : util::sync_filesystem(spool_.queue_dir_fd());
        for (std::size_t i = 0; i < batch.size(); ++i) {
            // A failed message stays uncommitted: its writer removes the file, and the client gets a 451.
            const std::error_code ec = results[i] ? results[i] : sync_ec;
            if (!ec) batch[i].writer->mark_committed();
            batch[i].done(ec);
        }
        batch.clear();
    }
}

}  // namespace ferry::spool
