#include "delivery/maildir.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
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
    for (const char* sub : {"tmp", "new", "cur"}) {
        std::error_code ec;
        fs::create_directories(dir / sub, ec);
        if (ec) {
            why = fmt::format("cannot create {}: {}", (dir / sub).string(), ec.message());
            return false;
        }
    }
    return true;
}

// Transient unless the failure can only be fixed by an operator changing something permanent.
DeliveryResult fail(std::string reason) { return DeliveryResult{false, false, std::move(reason)}; }

}  // namespace

fs::path maildir_path(const fs::path& mail_root, std::string_view domain, std::string_view local) {
    return mail_root / encode_component(domain) / encode_component(local);
}

DeliveryResult deliver_to_maildir(const fs::path& maildir, std::string_view hostname, std::string_view headers,
                                  int content_fd, off_t offset, std::size_t length) {
    static std::atomic<unsigned> counter{0};
    std::string why;
    if (!ensure_maildir(maildir, why)) return fail(why);

    const auto now = std::chrono::system_clock::now().time_since_epoch();
    const auto usec = std::chrono::duration_cast<std::chrono::microseconds>(now).count();
    const std::size_t total = headers.size() + length;
    const std::string base = fmt::format("{}.M{}P{}Q{}.{},S={}", usec / 1000000, usec % 1000000, ::getpid(),
                                         counter.fetch_add(1), safe_host(hostname), total);
    const fs::path tmp = maildir / "tmp" / base;
    const fs::path dst = maildir / "new" / base;

    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return fail(fmt::format("cannot create {}: {}", tmp.string(), std::strerror(errno)));
    auto failed = [&](const char* step) {
        const std::string reason = fmt::format("{} {}: {}", step, tmp.string(), std::strerror(errno));
        ::close(fd);
        ::unlink(tmp.c_str());
        return fail(reason);
    };
    if (util::write_all(fd, headers)) return failed("write");
    // The content goes kernel to kernel: no copy of the body through user space.
    loff_t in_off = offset;
    std::size_t left = length;
    while (left > 0) {
        const ssize_t n = ::copy_file_range(content_fd, &in_off, fd, nullptr, left, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (n == 0) errno = EIO;   // spool file shorter than its envelope says
            return failed("copy");
        }
        left -= static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0) return failed("fsync");
    if (::close(fd) != 0) {
        ::unlink(tmp.c_str());
        return fail(fmt::format("close {}: {}", tmp.string(), std::strerror(errno)));
    }
    if (::rename(tmp.c_str(), dst.c_str()) != 0) {
        const std::string reason = fmt::format("rename {}: {}", dst.string(), std::strerror(errno));
        ::unlink(tmp.c_str());
        return fail(reason);
    }
    if (auto ec = util::fsync_dir(maildir / "new"))
        return fail(fmt::format("fsync {}: {}", (maildir / "new").string(), ec.message()));
    return DeliveryResult{true, false, {}};
}

}  // namespace ferry::delivery
