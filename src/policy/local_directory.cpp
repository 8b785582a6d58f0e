#include "policy/local_directory.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "accounts/account_file.hpp"
#include "accounts/password.hpp"
#include "smtp/address.hpp"

namespace ferry::policy {

namespace fs = std::filesystem;

// How stale the in-memory accounts may get before the file's mtime is looked at again.
constexpr auto kAccountsCheckInterval = std::chrono::seconds(1);

LocalDirectory::LocalDirectory(std::vector<std::string> local_domains,
                               std::map<std::string, std::vector<std::string>> aliases, fs::path accounts_file)
    : domains_(std::move(local_domains)), aliases_(std::move(aliases)), accounts_file_(std::move(accounts_file)) {
    if (domains_.empty()) domains_.push_back("localhost");
    reload_accounts();
}

std::string LocalDirectory::key_of(std::string_view address) { return smtp::ascii_lower(address); }

bool LocalDirectory::is_local_domain(const std::string& domain_lower) {
    std::lock_guard lock(mutex_);
    return std::find(domains_.begin(), domains_.end(), domain_lower) != domains_.end();
}

std::optional<std::vector<std::string>> LocalDirectory::alias_targets(const std::string& key) {
    std::lock_guard lock(mutex_);
    const auto it = aliases_.find(key);
    if (it == aliases_.end()) return std::nullopt;
    return it->second;
}

std::string LocalDirectory::primary_domain() {
    std::lock_guard lock(mutex_);
    return domains_.front();
}

void LocalDirectory::update(std::vector<std::string> local_domains,
                            std::map<std::string, std::vector<std::string>> aliases) {
    std::lock_guard lock(mutex_);
    domains_ = std::move(local_domains);
    if (domains_.empty()) domains_.push_back("localhost");
    aliases_ = std::move(aliases);
}

bool LocalDirectory::has_account(const std::string& key) {
    std::lock_guard lock(mutex_);
    refresh_if_changed();
    return accounts_.count(key) != 0;
}

std::optional<std::string> LocalDirectory::authenticate(std::string_view login, std::string_view password) {
    // A yescrypt hash of a random password: an unknown login is checked against it, so it takes as long.
    static const std::string kDummyHash = accounts::hash_password("no such account");
    const std::string key = key_of(login);
    std::string stored;
    {
        std::lock_guard lock(mutex_);
        refresh_if_changed();
        if (auto it = accounts_.find(key); it != accounts_.end()) stored = it->second;
    }
    const bool ok = accounts::verify_password(password, stored.empty() ? kDummyHash : stored);
    if (!ok || stored.empty()) return std::nullopt;
    return key;
}

void LocalDirectory::reload_accounts() {
    std::lock_guard lock(mutex_);
    last_check_ = {};
    accounts_mtime_ = {};
    refresh_if_changed();
}

void LocalDirectory::refresh_if_changed() {
    const auto now = std::chrono::steady_clock::now();
    if (last_check_ != std::chrono::steady_clock::time_point{} && now - last_check_ < kAccountsCheckInterval) return;
    last_check_ = now;
    std::error_code ec;
    const auto mtime = fs::last_write_time(accounts_file_, ec);
    const auto size = ec ? 0 : fs::file_size(accounts_file_, ec);
    if (ec) {   // no accounts file yet: nobody has an account
        accounts_.clear();
        accounts_mtime_ = {};
        return;
    }
    if (mtime == accounts_mtime_ && size == accounts_size_) return;
    try {
        std::map<std::string, std::string> loaded;
        for (const auto& account : accounts::AccountFile(accounts_file_).load())
            loaded.emplace(key_of(account.address), account.password_hash);
        accounts_ = std::move(loaded);
        accounts_mtime_ = mtime;
        accounts_size_ = size;
        spdlog::info("accounts loaded file={} count={}", accounts_file_.string(), accounts_.size());
    } catch (const std::exception& e) {
        // Keep the last good list: a broken edit must not make every user unknown.
        spdlog::error("accounts not reloaded: {}", e.what());
    }
}

}  // namespace ferry::policy
