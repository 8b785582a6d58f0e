// Small POSIX file helpers with the durability steps spelled out.
#pragma once

#include <filesystem>
#include <string_view>
#include <system_error>

namespace ferry::util {

// Writes all of `data` to fd (retrying short writes and EINTR). Returns the errno-style error, or {}.
std::error_code write_all(int fd, std::string_view data);

// fsync() of a directory, so a rename or unlink inside it survives power loss.
std::error_code fsync_dir(const std::filesystem::path& dir);

// Creates the directory and its parents with the given mode (0700 by default). Throws on failure.
void make_dirs(const std::filesystem::path& dir, unsigned mode = 0700);

// syncfs(2) of the filesystem holding `fd`: every write and rename made before it is durable after it,
// in one journal commit. The group-commit barrier of SyncMode::filesystem.
std::error_code sync_filesystem(int fd);

std::error_code last_error();   // std::error_code from errno

}  // namespace ferry::util
