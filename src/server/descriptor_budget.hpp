// File descriptors the configuration may need at once, against RLIMIT_NOFILE. Each session holds its socket;
// past the limit accept(2) fails with EMFILE and clients wait in the backlog with no greeting, so a
// configuration whose connection limits cannot fit is refused at start (and by check-config, and on reload).
#pragma once

#include <cstdint>
#include <string>

#include "config/config.hpp"

namespace ferry::server {

// Descriptors beside the sessions' sockets: listeners, the log, the spool folder and the data_dir lock, event
// loops and their timers, the control socket, inotify, DNS sockets (libunbound), the spool files of messages
// being received and Maildir files being written by delivery workers, and the spare kept to shed load
// (accept_shedder). 128 leaves room for about 100 messages arriving at once besides the rest; past it accept
// backs off and sheds (421 4.3.2) instead of hanging clients.
inline constexpr std::size_t kDescriptorReserve = 128;

struct DescriptorBudget {
    std::size_t sessions = 0;   // the listeners' `connections`, summed
    std::size_t outbound = 0;   // [outbound] max_connections
    // Content filters: each session's connection to each [[milter]], and rspamd's pool of idle connections
    // ([rspamd] max_connections; a request beyond it opens one more for its duration, within the reserve).
    std::size_t filters = 0;
    std::size_t reserve = kDescriptorReserve;
    std::size_t total() const { return sessions + outbound + filters + reserve; }
};

DescriptorBudget descriptor_budget(const config::Config& config);

// "" when `limit` descriptors hold the budget; else one line naming the keys that add up, the sum and the limit.
std::string descriptor_shortfall(const config::Config& config, std::uint64_t limit);

// The shortfall against this process's hard RLIMIT_NOFILE (what the soft limit can be raised to); "" when it fits.
std::string descriptor_limit_error(const config::Config& config);

// Raises the soft RLIMIT_NOFILE to the hard limit, so the connection limits are not capped by a default of 1024.
void raise_descriptor_limit();

}  // namespace ferry::server
