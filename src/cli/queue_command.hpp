// `ferry queue list|show|flush|delete [ID] [--json] --config FILE`: asks the running server over its control
// socket (server/control_socket) and prints the answer.
#pragma once

#include <string>

namespace ferry::cli {

// Exit status: 0 done; 1 no such message; 2 usage or configuration error; 75 (EX_TEMPFAIL) no server running;
// 77 (EX_NOPERM) not root nor the server's account.
int run_queue_command(const std::string& action, const std::string& id, bool json, const std::string& config_file);

}  // namespace ferry::cli
