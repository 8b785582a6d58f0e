// `ferry user add|passwd|del|list ADDRESS --config FILE`: edits data_dir/accounts. The password is read from
// standard input (first line); on a terminal it is asked for without echo.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <string>

namespace ferry::cli {

// Exit status: 0 done, 1 refused or failed (message on stderr), 2 usage or configuration error.
int run_user_command(const std::string& action, const std::string& address, const std::filesystem::path& config_file);

// The same with explicit streams (tests). `in` supplies the password; no terminal handling.
int run_user_command(const std::string& action, const std::string& address, const std::filesystem::path& config_file,
                     std::istream& in, std::ostream& out, std::ostream& err);

}  // namespace ferry::cli
