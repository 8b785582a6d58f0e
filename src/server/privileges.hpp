// Who the server runs as. Ferry is started as root only to bind ports below 1024; everything after that, the
// whole SMTP and delivery work, runs as the unprivileged account named by `user` in the configuration.
#pragma once

#include "config/config.hpp"

namespace ferry::server {

// Before anything is opened or bound. Started as root, `user` must name an existing account other than root,
// or `run_as_root = true` must say that staying root is intended. Throws std::runtime_error with the reason.
void check_start_identity(const config::Config& cfg);

// After the ports are bound: gives data_dir to `user` and becomes that account for good (supplementary groups,
// group, user; all threads), then checks that root cannot be regained and data_dir is usable. Does nothing
// when not started as root, or with `run_as_root` and no `user`. Throws std::runtime_error on any failure.
void drop_privileges(const config::Config& cfg);

}  // namespace ferry::server
