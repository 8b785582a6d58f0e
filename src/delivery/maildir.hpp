// Maildir delivery (https://cr.yp.to/proto/maildir.html, Dovecot-compatible names) in two steps, so a batch
// of copies shares its syncs: write into tmp/ (content durable before anyone sees it), then rename into new/.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <ctime>
#include <sys/types.h>

namespace ferry::delivery {

struct MaildirResult {
    bool ok = false;
    bool permanent = false;   // chasquid style: the agent classifies its failure where it happens
    std::string reason;
};

// A copy written into tmp/ and where it goes in new/.
struct MaildirFile {
    std::filesystem::path tmp, dst, new_dir;
};

// The folder for a local mailbox: mail_root/<domain>/<local>, with '/', '%' and a leading '.' of the local
// part %-encoded so no address can name a path outside its domain folder.
std::filesystem::path maildir_path(const std::filesystem::path& mail_root, std::string_view domain,
                                   std::string_view local);

// A Maildir++ folder of a mailbox, as Dovecot lays them out: "Junk" is maildir/.Junk/ (itself a Maildir);
// "" is the mailbox itself (the inbox). `folder` is a plain name, never a path.
std::filesystem::path maildir_folder(const std::filesystem::path& maildir, std::string_view folder);

// The file name of a message's copy in a mailbox: "<arrival>.<queue id>.<host>,S=<size>". The same for every
// attempt (a message has one copy per mailbox), so an attempt repeated after a crash, between the copy landing
// in new/ and that being recorded in the spool, finds the copy instead of making a second one.
std::string maildir_name(std::string_view queue_id, std::time_t arrival, std::string_view hostname,
                         std::size_t size);

// Whether the copy `name` is in the mailbox: in new/, or in cur/ where a mail reader moves it (as
// "<name>:2,<flags>", Dovecot may add ",W=<size>" before the colon). Reads cur/, so for recovery only.
bool maildir_has(const std::filesystem::path& maildir, std::string_view name);

// Writes `headers` and then `length` octets of content_fd at `offset` into maildir/tmp/<name>, creating the
// Maildir when needed; with sync_file the file is fsync()ed before returning.
MaildirResult write_maildir_file(const std::filesystem::path& maildir, std::string_view name,
                                  std::string_view headers, int content_fd, off_t offset, std::size_t length,
                                  bool sync_file, MaildirFile& out);

// Moves a written copy into new/ (call once its content is durable): readers see it from now on. A copy of the
// same name already there is the same message delivered before a crash: this one is dropped, and it is a success.
MaildirResult publish_maildir_file(const MaildirFile& file);

void discard_maildir_file(const MaildirFile& file);

}  // namespace ferry::delivery
