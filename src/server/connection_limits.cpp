#include "server/connection_limits.hpp"

namespace ferry::server {

ConnectionLimits::Verdict ConnectionLimits::acquire(const std::string& ip) {
    std::lock_guard lock(mutex_);
    if (total_ >= max_total_) return Verdict::too_many_total;
    auto& n = per_ip_[ip];
    if (n >= max_per_ip_) {
        if (n == 0) per_ip_.erase(ip);
        return Verdict::too_many_from_ip;
    }
    ++n;
    ++total_;
    return Verdict::ok;
}

void ConnectionLimits::release(const std::string& ip) {
    std::lock_guard lock(mutex_);
    const auto it = per_ip_.find(ip);
    if (it == per_ip_.end()) return;
    if (--it->second == 0) per_ip_.erase(it);
    --total_;
}

void ConnectionLimits::set_limits(std::size_t max_total, std::size_t max_per_ip) {
    std::lock_guard lock(mutex_);
    max_total_ = max_total;
    max_per_ip_ = max_per_ip;
}

}  // namespace ferry::server
