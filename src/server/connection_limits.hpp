// Concurrent session counts, total and per client IP; over either limit a client gets 421 4.7.0.
#pragma once

#include <map>
#include <mutex>
#include <string>

namespace ferry::server {

class ConnectionLimits {
public:
    enum class Verdict { ok, too_many_total, too_many_from_ip };

    ConnectionLimits(std::size_t max_total, std::size_t max_per_ip) : max_total_(max_total), max_per_ip_(max_per_ip) {}

    Verdict acquire(const std::string& ip);   // counts the session when ok
    void release(const std::string& ip);
    void set_limits(std::size_t max_total, std::size_t max_per_ip);

private:
    std::mutex mutex_;
    std::size_t max_total_, max_per_ip_;
    std::size_t total_ = 0;
    std::map<std::string, std::size_t> per_ip_;
};

}  // namespace ferry::server
