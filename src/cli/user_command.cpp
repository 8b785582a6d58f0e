#include "cli/user_command.hpp"

#include "accounts/account_file.hpp"
#include "config/config.hpp"
#include "smtp/address.hpp"

#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <system_error>

namespace ferry::cli {

namespace {

// Reads the first line of `in`, without its line ending. nullopt at end of input.
std::optional<std::string> read_password(std::istream& in) {
    std::string line;
    if (!std::getline(in, line) && line.empty()) return std::nullopt;
    while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.pop_back();
    return line;
}

// Turns terminal echo off while a password is typed; restores it on scope exit.
class NoEcho {
public:
    NoEcho() {
        if (::isatty(STDIN_FILENO) && ::tcgetattr(STDIN_FILENO, &saved_) == 0) {
            termios quiet = saved_;
            quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
            active_ = ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
        }
    }
    ~NoEcho() {
        if (active_) ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_);
    }
    NoEcho(const NoEcho&) = delete;
    NoEcho& operator=(const NoEcho&) = delete;

private:
    termios saved_{};
    bool active_ = false;
};

int run(const std::string& action, const std::string& address, const std::filesystem::path& config_file,
        std::istream& in, std::ostream& out, std::ostream& err, bool terminal) {
    const std::string me = "ferry user " + action;
    if (action != "add" && action != "passwd" && action != "del" && action != "list") {
        err << "ferry user: unknown action \"" << action << "\" (use add, passwd, del or list)\n";
        return 2;
    }
    if (action != "list" && address.empty()) {
        err << me << ": missing ADDRESS\n";
        return 2;
    }

    config::Config cfg;
    try {
        cfg = config::load_config(config_file);
    } catch (const config::ConfigError& e) {
        err << e.what() << "\n";
        return 2;
    }

    try {
        std::error_code ec;
        std::filesystem::create_directories(cfg.data_dir, ec);
        if (ec) {
            err << me << ": " << cfg.data_dir.string() << ": cannot create: " << ec.message() << "\n";
            return 1;
        }
        accounts::AccountFile file(cfg.accounts_file());

        if (action == "list") {
            for (const accounts::Account& a : file.load()) out << a.address << "\n";
            return 0;
        }

        std::string why = smtp::address_error(address);
        if (!why.empty()) {
            err << me << ": " << address << ": invalid address: " << why << "\n";
            return 1;
        }
        std::string key = config::ascii_lower(address);

        if (action == "del") {
            file.remove(key);
            out << "deleted " << key << "\n";
            return 0;
        }

        // Accounts authenticate senders and receive mail, both only for the domains we are the destination of.
        std::string domain = key.substr(key.rfind('@') + 1);
        if (std::find(cfg.local_domains.begin(), cfg.local_domains.end(), domain) == cfg.local_domains.end()) {
            std::string where = cfg.source.empty() ? std::string("the configuration") : cfg.source.string();
            err << me << ": " << key << ": " << domain << " is not a local domain (add it to [domains] local in "
                << where << ")\n";
            return 1;
        }
        // Refuse early, before asking for a password that would be thrown away.
        bool exists = file.find(key).has_value();
        if (action == "add" && exists) {
            err << me << ": " << key << ": account already exists\n";
            return 1;
        }
        if (action == "passwd" && !exists) {
            err << me << ": " << key << ": no such account\n";
            return 1;
        }

        std::optional<std::string> password;
        if (terminal && ::isatty(STDIN_FILENO)) {
            err << "Password for " << key << ": " << std::flush;
            NoEcho no_echo;
            password = read_password(in);
            err << "\n";
        } else {
            password = read_password(in);
        }
        if (!password || password->empty()) {
            err << me << ": empty password (give it as the first line of standard input)\n";
            return 1;
        }

        if (action == "add") {
            file.add(key, *password);
            out << "added " << key << "\n";
        } else {
            file.set_password(key, *password);
            out << "changed the password of " << key << "\n";
        }
        return 0;
    } catch (const std::exception& e) {
        err << me << ": " << e.what() << "\n";
        return 1;
    }
}

}  // namespace

int run_user_command(const std::string& action, const std::string& address, const std::filesystem::path& config_file) {
    return run(action, address, config_file, std::cin, std::cout, std::cerr, true);
}

int run_user_command(const std::string& action, const std::string& address, const std::filesystem::path& config_file,
                     std::istream& in, std::ostream& out, std::ostream& err) {
    return run(action, address, config_file, in, out, err, false);
}

}  // namespace ferry::cli
