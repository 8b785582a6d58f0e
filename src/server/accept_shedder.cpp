#include "server/accept_shedder.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace ferry::server {

bool is_resource_exhaustion(const boost::system::error_code& ec) {
    if (ec.category() != boost::system::system_category()) return false;
    const int e = ec.value();
    return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}

AcceptShedder::AcceptShedder() { take_spare(); }

AcceptShedder::~AcceptShedder() {
    if (spare_ >= 0) ::close(spare_);
}

void AcceptShedder::take_spare() {
    if (spare_ < 0) spare_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
}

std::size_t AcceptShedder::shed(int listen_fd, std::string_view reply) {
    if (spare_ >= 0) {
        ::close(spare_);
        spare_ = -1;
    }
    std::size_t n = 0;
    while (n < kMaxPerCall) {
        const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            break;   // EAGAIN: the backlog is empty; EMFILE: another thread took the spare's slot
        }
        [[maybe_unused]] const ssize_t w = ::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        ::close(fd);
        ++n;
    }
    take_spare();   // may fail while descriptors are short; shed() and the next call try again
    return n;
}

bool OverloadReport::failed(Clock::time_point now, std::size_t shed, Counts& out) {
    ++counts_.failures;
    counts_.shed += shed;
    if (logged_ && now - last_line_ < kInterval) return false;
    out = counts_;
    counts_ = {};
    last_line_ = now;
    logged_ = true;
    return true;
}

}  // namespace ferry::server
