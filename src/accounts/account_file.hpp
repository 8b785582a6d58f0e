// The accounts file, data_dir/accounts: one "address:{SCHEME}hash" line per user (Dovecot passwd-file
// compatible), '#' comments and blank lines ignored. Written by `ferry user`, read by SASL AUTH.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::accounts {

struct Account {
    std::string address;         // lower-case localpart@domain
    std::string password_hash;   // "{CRYPT}$y$..." as stored; check with verify_password()
};

// Errors are std::runtime_error with one-line messages: "FILE:LINE: why" for a malformed file,
// "ADDRESS: why" for a bad request (invalid address, already exists, no such account).
// Changes rewrite the whole file atomically (temporary file, fsync, rename, fsync of the folder) with mode 0600,
// keep comments and the order of lines, and are serialised between processes by a lock on the folder.
class AccountFile {
public:
    explicit AccountFile(std::filesystem::path file);

    const std::filesystem::path& path() const { return file_; }

    // All accounts in file order. A missing file is an empty list.
    std::vector<Account> load() const;
    // The account for `address` (case-insensitive), if any.
    std::optional<Account> find(std::string_view address) const;

    void add(std::string_view address, std::string_view password);            // throws if it exists
    void set_password(std::string_view address, std::string_view password);   // throws if absent
    void remove(std::string_view address);                                     // throws if absent

private:
    std::filesystem::path file_;
};

}  // namespace ferry::accounts
