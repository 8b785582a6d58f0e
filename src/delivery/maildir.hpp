// Maildir delivery (https://cr.yp.to/proto/maildir.html, Dovecot-compatible names): write into tmp/,
// fsync, rename into new/, fsync new/. Only then is the copy delivered.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <sys/types.h>

namespace ferry::delivery {

struct DeliveryResult {
    bool ok = false;
    bool permanent = false;   // chasquid style: the agent classifies its failure where it happens
    std::string reason;
};

// The folder for a local mailbox: mail_root/<domain>/<local>, with '/', '%' and a leading '.' of the local
// part %-encoded so no address can name a path outside its domain folder.
std::filesystem::path maildir_path(const std::filesystem::path& mail_root, std::string_view domain,
                                   std::string_view local);

// Delivers `headers` followed by `length` octets of content read from content_fd at `offset`.
DeliveryResult deliver_to_maildir(const std::filesystem::path& maildir, std::string_view hostname,
                                  std::string_view headers, int content_fd, off_t offset, std::size_t length);

}  // namespace ferry::delivery
