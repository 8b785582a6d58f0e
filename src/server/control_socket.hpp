// The operator's channel into a running server: a Unix socket, data_dir/control.sock (mode 0600, and the peer
// must be root or the server's own user), one request line per connection, one answer, then close.
//
//   request:  "list" | "list json" | "show ID" | "flush" | "flush ID" | "delete ID" | "release ID" | "release ALL"
//   answer:   "ok\n" or "notfound\n" or "refused\n" (the message is not in a state for that: flush or release
//             of a held or not held one) or "error WHY\n", then the text to print
//
// `ferry queue` (cli/queue_command) is the client.
#pragma once

#include <boost/asio.hpp>

#include <filesystem>
#include <string>

#include "queue/delivery_queue.hpp"

namespace ferry::server {

// The socket's path may be longer than sun_path allows (108 octets; test folders easily are): both ends reach it
// through /proc/self/fd/N/control.sock, N a descriptor of data_dir. Returns that path and keeps `dir_fd` open.
std::string control_socket_path(const std::filesystem::path& data_dir, int& dir_fd);

class ControlSocket {
public:
    // `work` runs the requests, which read spool files: off the I/O thread, so sessions do not wait for a list.
    ControlSocket(boost::asio::io_context& io, boost::asio::any_io_executor work, queue::DeliveryQueue& queue);
    ~ControlSocket();
    void start(const std::filesystem::path& data_dir);   // throws std::runtime_error
    void close();

private:
    boost::asio::awaitable<void> accept_loop();
    boost::asio::awaitable<void> serve(boost::asio::local::stream_protocol::socket socket);
    std::string answer(const std::string& request);

    boost::asio::io_context& io_;
    boost::asio::any_io_executor work_;
    queue::DeliveryQueue& queue_;
    boost::asio::local::stream_protocol::acceptor acceptor_;
    int dir_fd_ = -1;
};

}  // namespace ferry::server
