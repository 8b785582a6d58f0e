// The running MTA: listeners, sessions, spool, committer and delivery queue in one process.
#pragma once

#include <memory>

#include "config/config.hpp"

namespace ferry::server {

// Binds every listener, recovers the spool, serves until SIGTERM/SIGINT. SIGHUP reloads the configuration
// file (domains, aliases, limits, hostname; listeners stay). Returns the process exit status.
int serve(config::Config config);

}  // namespace ferry::server
