#include "cli/sendmail_command.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <iterator>

#include "cli/sendmail_args.hpp"
#include "cli/sendmail_message.hpp"
#include "config/config.hpp"
#include "smtp/content_decoder.hpp"
#include "spool/pickup.hpp"
#include "util/fs.hpp"
#include "util/random_text.hpp"

namespace ferry::cli {

namespace fs = std::filesystem;

namespace {

constexpr int kUsage = 64;        // EX_USAGE
constexpr int kDataError = 65;    // EX_DATAERR
constexpr int kCantCreate = 73;   // EX_CANTCREAT
constexpr int kConfig = 78;       // EX_CONFIG

config::Config load(const std::string& given) {
    if (!given.empty()) return config::load_config(given);
    if (const char* env = std::getenv("FERRY_CONFIG"); env && *env) return config::load_config(env);
    if (fs::exists("/etc/ferry/ferry.toml")) return config::load_config("/etc/ferry/ferry.toml");
    return config::default_config();
}

// The login of the caller: the local part of the default sender (as in Postfix, the real user id counts).
std::string login_name() {
    if (const passwd* pw = ::getpwuid(::getuid()); pw && pw->pw_name && *pw->pw_name) return pw->pw_name;
    return "uid" + std::to_string(::getuid());
}

// Written under a hidden name, made durable, then renamed into place: the server never sees half a file,
// and a 0 exit means the message survives a crash.
std::string write_pickup(const fs::path& dir, const std::string& text) {
    const std::string unique = fmt::format("{}.{}", ::getpid(), util::random_hex(8));
    const fs::path tmp = dir / (".tmp." + unique);
    const fs::path done = dir / fmt::format("{}.{}", static_cast<long long>(std::time(nullptr)), unique);
    // 0644: the server's account reads it; the folder is not listable, so other users cannot find it.
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) return fmt::format("cannot create a file in {}: {}", dir.string(), std::strerror(errno));
    std::error_code ec = util::write_all(fd, text);
    if (!ec && ::fsync(fd) != 0) ec = util::last_error();
    if (!ec && ::rename(tmp.c_str(), done.c_str()) != 0) ec = util::last_error();
    // The rename must be durable too. Other users cannot open the folder (no read bit) to fsync it: then the
    // whole filesystem is synced through the file, which carries the directory entry with it.
    if (!ec && util::fsync_dir(dir)) ec = util::sync_filesystem(fd);
    ::close(fd);
    if (ec) {
        ::unlink(tmp.c_str());
        return fmt::format("cannot write {}: {}", tmp.string(), ec.message());
    }
    return "";
}

}  // namespace

int run_sendmail_command(const std::vector<std::string>& argv) {
    const SendmailArgs args = parse_sendmail_args(argv);
    if (!args.error.empty()) {
        std::cerr << "sendmail: " << args.error << "\n";
        return kUsage;
    }
    config::Config cfg;
    try {
        cfg = load(args.config);
    } catch (const std::exception& e) {
        std::cerr << "sendmail: " << e.what() << "\n";
        return kConfig;
    }
    const std::string input((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    if (input.size() > cfg.limits.message_size) {
        std::cerr << "sendmail: the message is larger than the limit of " << cfg.limits.message_size << " octets\n";
        return kDataError;
    }
    const std::string user = login_name() + "@" + cfg.hostname;
    const std::string domain = cfg.hostname;
    const std::time_t now = std::time(nullptr);
    const LocalMessage m = prepare_sendmail_message(input, args, user, now, util::make_message_id(now, domain));
    if (!m.error.empty()) {
        std::cerr << "sendmail: " << m.error << "\n";
        return kDataError;
    }
    // Refused here what the server would set aside unseen (the rules of SMTP intake), while the user can see why.
    const auto flaws = smtp::content_flaws(m.message, cfg.limits.text_line_length, cfg.limits.message_size);
    if (flaws.any()) {
        std::cerr << "sendmail: " << smtp::describe_flaws(flaws, cfg.limits.text_line_length, cfg.limits.message_size)
                  << "\n";
        return kDataError;
    }
    const fs::path dir = cfg.data_dir / "pickup";
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0) {
        std::cerr << "sendmail: " << dir.string() << ": " << std::strerror(errno)
                  << " (ferry serve creates it at its first start)\n";
        return kCantCreate;
    }
    if (const std::string error = write_pickup(dir, serialize_pickup(m.envelope) + m.message); !error.empty()) {
        std::cerr << "sendmail: " << error << "\n";
        return kCantCreate;
    }
    return 0;
}

}  // namespace ferry::cli
