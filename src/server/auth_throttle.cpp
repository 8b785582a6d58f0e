#include "server/auth_throttle.hpp"

#include <algorithm>

namespace ferry::server {

AuthThrottle::Entry* AuthThrottle::find(const std::string& ip) {
    const auto it = entries_.find(ip);
    if (it == entries_.end()) return nullptr;
    if (std::chrono::steady_clock::now() - it->second.last > kWindow) {
        entries_.erase(it);
        return nullptr;
    }
    return &it->second;
}

bool AuthThrottle::blocked(const std::string& ip) {
    const Entry* e = find(ip);
    return e && e->failures >= kMaxFailures;
}

int AuthThrottle::failures(const std::string& ip) {
    const Entry* e = find(ip);
    return e ? e->failures : 0;
}

std::chrono::milliseconds AuthThrottle::failed(const std::string& ip) {
    Entry* e = find(ip);
    if (!e) e = &entries_[ip];
    ++e->failures;
    e->last = std::chrono::steady_clock::now();
    // Forget addresses that went quiet, so the map cannot grow without bound.
    if (entries_.size() > 100000)
        std::erase_if(entries_, [](const auto& kv) { return std::chrono::steady_clock::now() - kv.second.last > kWindow; });
    return std::min(kMaxDelay, kStep * e->failures);
}

void AuthThrottle::succeeded(const std::string& ip) { entries_.erase(ip); }

}  // namespace ferry::server
