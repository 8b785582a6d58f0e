#include "util/fs.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace ferry::util {

std::error_code last_error() { return {errno, std::generic_category()}; }

std::error_code write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        const ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return last_error();
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return {};
}

std::error_code fsync_dir(const std::filesystem::path& dir) {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return last_error();
    std::error_code ec;
    if (::fsync(fd) != 0) ec = last_error();
    ::close(fd);
    return ec;
}

std::error_code sync_filesystem(int fd) {
    if (::syncfs(fd) != 0) return last_error();
    return {};
}

void make_dirs(const std::filesystem::path& dir, unsigned mode) {
    std::filesystem::create_directories(dir);
    std::filesystem::permissions(dir, static_cast<std::filesystem::perms>(mode),
                                 std::filesystem::perm_options::replace);
}

}  // namespace ferry::util
