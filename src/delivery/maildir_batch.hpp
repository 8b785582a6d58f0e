// A batch of Maildir copies sharing their syncs (delivery/maildir has the single steps). The protocol, for every
// copy of the batch:
//   1. add(): the copy is written into tmp/ of its Maildir (fsync()ed per file with Sync::files);
//   2. commit(): the content is made durable before any copy becomes visible (one syncfs per filesystem holding
//      the copies, or the per-file fsyncs of step 1);
//   3. each copy is renamed into new/ with RENAME_NOREPLACE: readers see it from now on;
//   4. the renames are made durable (syncfs again, or an fsync of each new/ directory);
// and only then may the caller record the copies as delivered. A crash between 3 and the caller's record repeats
// the attempt with the same copy names (maildir_name): a copy still in new/ makes the rename fail with EEXIST,
// which is success (one copy, not two); a copy a reader has moved to cur/ is found by maildir_has() when the
// copy is added with `look_for_earlier` (messages recovered at start-up), and nothing is written.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "delivery/maildir.hpp"

namespace ferry::delivery {

struct MaildirCopy {
    std::filesystem::path maildir;   // the mailbox or Maildir++ folder
    std::string name;                // maildir_name(): the same on every attempt
    std::string headers;             // written before the content (Return-Path, Delivered-To, the addendum)
    int content_fd = -1;             // the spool file; not owned
    off_t offset = 0;
    std::size_t length = 0;
    bool look_for_earlier = false;   // a crash may have come after this copy landed: look in new/ and cur/ first
};

struct MaildirCopyResult {
    bool ok = false;
    bool permanent = false;
    std::string reason;              // when not ok
    bool landed_before = false;      // found in the mailbox (written before a crash); nothing was written
};

class MaildirBatch {
public:
    enum class Sync { filesystem, files };

    explicit MaildirBatch(Sync sync) : sync_(sync) {}
    ~MaildirBatch();   // copies added but never committed are removed from tmp/
    MaildirBatch(const MaildirBatch&) = delete;
    MaildirBatch& operator=(const MaildirBatch&) = delete;

    // Step 1 for one copy; returns its index in commit()'s results. A copy that cannot be written fails now
    // (its result says why) without affecting the others.
    std::size_t add(const MaildirCopy& copy);
    // The result of a copy so far (after add(): written or failed; after commit(): final).
    const MaildirCopyResult& result(std::size_t index) const { return copies_[index].result; }
    std::size_t size() const { return copies_.size(); }

    // Steps 2 to 4. Returns one result per add(), in order. Call once.
    std::vector<MaildirCopyResult> commit();

    // A failed barrier after the renames (step 4): the copies are in new/ and may be read already, so they are
    // delivered; only a crash now could lose a rename and repeat it. For the caller's log.
    std::error_code publish_sync_error() const { return publish_sync_error_; }

private:
    struct Entry {
        MaildirFile file;
        MaildirCopyResult result;
        bool written = false;   // in tmp/, not published yet
    };

    Sync sync_;
    std::vector<Entry> copies_;
    std::vector<std::filesystem::path> filesystems_;   // a directory on each filesystem holding a written copy
    std::vector<dev_t> devices_;                       // their device numbers
    std::error_code publish_sync_error_;
};

}  // namespace ferry::delivery
