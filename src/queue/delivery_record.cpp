#include "queue/delivery_record.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <charconv>

#include "util/fs.hpp"

namespace ferry::queue {

namespace {

constexpr std::string_view kNextKeyword = "next";
constexpr std::string_view kReleasedKeyword = "released";

// Reads records of any size, but not a runaway file: a record has a line per recipient and attempt.
constexpr std::size_t kMaxRecordSize = 16 * 1024 * 1024;

template <typename T>
std::optional<T> number(std::string_view s) {
    T value{};
    if (s.empty()) return std::nullopt;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
    return value;
}

bool has_control_break(std::string_view s) { return s.find_first_of("\t\r\n") != std::string_view::npos; }

}  // namespace

std::string one_line(std::string_view text) {
    std::string out(text);
    for (char& c : out)
        if (c == '\n' || c == '\r' || c == '\t') c = ' ';
    return out;
}

DeliveryRecord parse_delivery_record(std::string_view text) {
    DeliveryRecord out;
    // Every entry is appended whole, ending in "\n": text after the last line break is an append a crash cut short
    // (or a read cut at kMaxRecordSize). Taken as an entry, "alice@x>bob@y" cut to "alice@x" would make every copy
    // of alice final; dropped, at worst a copy is made twice.
    const auto last_break = text.rfind('\n');
    text = text.substr(0, last_break == std::string_view::npos ? 0 : last_break + 1);
    while (!text.empty()) {
        const auto eol = text.find('\n');
        std::string_view line = text.substr(0, eol);
        text = eol == std::string_view::npos ? std::string_view{} : text.substr(eol + 1);
        while (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.empty()) continue;
        if (line.front() != '\t') {
            out.final.emplace(line);
            continue;
        }
        // "\t<a>\t<b>\t<c>": the third field runs to the end of the line; "\treleased\t<time>" has two.
        const auto t2 = line.find('\t', 1);
        if (t2 == std::string_view::npos) continue;
        if (line.substr(1, t2 - 1) == kReleasedKeyword) {
            if (const auto when = number<long long>(line.substr(t2 + 1)); when && *when >= 0)
                out.released = static_cast<std::time_t>(*when);
            continue;
        }
        const auto t3 = line.find('\t', t2 + 1);
        if (t3 == std::string_view::npos) continue;
        const std::string_view first = line.substr(1, t2 - 1);
        const std::string_view second = line.substr(t2 + 1, t3 - t2 - 1);
        const std::string_view third = line.substr(t3 + 1);
        if (first == kNextKeyword) {
            const auto attempt = number<int>(second);
            const auto when = number<long long>(third);
            if (!attempt || !when || *attempt < 0 || *when < 0) continue;
            out.attempts = std::max(out.attempts, *attempt);
            out.next_attempt = static_cast<std::time_t>(*when);
            continue;
        }
        const auto attempt = number<int>(first);
        if (!attempt || *attempt < 0 || second.empty()) continue;
        out.attempts = std::max(out.attempts, *attempt);
        out.last_error[std::string(second)] = std::string(third);
    }
    return out;
}

std::string format_delivery_record(const DeliveryRecordUpdate& u) {
    std::string text;
    for (const auto& entry : u.final)
        if (!entry.empty() && entry.front() != '\t' && !has_control_break(entry)) text += entry + "\n";
    for (const auto& [rcpt, why] : u.deferred)
        if (!rcpt.empty() && !has_control_break(rcpt)) text += fmt::format("\t{}\t{}\t{}\n", u.attempt, rcpt, one_line(why));
    if (u.next_attempt)
        text += fmt::format("\t{}\t{}\t{}\n", kNextKeyword, u.attempt, static_cast<long long>(*u.next_attempt));
    if (u.released) text += fmt::format("\t{}\t{}\n", kReleasedKeyword, static_cast<long long>(*u.released));
    return text;
}

std::filesystem::path delivery_record_path(const std::filesystem::path& spool_file) {
    return spool_file.string() + ".done";
}

DeliveryRecord read_delivery_record(const std::filesystem::path& file) {
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return {};
    std::string text;
    char buffer[8192];
    for (;;) {
        const ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0 || text.size() > kMaxRecordSize) break;
        text.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return parse_delivery_record(text);
}

std::error_code append_delivery_record(const std::filesystem::path& file, const DeliveryRecordUpdate& update) {
    const std::string text = format_delivery_record(update);
    if (text.empty()) return {};
    const bool created = ::access(file.c_str(), F_OK) != 0;
    const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) return {errno, std::generic_category()};
    std::error_code ec;
    if (const auto written = util::write_all(fd, text)) ec = written;
    else if (::fdatasync(fd) != 0) ec = {errno, std::generic_category()};
    ::close(fd);
    if (!ec && created) ec = util::fsync_dir(file.parent_path());
    return ec;
}

void remove_delivery_record(const std::filesystem::path& file) { ::unlink(file.c_str()); }

}  // namespace ferry::queue
