#include "server/privileges.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace ferry::server {

namespace {

struct Account {
    uid_t uid;
    gid_t gid;
};

Account look_up(const std::string& name) {
    errno = 0;
    const passwd* pw = ::getpwnam(name.c_str());
    if (!pw)
        throw std::runtime_error(fmt::format(
            "user \"{}\" does not exist (create it, e.g. `useradd --system --user-group --no-create-home "
            "--shell /usr/sbin/nologin {}`, or change `user`)",
            name, name));
    if (pw->pw_uid == 0) throw std::runtime_error(fmt::format("user \"{}\" is root; name an unprivileged account", name));
    return Account{pw->pw_uid, pw->pw_gid};
}

std::runtime_error failure(const std::string& what) {
    return std::runtime_error(fmt::format("{}: {}", what, std::strerror(errno)));
}

// Gives the tree below `dir_fd` to the account. Every step goes through descriptors opened with O_NOFOLLOW
// relative to their parent, so a symbolic link planted in data_dir (by whoever can write there) can never
// make root change the owner of a file outside it. A subtree whose top already belongs to the account is
// taken as done: a mail store of millions of files is not walked at every start.
void give_tree(int dir_fd, const Account& to, int depth) {
    if (depth > 16) return;   // data_dir/mail/<domain>/<user>/{cur,new,tmp}/<file> is depth 5
    const int walk_fd = ::dup(dir_fd);
    if (walk_fd < 0) return;
    DIR* dir = ::fdopendir(walk_fd);
    if (!dir) {
        ::close(walk_fd);
        return;
    }
    while (const dirent* e = ::readdir(dir)) {
        const std::string_view name = e->d_name;
        if (name == "." || name == "..") continue;
        struct stat st {};
        if (::fstatat(dir_fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        const bool owned = st.st_uid == to.uid && st.st_gid == to.gid;
        if (S_ISDIR(st.st_mode)) {
            if (owned) continue;
            const int sub = ::openat(dir_fd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0) continue;
            if (::fchown(sub, to.uid, to.gid) != 0) spdlog::warn("cannot give {} to the server's user: {}", name, std::strerror(errno));
            give_tree(sub, to, depth + 1);
            ::close(sub);
        } else if (!owned && ::fchownat(dir_fd, e->d_name, to.uid, to.gid, AT_SYMLINK_NOFOLLOW) != 0) {
            spdlog::warn("cannot give {} to the server's user: {}", name, std::strerror(errno));
        }
    }
    ::closedir(dir);
}

}  // namespace

void check_start_identity(const config::Config& cfg) {
    if (::geteuid() != 0) return;
    if (!cfg.user.empty()) {
        look_up(cfg.user);
        return;
    }
    if (!cfg.run_as_root)
        throw std::runtime_error(
            "refusing to run as root: set `user = \"ferry\"` (an unprivileged account; Ferry binds its ports "
            "first, then becomes that user) or `run_as_root = true`");
}

void drop_privileges(const config::Config& cfg) {
    if (::geteuid() != 0) {
        if (!cfg.user.empty()) {
            const passwd* me = ::getpwuid(::geteuid());
            if (!me || cfg.user != me->pw_name)
                spdlog::info("not started as root: user = \"{}\" does not apply, running as uid={}", cfg.user,
                             ::geteuid());
        }
        return;
    }
    if (cfg.user.empty()) {
        spdlog::warn("running as root (run_as_root = true): a flaw in Ferry would give away the whole machine");
        return;
    }
    const Account to = look_up(cfg.user);

    const int data_fd = ::open(cfg.data_dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (data_fd < 0) throw failure("cannot open " + cfg.data_dir.string());
    if (::fchown(data_fd, to.uid, to.gid) != 0) {
        ::close(data_fd);
        throw failure("cannot give " + cfg.data_dir.string() + " to user " + cfg.user);
    }
    give_tree(data_fd, to, 0);
    ::close(data_fd);

    // Supplementary groups first (they need root), then the group, then the user: after setresuid nothing
    // else can be changed. glibc applies each call to every thread of the process.
    if (::setgroups(1, &to.gid) != 0) throw failure("setgroups");
    if (::setresgid(to.gid, to.gid, to.gid) != 0) throw failure("setresgid");
    if (::setresuid(to.uid, to.uid, to.uid) != 0) throw failure("setresuid");
    uid_t ruid, euid, suid;
    gid_t rgid, egid, sgid;
    if (::getresuid(&ruid, &euid, &suid) != 0 || ::getresgid(&rgid, &egid, &sgid) != 0 || ruid != to.uid ||
        euid != to.uid || suid != to.uid || rgid != to.gid || egid != to.gid || sgid != to.gid ||
        ::setuid(0) == 0)
        throw std::runtime_error("the switch to user \"" + cfg.user + "\" did not take");

    // Every folder above data_dir must let the account through, or nothing works from here on; say so now.
    if (::access(cfg.data_dir.c_str(), R_OK | W_OK | X_OK) != 0)
        throw failure(fmt::format("user \"{}\" cannot use data_dir {} (every folder above it must be searchable "
                                  "by that user)",
                                  cfg.user, cfg.data_dir.string()));
    spdlog::info("running as user={} uid={} gid={}", cfg.user, to.uid, to.gid);
}

}  // namespace ferry::server
