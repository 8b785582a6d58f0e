#include "server/control_socket.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "queue/queue_report.hpp"

namespace ferry::server {

namespace asio = boost::asio;
using local = asio::local::stream_protocol;

namespace {
constexpr std::size_t kMaxRequest = 1024;
// For the whole exchange: a client that neither sends its line nor reads the answer is cut off.
constexpr auto kExchangeTimeout = std::chrono::seconds(30);
}  // namespace

std::string control_socket_path(const std::filesystem::path& data_dir, int& dir_fd) {
    dir_fd = ::open(data_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) throw std::runtime_error(fmt::format("cannot open {}: {}", data_dir.string(), std::strerror(errno)));
    return fmt::format("/proc/self/fd/{}/control.sock", dir_fd);
}

ControlSocket::ControlSocket(asio::io_context& io, asio::any_io_executor work, queue::DeliveryQueue& queue)
    : io_(io), work_(std::move(work)), queue_(queue), acceptor_(io) {}

ControlSocket::~ControlSocket() {
    if (dir_fd_ >= 0) ::close(dir_fd_);
}

void ControlSocket::start(const std::filesystem::path& data_dir) {
    const std::string path = control_socket_path(data_dir, dir_fd_);
    ::unlinkat(dir_fd_, "control.sock", 0);   // left by a server that did not stop cleanly (serve.lock says we are alone)
    const mode_t old = ::umask(0177);          // 0600 from the start, no window
    boost::system::error_code ec;
    acceptor_.open(local(), ec);
    if (!ec) acceptor_.bind(local::endpoint(path), ec);
    ::umask(old);
    if (!ec) acceptor_.listen(16, ec);
    if (ec) throw std::runtime_error(fmt::format("control socket {}: {}", (data_dir / "control.sock").string(), ec.message()));
    asio::co_spawn(io_, accept_loop(), asio::detached);
}

void ControlSocket::close() {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    if (dir_fd_ >= 0) ::unlinkat(dir_fd_, "control.sock", 0);
}

asio::awaitable<void> ControlSocket::accept_loop() {
    for (;;) {
        auto [ec, socket] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
        if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
        if (ec) continue;
        // Only root and the server's own account: the queue holds everyone's addresses.
        ucred cred{};
        socklen_t len = sizeof cred;
        if (::getsockopt(socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
            (cred.uid != 0 && cred.uid != ::geteuid())) {
            spdlog::warn("control: refused a connection from uid {}", cred.uid);
            continue;
        }
        asio::co_spawn(io_, serve(std::move(socket)), asio::detached);
    }
}

asio::awaitable<void> ControlSocket::serve(local::socket socket) {
    asio::steady_timer deadline(io_, kExchangeTimeout);
    deadline.async_wait([&socket](boost::system::error_code ec) {
        if (!ec) socket.close(ec);
    });
    std::string request;
    auto [ec, n] = co_await asio::async_read_until(socket, asio::dynamic_buffer(request, kMaxRequest), '\n',
                                                   asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    request.resize(n - 1);
    if (!request.empty() && request.back() == '\r') request.pop_back();
    // The commands read spool files (a list reads one per scheduled message): done on the worker pool, then
    // back to the I/O thread for the socket.
    co_await asio::post(work_, asio::use_awaitable);
    const std::string reply = answer(request);
    co_await asio::post(io_, asio::use_awaitable);
    co_await asio::async_write(socket, asio::buffer(reply), asio::as_tuple(asio::use_awaitable));
    deadline.cancel();
}

std::string ControlSocket::answer(const std::string& request) {
    const auto space = request.find(' ');
    const std::string verb = request.substr(0, space);
    const std::string arg = space == std::string::npos ? "" : request.substr(space + 1);
    const std::time_t now = std::time(nullptr);
    spdlog::info("control: {}", request);
    if (verb == "list") {
        const auto messages = queue_.list();
        if (arg == "json") return "ok\n" + queue::format_queue_json(messages, now);
        std::string text = queue::format_queue_text(messages, now);
        if (queue_.more_on_disk())
            text += "-- and more in the spool, waiting for room among the scheduled messages ([queue] active_limit)\n";
        return "ok\n" + text;
    }
    if (verb == "show" && !arg.empty()) {
        const auto m = queue_.find(arg);
        if (!m) return fmt::format("notfound\nno message {} in the queue\n", arg);
        return "ok\n" + queue::format_queue_text({*m}, now) + "\n" + queue_.message_headers(arg);
    }
    if (verb == "flush") {
        const std::size_t n = queue_.flush(arg);
        if (!arg.empty() && n == 0) {
            const auto m = queue_.find(arg);
            if (m && m->held)
                return fmt::format("refused\nmessage {} is held ({}); `ferry queue release {}` delivers it\n", arg,
                                   m->hold_reason, arg);
            return fmt::format("notfound\nno message {} in the queue\n", arg);
        }
        std::string text = fmt::format("ok\n{} message{} to be retried now\n", n, n == 1 ? "" : "s");
        if (const std::size_t held = arg.empty() ? queue_.held_count() : 0)
            text += fmt::format("{} held message{} not flushed (`ferry queue release`)\n", held, held == 1 ? "" : "s");
        return text;
    }
    // Postfix's `postsuper -H`: releasing every held message takes the explicit "ALL", never a missing id.
    if (verb == "release" && arg == "ALL") {
        const std::size_t n = queue_.release_all();
        return fmt::format("ok\n{} held message{} released\n", n, n == 1 ? "" : "s");
    }
    if (verb == "release" && !arg.empty()) {
        switch (queue_.release(arg)) {
        case queue::DeliveryQueue::Release::released: return fmt::format("ok\n{} released\n", arg);
        case queue::DeliveryQueue::Release::not_found: return fmt::format("notfound\nno message {} in the queue\n", arg);
        case queue::DeliveryQueue::Release::not_held: return fmt::format("refused\nmessage {} is not held\n", arg);
        case queue::DeliveryQueue::Release::failed:
            return fmt::format("error {} could not be released (its delivery record cannot be written; see the log)\n", arg);
        }
    }
    if (verb == "delete" && !arg.empty()) {
        if (!queue_.remove(arg)) return fmt::format("notfound\nno message {} in the queue\n", arg);
        return fmt::format("ok\n{} deleted\n", arg);
    }
    return fmt::format("error unknown request \"{}\"\n", request.substr(0, 64));
}

}  // namespace ferry::server
