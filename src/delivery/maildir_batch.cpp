#include "delivery/maildir_batch.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>

#include "util/fs.hpp"

namespace ferry::delivery {

namespace fs = std::filesystem;

namespace {

// syncfs(2) of the filesystem holding `dir`.
std::error_code sync_filesystem_of(const fs::path& dir) {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return util::last_error();
    const std::error_code ec = util::sync_filesystem(fd);
    ::close(fd);
    return ec;
}

}  // namespace

MaildirBatch::~MaildirBatch() {
    for (const auto& c : copies_)
        if (c.written) discard_maildir_file(c.file);
}

std::size_t MaildirBatch::add(const MaildirCopy& copy) {
    Entry entry;
    if (copy.look_for_earlier && maildir_has(copy.maildir, copy.name)) {
        // Landed before the crash that kept it from being recorded: delivered once, not twice.
        entry.result = MaildirCopyResult{true, false, {}, true};
        copies_.push_back(std::move(entry));
        return copies_.size() - 1;
    }
    const MaildirResult r = write_maildir_file(copy.maildir, copy.name, copy.headers, copy.content_fd, copy.offset,
                                               copy.length, sync_ == Sync::files, entry.file);
    entry.result = MaildirCopyResult{r.ok, r.permanent, r.reason, false};
    entry.written = r.ok;
    if (r.ok && sync_ == Sync::filesystem) {
        // The barrier of step 2 must cover the filesystem the copy is on, which need not be the spool's (mail_root
        // may be another mount, and so may a mailbox inside it).
        struct stat st {};
        const fs::path tmp_dir = entry.file.tmp.parent_path();
        if (::stat(tmp_dir.c_str(), &st) == 0 &&
            std::find(devices_.begin(), devices_.end(), st.st_dev) == devices_.end()) {
            devices_.push_back(st.st_dev);
            filesystems_.push_back(tmp_dir);
        }
    }
    copies_.push_back(std::move(entry));
    return copies_.size() - 1;
}

std::vector<MaildirCopyResult> MaildirBatch::commit() {
    auto fail_written = [&](const std::string& why) {
        for (auto& c : copies_)
            if (c.written) {
                discard_maildir_file(c.file);
                c.written = false;
                c.result = MaildirCopyResult{false, false, why, false};
            }
    };
    // 2. Content durable before any copy becomes visible (with Sync::files each copy was fsync()ed by add()).
    if (sync_ == Sync::filesystem)
        for (const auto& dir : filesystems_)
            if (const auto ec = sync_filesystem_of(dir)) {
                fail_written("syncfs: " + ec.message());
                break;
            }
    // 3. Into new/.
    std::set<fs::path> new_dirs;
    for (auto& c : copies_) {
        if (!c.written) continue;
        c.written = false;
        const MaildirResult r = publish_maildir_file(c.file);
        c.result = MaildirCopyResult{r.ok, r.permanent, r.reason, false};
        if (r.ok) new_dirs.insert(c.file.new_dir);
    }
    // 4. The renames durable.
    if (!new_dirs.empty()) {
        if (sync_ == Sync::files) {
            for (const auto& d : new_dirs)
                if (auto e = util::fsync_dir(d)) publish_sync_error_ = e;
        } else {
            for (const auto& dir : filesystems_)
                if (auto e = sync_filesystem_of(dir)) publish_sync_error_ = e;
        }
    }
    std::vector<MaildirCopyResult> out;
    out.reserve(copies_.size());
    for (const auto& c : copies_) out.push_back(c.result);
    return out;
}

}  // namespace ferry::delivery
