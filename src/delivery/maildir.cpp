#include "delivery/maildir.hpp"

#include <fcntl.h>
#include <stdio.h>   // renameat2
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fmt/format.h>

#include "util/fs.hpp"

namespace ferry::delivery {

namespace fs = std::filesystem;

namespace {

std::string encode_component(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c == '/' || c == '%' || c == 0 || (i == 0 && c == '.')) out += fmt::format("%{:02X}", c);
        else out.push_back(static_cast<char>(c));
    }
    return out.empty() ? "%" : out;
}

// Maildir's "host" part may not contain '/' or ':' (Dovecot encodes them as \057 and \072).
std::string safe_host(std::string_view host) {
    std::string out;
    for (char c : host) {
        if (c == '/') out += "\\057";
        else if (c == ':') out += "\\072";
        else out.push_back(c);
    }
    return out;
}

bool ensure_maildir(const fs::path& dir, std::string& why) {
    // tmp/ last: a delivery that finds tmp/ writes there at once and then renames into new/, so new/ (and
    // cur/) must already exist when tmp/ appears (200 first deliveries at once saw that window).
    for (const char* sub : {"new", "cur", "tmp"}) {
        std::error_code ec;
        fs::create_directories(dir / sub, ec);
        if (ec) {
            why = fmt::format("cannot create {}: {}", (dir / sub).string(), ec.message());
            return false;
        }
    }
    // A Maildir++ folder (".Junk" inside a mailbox): its mailbox must be a Maildir too, and Dovecot marks
    // folders with an empty "maildirfolder" file.
    if (dir.filename().string().starts_with(".")) {
        if (!ensure_maildir(dir.parent_path(), why)) return false;
        const fs::path marker = dir / "maildirfolder";
        const int fd = ::open(marker.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0) {
            why = fmt::format("cannot create {}: {}", marker.string(), std::strerror(errno));
            return false;
        }
        ::close(fd);
    }
    return true;
}

// Transient unless the failure can only be fixed by an operator changing something permanent.
MaildirResult fail(std::string reason) { return MaildirResult{false, false, std::move(reason)}; }

}  // namespace

std::string maildir_name(std::string_view queue_id, std::time_t arrival, std::string_view hostname,
                         std::size_t size) {
    return fmt::format("{}.{}.{},S={}", static_cast<long long>(arrival), queue_id, safe_host(hostname), size);
}

bool maildir_has(const fs::path& maildir, std::string_view name) {
    struct stat st {};
    if (::stat((maildir / "new" / std::string(name)).c_str(), &st) == 0) return true;
    // cur/ names keep everything before ",S=" (the unique part); what follows may have been rewritten.
    const std::string_view unique = name.substr(0, name.find(",S="));
    std::error_code ec;
    for (fs::directory_iterator it(maildir / "cur", ec), end; !ec && it != end; it.increment(ec)) {
        const std::string file = it->path().filename().string();
        if (file.size() > unique.size() && file.compare(0, unique.size(), unique) == 0 &&
            (file[unique.size()] == ',' || file[unique.size()] == ':'))
            return true;
    }
    return false;
}

fs::path maildir_folder(const fs::path& maildir, std::string_view folder) {
    return folder.empty() ? maildir : maildir / ("." + std::string(folder));
}

fs::path maildir_path(const fs::path& mail_root, std::string_view domain, std::string_view local) {
    return mail_root / encode_component(domain) / encode_component(local);
}

MaildirResult write_maildir_file(const fs::path& maildir, std::string_view name, std::string_view headers,
                                  int content_fd, off_t offset, std::size_t length, bool sync_file, MaildirFile& out) {
    out.tmp = maildir / "tmp" / std::string(name);
    out.dst = maildir / "new" / std::string(name);
    out.new_dir = maildir / "new";

    // The Maildir usually exists: try first, create on ENOENT (saves three stat calls per copy). O_TRUNC, not
    // O_EXCL: a file of this name in tmp/ is this very copy, left half-written by an attempt cut short.
    int fd = ::open(out.tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 && errno == ENOENT) {
        std::string why;
        if (!ensure_maildir(maildir, why)) return fail(why);
        fd = ::open(out.tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    }
    if (fd < 0) return fail(fmt::format("cannot create {}: {}", out.tmp.string(), std::strerror(errno)));
    auto failed = [&](const char* step) {
        const std::string reason = fmt::format("{} {}: {}", step, out.tmp.string(), std::strerror(errno));
        ::close(fd);
        ::unlink(out.tmp.c_str());
        return fail(reason);
    };
    if (util::write_all(fd, headers)) return failed("write");
    // The content goes kernel to kernel: no copy of the body through user space.
    loff_t in_off = offset;
    std::size_t left = length;
    bool in_kernel = true;
    std::string buffer;
    while (left > 0) {
        ssize_t n;
        if (in_kernel) {
            n = ::copy_file_range(content_fd, &in_off, fd, nullptr, left, 0);
            // Spool and mailboxes on different filesystems (EXDEV), or a filesystem that cannot: copy by hand.
            if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == EOPNOTSUPP || errno == ENOSYS)) {
                in_kernel = false;
                continue;
            }
        } else {
            if (buffer.empty()) buffer.resize(64 * 1024);
            n = ::pread(content_fd, buffer.data(), std::min(left, buffer.size()), in_off);
            if (n > 0) {
                if (util::write_all(fd, std::string_view(buffer.data(), static_cast<std::size_t>(n))))
                    return failed("write");
                in_off += n;
            }
        }
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (n == 0) errno = EIO;   // spool file shorter than its envelope says
            return failed("copy");
        }
        left -= static_cast<std::size_t>(n);
    }
    if (sync_file && ::fsync(fd) != 0) return failed("fsync");
    if (::close(fd) != 0) {
        ::unlink(out.tmp.c_str());
        return fail(fmt::format("close {}: {}", out.tmp.string(), std::strerror(errno)));
    }
    return MaildirResult{true, false, {}};
}

MaildirResult publish_maildir_file(const MaildirFile& file) {
    auto publish = [&] {
        return ::renameat2(AT_FDCWD, file.tmp.c_str(), AT_FDCWD, file.dst.c_str(), RENAME_NOREPLACE) == 0;
    };
    bool published = publish();
    // A mailbox with tmp/ but no new/ (made by hand, or new/ removed): make new/ and try once more rather
    // than defer the message until an operator notices.
    if (!published && errno == ENOENT && ::access(file.tmp.c_str(), F_OK) == 0) {
        std::error_code ec;
        fs::create_directories(file.new_dir, ec);
        published = publish();
    }
    if (!published) {
        if (errno == EEXIST) {   // delivered before a crash kept that from being recorded
            ::unlink(file.tmp.c_str());
            return MaildirResult{true, false, {}};
        }
        const std::string reason = fmt::format("rename {}: {}", file.dst.string(), std::strerror(errno));
        ::unlink(file.tmp.c_str());
        return fail(reason);
    }
    return MaildirResult{true, false, {}};
}

void discard_maildir_file(const MaildirFile& file) { ::unlink(file.tmp.c_str()); }

}  // namespace ferry::delivery
