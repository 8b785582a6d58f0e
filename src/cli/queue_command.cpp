#include "cli/queue_command.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>

#include "config/config.hpp"
#include "server/control_socket.hpp"
#include "spool/queue_id.hpp"

namespace ferry::cli {

namespace {
constexpr int kNotFound = 1;   // also: the message is not in a state for that (release of one not held)
constexpr int kUsage = 2;
constexpr int kTempFail = 75;
constexpr int kNoPermission = 77;   // EX_NOPERM
}  // namespace

int run_queue_command(const std::string& action, const std::string& id, bool json, const std::string& config_file) {
    config::Config cfg;
    try {
        cfg = config_file.empty() ? config::default_config() : config::load_config(config_file);
    } catch (const config::ConfigError& e) {
        std::cerr << e.what() << "\n";
        return kUsage;
    }
    const bool needs_id = action == "show" || action == "delete" || action == "release";
    if (needs_id && id.empty()) {
        std::cerr << "ferry queue " << action << ": a queue id" << (action == "release" ? " (or ALL)" : "")
                  << " is required\n";
        return kUsage;
    }
    if (!id.empty() && !spool::is_queue_id(id) && !(action == "release" && id == "ALL")) {
        std::cerr << "ferry queue " << action << ": \"" << id << "\" is not a queue id\n";
        return kUsage;
    }
    std::string request = action;
    if (action == "list" && json) request += " json";
    if (!id.empty()) request += " " + id;

    const auto socket_name = (cfg.data_dir / "control.sock").string();
    int dir_fd = -1;
    std::string path;
    try {
        path = server::control_socket_path(cfg.data_dir, dir_fd);
    } catch (const std::exception& e) {
        std::cerr << "ferry queue: no server is running for " << cfg.data_dir.string() << " (" << e.what() << ")\n";
        return kTempFail;
    }
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        const int err = errno;
        if (err == EACCES || err == EPERM)
            std::cerr << "ferry queue: " << socket_name << ": " << std::strerror(err)
                      << " (only root and the server's own account may use it)\n";
        else
            std::cerr << "ferry queue: no server is running for " << cfg.data_dir.string() << " (cannot connect to "
                      << socket_name << ": " << std::strerror(err) << ")\n";
        ::close(fd);
        ::close(dir_fd);
        return err == EACCES || err == EPERM ? kNoPermission : kTempFail;
    }
    ::close(dir_fd);
    request += "\n";
    std::string answer;
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
        char buf[65536];
        for (;;) {
            const ssize_t n = ::read(fd, buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            answer.append(buf, static_cast<std::size_t>(n));
        }
    }
    ::close(fd);
    const auto nl = answer.find('\n');
    if (nl == std::string::npos) {
        std::cerr << "ferry queue: the server closed the connection without an answer\n";
        return kTempFail;
    }
    const std::string status = answer.substr(0, nl);
    const std::string body = answer.substr(nl + 1);
    if (status == "ok") {
        std::cout << body;
        return 0;
    }
    const bool refused = status == "notfound" || status == "refused";
    std::cerr << "ferry queue: " << (refused ? body : status.substr(status.find(' ') + 1) + "\n");
    if (refused) return kNotFound;
    return status.starts_with("error ") && action == "release" ? kTempFail : kUsage;
}

}  // namespace ferry::cli
