#include "accounts/account_file.hpp"

#include "accounts/password.hpp"
#include "util/ascii.hpp"
#include "smtp/address.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <stdexcept>

namespace ferry::accounts {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kHeader =
    "# Ferry accounts: one address:{SCHEME}hash line each. Edit with `ferry user add|passwd|del`.";

std::runtime_error system_error(const std::string& what, int err) {
    return std::runtime_error(what + ": " + std::strerror(err));
}

// A file descriptor closed on scope exit.
class Fd {
public:
    explicit Fd(int fd = -1) : fd_(fd) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    int get() const { return fd_; }
    int release() {
        int fd = fd_;
        fd_ = -1;
        return fd;
    }

private:
    int fd_;
};

struct Line {
    std::string text;                  // as in the file, without the newline
    std::optional<Account> account;    // nullopt for comments and blank lines
};

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
}

// Reads and parses the file; a missing file is empty.
std::vector<Line> read_lines(const fs::path& file) {
    std::vector<Line> lines;
    Fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) {
        if (errno == ENOENT) return lines;
        throw system_error(file.string() + ": cannot read", errno);
    }
    std::string text;
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw system_error(file.string() + ": cannot read", errno);
        }
        if (n == 0) break;
        text.append(buf, static_cast<std::size_t>(n));
    }

    std::map<std::string, std::size_t> first_line;
    std::size_t start = 0;
    std::size_t number = 0;
    while (start < text.size()) {
        auto end = text.find('\n', start);
        if (end == std::string::npos) end = text.size();
        std::string raw = text.substr(start, end - start);
        start = end + 1;
        ++number;

        Line line{raw, std::nullopt};
        std::string_view s = trim(raw);
        auto fail = [&](const std::string& why) {
            return std::runtime_error(file.string() + ":" + std::to_string(number) + ": " + why);
        };
        if (!s.empty() && s.front() != '#') {
            auto colon = s.find(':');
            if (colon == std::string_view::npos) throw fail("expected ADDRESS:{SCHEME}HASH");
            std::string_view address = trim(s.substr(0, colon));
            std::string_view hash = trim(s.substr(colon + 1));
            std::string why = smtp::address_error(address);
            if (!why.empty()) throw fail("invalid address \"" + std::string(address) + "\": " + why);
            if (hash.empty()) throw fail("missing password hash after ':'");
            if (hash.find(':') != std::string_view::npos || hash.find_first_of(" \t") != std::string_view::npos)
                throw fail("expected ADDRESS:{SCHEME}HASH (no further fields or spaces)");
            std::string key = util::ascii_lower(address);
            if (auto [it, inserted] = first_line.emplace(key, number); !inserted)
                throw fail("duplicate account " + key + " (first on line " + std::to_string(it->second) + ")");
            line.account = Account{key, std::string(hash)};
        }
        lines.push_back(std::move(line));
    }
    return lines;
}

void write_all(int fd, std::string_view data, const std::string& what) {
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            throw system_error(what, errno);
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
}

// Replaces `file` with `lines`: a crash leaves either the old or the new file, never a torn one.
void write_lines(const fs::path& file, const std::vector<Line>& lines, int dir_fd) {
    std::string content;
    for (const Line& l : lines) {
        content += l.text;
        content += '\n';
    }
    fs::path folder = file.parent_path().empty() ? fs::path(".") : file.parent_path();
    std::string tmp = (folder / ("." + file.filename().string() + ".XXXXXX")).string();
    Fd fd(::mkostemp(tmp.data(), O_CLOEXEC));
    if (fd.get() < 0) throw system_error(tmp + ": cannot create", errno);
    try {
        if (::fchmod(fd.get(), 0600) != 0) throw system_error(tmp + ": cannot chmod", errno);
        // Root editing the file (`ferry user add` by the operator) gives it to the folder's owner, the account
        // the server runs as: a root-owned 0600 file would lock the server out of its own accounts.
        struct stat dir_st {};
        if (::geteuid() == 0 && ::fstat(dir_fd, &dir_st) == 0 && dir_st.st_uid != 0 &&
            ::fchown(fd.get(), dir_st.st_uid, dir_st.st_gid) != 0)
            throw system_error(tmp + ": cannot chown", errno);
        write_all(fd.get(), content, tmp + ": cannot write");
        if (::fsync(fd.get()) != 0) throw system_error(tmp + ": cannot fsync", errno);
        if (::close(fd.release()) != 0) throw system_error(tmp + ": cannot close", errno);
        if (::rename(tmp.c_str(), file.c_str()) != 0) throw system_error(file.string() + ": cannot rename into place", errno);
    } catch (...) {
        ::unlink(tmp.c_str());
        throw;
    }
    // The rename is durable only once the folder is synced.
    if (::fsync(dir_fd) != 0) throw system_error(folder.string() + ": cannot fsync", errno);
}

// Runs `change` on the parsed lines under an exclusive lock on the folder, then writes the result.
// flock on the folder (not the file) because the file itself is replaced by rename.
template <typename Change>
void modify(const fs::path& file, Change change) {
    fs::path folder = file.parent_path().empty() ? fs::path(".") : file.parent_path();
    Fd dir(::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir.get() < 0) throw system_error(folder.string() + ": cannot open", errno);
    while (::flock(dir.get(), LOCK_EX) != 0) {
        if (errno != EINTR) throw system_error(folder.string() + ": cannot lock", errno);
    }
    std::vector<Line> lines = read_lines(file);
    change(lines);
    write_lines(file, lines, dir.get());
}

std::string checked_key(std::string_view address) {
    std::string why = smtp::address_error(address);
    if (!why.empty()) throw std::runtime_error(std::string(address) + ": invalid address: " + why);
    return util::ascii_lower(address);
}

std::vector<Line>::iterator find_line(std::vector<Line>& lines, const std::string& key) {
    for (auto it = lines.begin(); it != lines.end(); ++it)
        if (it->account && it->account->address == key) return it;
    return lines.end();
}

}  // namespace

AccountFile::AccountFile(fs::path file) : file_(std::move(file)) {}

std::vector<Account> AccountFile::load() const {
    std::vector<Account> accounts;
    for (Line& l : read_lines(file_))
        if (l.account) accounts.push_back(std::move(*l.account));
    return accounts;
}

std::optional<Account> AccountFile::find(std::string_view address) const {
    std::string key = util::ascii_lower(address);
    for (Account& a : load())
        if (a.address == key) return std::move(a);
    return std::nullopt;
}

void AccountFile::add(std::string_view address, std::string_view password) {
    std::string key = checked_key(address);
    std::string hash = hash_password(password);
    modify(file_, [&](std::vector<Line>& lines) {
        if (find_line(lines, key) != lines.end()) throw std::runtime_error(key + ": account already exists");
        if (lines.empty()) lines.push_back(Line{std::string(kHeader), std::nullopt});
        lines.push_back(Line{key + ":" + hash, Account{key, hash}});
    });
}

void AccountFile::set_password(std::string_view address, std::string_view password) {
    std::string key = checked_key(address);
    std::string hash = hash_password(password);
    modify(file_, [&](std::vector<Line>& lines) {
        auto it = find_line(lines, key);
        if (it == lines.end()) throw std::runtime_error(key + ": no such account");
        *it = Line{key + ":" + hash, Account{key, hash}};
    });
}

void AccountFile::remove(std::string_view address) {
    std::string key = checked_key(address);
    modify(file_, [&](std::vector<Line>& lines) {
        auto it = find_line(lines, key);
        if (it == lines.end()) throw std::runtime_error(key + ": no such account");
        lines.erase(it);
    });
}

}  // namespace ferry::accounts
