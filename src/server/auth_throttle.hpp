// Failed SMTP AUTH attempts per client IP: each failure is answered a little later than the one before, and an
// address with too many recent failures is disconnected (421) at its next attempt. Only the I/O thread uses it.
#pragma once

#include <chrono>
#include <map>
#include <string>

namespace ferry::server {

class AuthThrottle {
public:
    static constexpr int kMaxFailures = 5;                          // within kWindow: then refused
    static constexpr std::chrono::minutes kWindow{15};
    static constexpr std::chrono::milliseconds kStep{250};          // delay per failure so far
    static constexpr std::chrono::milliseconds kMaxDelay{3000};

    bool blocked(const std::string& ip);
    // Records a failure; returns how long to wait before answering it.
    std::chrono::milliseconds failed(const std::string& ip);
    void succeeded(const std::string& ip);
    int failures(const std::string& ip);

private:
    struct Entry {
        int failures = 0;
        std::chrono::steady_clock::time_point last;
    };
    Entry* find(const std::string& ip);   // nullptr when unknown or expired (then forgotten)
    std::map<std::string, Entry> entries_;
};

}  // namespace ferry::server
