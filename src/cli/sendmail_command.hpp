// `ferry sendmail ...`, also `ferry` run under the name `sendmail` (a symlink from /usr/sbin/sendmail): the
// sendmail interface local programs use (options in cli/sendmail_args.hpp). The message is read from stdin,
// prepared (cli/sendmail_message.hpp) and left in the local pickup directory, data_dir/pickup/, from which the
// server takes it into its queue — at once when it runs, at its next start when it does not. The configuration
// is --config FILE, else $FERRY_CONFIG, else /etc/ferry/ferry.toml, else the built-in one.
//
// Exit status (sysexits.h, what callers of sendmail expect): 0 the message is safe in the pickup directory;
// 64 usage error; 65 bad input (no recipient, a bad address); 73 the pickup file cannot be written; 78 the
// configuration is broken.
#pragma once

#include <string>
#include <vector>

namespace ferry::cli {

int run_sendmail_command(const std::vector<std::string>& args);

}  // namespace ferry::cli
