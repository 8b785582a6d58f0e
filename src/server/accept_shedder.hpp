// What a listener does when accept(2) fails for want of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM):
// the connection stays in the kernel's backlog, and accepting again at once fails again (a busy loop), while
// not accepting leaves every waiting client without a greeting. So the classic answer (libev's documentation,
// "the special problem of accept()ing when you can't"): keep one spare descriptor; when out of them, close the
// spare, accept each waiting
// connection, answer it 421 4.3.2 (RFC 3463: system not accepting network messages) and close it, then take
// the spare back; and pause accepting for a while (AcceptBackoff) so sessions can end.
#pragma once

#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstddef>
#include <string_view>

namespace ferry::server {

// accept(2) failed because the process or system is out of descriptors or buffers: shed and back off.
bool is_resource_exhaustion(const boost::system::error_code& ec);

class AcceptShedder {
public:
    AcceptShedder();   // opens the spare (/dev/null)
    ~AcceptShedder();
    AcceptShedder(const AcceptShedder&) = delete;
    AcceptShedder& operator=(const AcceptShedder&) = delete;

    // Answers `reply` to the connections waiting on the listening socket (kMaxPerCall at most, so a flood
    // cannot hold the I/O thread) and closes them; never blocks: the reply is one small write, dropped if the
    // client's window is full. Returns how many.
    static constexpr std::size_t kMaxPerCall = 1024;
    std::size_t shed(int listen_fd, std::string_view reply);

private:
    void take_spare();
    int spare_ = -1;
};

// The pause after each failed accept: 100 ms, doubling to 1 s while failures go on; a successful accept starts
// over. Pure.
class AcceptBackoff {
public:
    static constexpr std::chrono::milliseconds kFirst{100};
    static constexpr std::chrono::milliseconds kMax{1000};

    std::chrono::milliseconds failed() {
        const auto pause = next_;
        next_ = std::min(next_ * 2, kMax);
        return pause;
    }
    void succeeded() { next_ = kFirst; }

private:
    std::chrono::milliseconds next_ = kFirst;
};

// One log line per interval about overload, with what happened since the last one, instead of a line per
// failed accept (a flood would otherwise flood the log too). Pure: the caller gives the time.
class OverloadReport {
public:
    static constexpr std::chrono::seconds kInterval{10};
    using Clock = std::chrono::steady_clock;

    struct Counts {
        std::size_t failures = 0, shed = 0;
    };
    // Counts one failed accept and the connections it shed; returns true when a line is due (the first failure,
    // or kInterval after the last line), with the counts to print in `out`, which then start over.
    bool failed(Clock::time_point now, std::size_t shed, Counts& out);

private:
    Counts counts_;
    Clock::time_point last_line_{};
    bool logged_ = false;
};

}  // namespace ferry::server
