// Who exists here: the local domains, the aliases and the accounts file. Shared by the RCPT check and the
// delivery router so both give the same answer. Thread-safe; the accounts file is re-read when it changes
// (checked at most once a second), so `ferry user add` takes effect without a restart.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace ferry::policy {

class LocalDirectory {
public:
    LocalDirectory(std::vector<std::string> local_domains, std::map<std::string, std::vector<std::string>> aliases,
                   std::filesystem::path accounts_file);

    // Keys are lower-cased "local@domain" (ASCII case folding only).
    bool is_local_domain(const std::string& domain_lower);
    bool has_account(const std::string& key);
    // SMTP AUTH: the account key when `login` names an account whose password is `password`. Slow on purpose
    // (yescrypt): call it off the I/O thread. An unknown login costs the same as a wrong password.
    std::optional<std::string> authenticate(std::string_view login, std::string_view password);
    std::optional<std::vector<std::string>> alias_targets(const std::string& key);
    std::string primary_domain();
    void reload_accounts();   // force a re-read (SIGHUP)
    // SIGHUP: new domains and aliases from a reloaded configuration.
    void update(std::vector<std::string> local_domains, std::map<std::string, std::vector<std::string>> aliases);

    static std::string key_of(std::string_view address);   // lower-case the whole address

private:
    void refresh_if_changed();

    std::mutex mutex_;
    std::vector<std::string> domains_;
    std::map<std::string, std::vector<std::string>> aliases_;
    std::filesystem::path accounts_file_;

    std::map<std::string, std::string> accounts_;   // key -> stored password hash
    std::filesystem::file_time_type accounts_mtime_{};
    std::uintmax_t accounts_size_ = 0;
    std::chrono::steady_clock::time_point last_check_{};
};

}  // namespace ferry::policy
