#include "policy/greylist.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <unordered_map>
#include <vector>

#include "util/ascii.hpp"
#include "util/fs.hpp"

namespace ferry::policy {

namespace {

// The table file: this line, then one line per entry, then "end COUNT". The count catches a file cut at a line
// boundary, which every line on its own would not.
//   <32 hex digits: the triplet's key> <first seen, ms since the epoch> <last used, ms> <0|1: passed>
constexpr std::string_view kFileHeader = "ferry-greylist 1";
constexpr std::string_view kFileEnd = "end ";
// The longest valid line: 32 + 1 + 20 + 1 + 20 + 1 + 1 octets; anything longer is not ours.
constexpr std::size_t kMaxLine = 128;

using Key = std::array<std::uint8_t, 16>;

struct KeyHash {
    std::size_t operator()(const Key& k) const {
        std::size_t h = 0;
        std::memcpy(&h, k.data(), sizeof h);   // a SHA-256 prefix: already uniform
        return h;
    }
};

struct Entry {
    std::int64_t first_ms = 0;   // first attempt: the delay and the retry window count from here
    std::int64_t last_ms = 0;    // last attempt or use: max_age counts from here, and the bound drops the oldest
    bool passed = false;
};

std::int64_t to_ms(Greylist::Time t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// SHA-256 of the three parts, each after its length (so no choice of parts can be read as another), folded to
// ASCII lower case as a whole: no greylisting implementation treats the local part as case-sensitive, and a
// sender that changes the case between retries must not be greylisted twice.
Key triplet_key(std::string_view source, std::string_view sender, std::string_view recipient) {
    std::string material;
    material.reserve(source.size() + sender.size() + recipient.size() + 24);
    for (const std::string_view part : {source, sender, recipient}) {
        const std::uint64_t n = part.size();
        for (int i = 0; i < 8; ++i) material += static_cast<char>((n >> (8 * i)) & 0xff);
        for (const char c : part) material += util::ascii_lower(c);
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    Key key{};
    if (EVP_Digest(material.data(), material.size(), digest, &length, EVP_sha256(), nullptr) == 1 &&
        length >= key.size()) {
        std::copy_n(digest, key.size(), key.begin());
    }
    return key;
}

std::string hex(const Key& key) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(32);
    for (const std::uint8_t b : key) {
        out += kHex[b >> 4];
        out += kHex[b & 0x0f];
    }
    return out;
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

std::optional<Key> parse_key(std::string_view text) {
    if (text.size() != 32) return std::nullopt;
    Key key{};
    for (std::size_t i = 0; i < key.size(); ++i) {
        const int hi = hex_digit(text[2 * i]);
        const int lo = hex_digit(text[2 * i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        key[i] = static_cast<std::uint8_t>(hi << 4 | lo);
    }
    return key;
}

template <typename Int>
std::optional<Int> parse_number(std::string_view text) {
    Int value{};
    if (text.empty() || text.size() > 20 || !std::all_of(text.begin(), text.end(), util::is_digit)) return std::nullopt;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return value;
}

// Splits "a b c d" on single spaces into exactly `n` fields.
std::vector<std::string_view> fields(std::string_view line) {
    std::vector<std::string_view> out;
    std::size_t start = 0;
    while (true) {
        const auto space = line.find(' ', start);
        out.push_back(line.substr(start, space - start));
        if (space == std::string_view::npos) break;
        start = space + 1;
    }
    return out;
}

}  // namespace

struct Greylist::Impl {
    GreylistSettings settings;
    std::unordered_map<Key, Entry, KeyHash> entries;
    bool dirty = false;
    std::int64_t latest_ms = 0;   // the latest time given to check() or load(): "now" for set_settings()

    // RFC 6647 4.2: an unpassed triplet whose retry window has run out, and a passed one unused for max_age, are
    // forgotten (equal to unknown triplets).
    bool dead(const Entry& e, std::int64_t now) const {
        if (e.passed) return now - e.last_ms > settings.max_age.count();
        return now - e.first_ms > settings.retry_window.count();
    }

    std::size_t limit() const { return std::max<std::size_t>(settings.max_entries, 1); }

    // Over the bound: drop the dead entries, then the ones used longest ago down to 90% of it, so the O(n) work
    // happens once per tenth of the bound's insertions (amortized O(1) each) instead of at every one. `keep` (the
    // entry just added) stays whatever its time says, so a clock stepped back cannot drop it at once.
    void trim(std::int64_t now, const Key* keep = nullptr) {
        if (entries.size() <= limit()) return;
        const std::size_t target = limit() - limit() / 10;
        std::erase_if(entries, [&](const auto& item) { return dead(item.second, now); });
        dirty = true;
        if (entries.size() <= target) return;
        std::vector<std::pair<std::int64_t, Key>> by_use;
        by_use.reserve(entries.size());
        for (const auto& [key, entry] : entries)
            by_use.emplace_back(keep != nullptr && key == *keep ? std::numeric_limits<std::int64_t>::max() : entry.last_ms, key);
        // The `target` most recently used first; the rest go.
        std::nth_element(by_use.begin(), by_use.begin() + static_cast<std::ptrdiff_t>(target), by_use.end(),
                         [](const auto& a, const auto& b) { return a.first > b.first; });
        for (auto it = by_use.begin() + static_cast<std::ptrdiff_t>(target); it != by_use.end(); ++it)
            entries.erase(it->second);
    }
};

Greylist::Greylist(GreylistSettings settings) : impl_(std::make_unique<Impl>()) { impl_->settings = settings; }
Greylist::~Greylist() = default;
Greylist::Greylist(Greylist&&) noexcept = default;
Greylist& Greylist::operator=(Greylist&&) noexcept = default;

void Greylist::set_settings(const GreylistSettings& settings) {
    impl_->settings = settings;
    impl_->trim(impl_->latest_ms);
}

GreylistDecision Greylist::check(std::string_view source, std::string_view sender, std::string_view recipient, Time now) {
    const std::int64_t t = to_ms(now);
    const GreylistSettings& s = impl_->settings;
    impl_->dirty = true;
    impl_->latest_ms = std::max(impl_->latest_ms, t);
    const Key key = triplet_key(source, sender, recipient);
    auto it = impl_->entries.find(key);
    if (it != impl_->entries.end() && !impl_->dead(it->second, t)) {
        Entry& e = it->second;
        e.last_ms = std::max(e.last_ms, t);
        if (e.passed) return {GreylistDecision::Kind::known, std::chrono::milliseconds{0}};
        // A clock stepped back (before the first attempt) counts as no time passed, not as a negative wait.
        const std::int64_t waited = std::max<std::int64_t>(t - e.first_ms, 0);
        if (waited < s.delay.count())
            return {GreylistDecision::Kind::too_early, std::chrono::milliseconds{s.delay.count() - waited}};
        e.passed = true;   // RFC 6647 2.2: a retry after the delay passes, and the triplet is remembered
        return {GreylistDecision::Kind::retried, std::chrono::milliseconds{0}};
    }
    // Unknown, or forgotten (a retry after the window starts over: RFC 6647 2.2).
    if (it != impl_->entries.end()) {
        it->second = Entry{t, t, false};
    } else {
        impl_->entries.emplace(key, Entry{t, t, false});
        impl_->trim(t, &key);
    }
    return {GreylistDecision::Kind::first, s.delay};
}

std::size_t Greylist::size() const { return impl_->entries.size(); }
bool Greylist::dirty() const { return impl_->dirty; }

bool Greylist::load(const std::filesystem::path& file, Time now, std::string& error) {
    const std::int64_t t = to_ms(now);
    impl_->latest_ms = std::max(impl_->latest_ms, t);
    error.clear();
    errno = 0;
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        const int open_errno = errno;
        std::error_code ec;
        if (!std::filesystem::exists(file, ec) && !ec) {   // not written yet: an empty table
            impl_->dirty = false;
            return true;
        }
        error = file.string() + ": cannot open: " + (open_errno != 0 ? std::strerror(open_errno) : "unknown error");
        return false;
    }
    // Reads one line without its '\n'; false at the end of the file, on a line too long to be ours, or on a last
    // line without its '\n' (a cut file).
    char buffer[kMaxLine + 2];
    std::size_t line_number = 0;
    bool ended = false;
    auto read_line = [&](std::string_view& line) -> bool {
        if (!in.getline(buffer, sizeof buffer)) {
            if (in.bad())
                error = "cannot read: " + std::string(std::strerror(errno));   // e.g. a folder where the file should be
            else if (in.gcount() > 0 || !in.eof())
                error = "line " + std::to_string(line_number + 1) + ": too long";
            return false;
        }
        if (in.eof()) {   // got a line but hit the end before its '\n'
            error = "line " + std::to_string(line_number + 1) + ": cut (no line end)";
            return false;
        }
        ++line_number;
        line = std::string_view(buffer, static_cast<std::size_t>(in.gcount()) - 1);
        return true;
    };
    auto fail = [&](const std::string& why) {
        error = file.string() + ": " + why;
        impl_->trim(t);
        impl_->dirty = false;
        return false;
    };
    std::string_view line;
    if (!read_line(line)) return fail(error.empty() ? "empty file" : error);
    if (line != kFileHeader) return fail("not a greylist file of this version (first line is not \"" +
                                         std::string(kFileHeader) + "\")");
    std::uint64_t count = 0;
    while (true) {
        if (!read_line(line)) return fail(error.empty() ? "cut: no end line after " + std::to_string(count) + " entries" : error);
        if (line.starts_with(kFileEnd)) {
            const auto expected = parse_number<std::uint64_t>(line.substr(kFileEnd.size()));
            if (!expected || *expected != count)
                return fail("line " + std::to_string(line_number) + ": the end line does not match the " +
                            std::to_string(count) + " entries read");
            ended = true;
            break;
        }
        const auto parts = fields(line);
        const auto key = parts.size() == 4 ? parse_key(parts[0]) : std::nullopt;
        const auto first = parts.size() == 4 ? parse_number<std::int64_t>(parts[1]) : std::nullopt;
        const auto last = parts.size() == 4 ? parse_number<std::int64_t>(parts[2]) : std::nullopt;
        if (!key || !first || !last || (parts[3] != "0" && parts[3] != "1"))
            return fail("line " + std::to_string(line_number) + ": not an entry");
        ++count;
        const Entry entry{*first, *last, parts[3] == "1"};
        if (impl_->dead(entry, t)) continue;   // expired while we were down
        auto [it, inserted] = impl_->entries.emplace(*key, entry);
        if (!inserted && entry.last_ms > it->second.last_ms) it->second = entry;
        // Trimming as we go keeps a file larger than the bound from growing the table past it meanwhile.
        if (impl_->entries.size() > impl_->limit()) impl_->trim(t);
    }
    if (ended && in.peek() != std::ifstream::traits_type::eof()) return fail("data after the end line");
    impl_->trim(t);
    impl_->dirty = false;
    return true;
}

bool Greylist::save(const std::filesystem::path& file, Time now, std::string& error) {
    const bool was_dirty = impl_->dirty;
    if (write_file(file, snapshot(now), error)) return true;
    impl_->dirty = was_dirty;   // still to be saved
    return false;
}

std::string Greylist::snapshot(Time now) {
    const std::int64_t t = to_ms(now);
    std::string content;
    content.reserve(impl_->entries.size() * 64 + 64);
    content += kFileHeader;
    content += '\n';
    std::uint64_t count = 0;
    for (const auto& [key, entry] : impl_->entries) {
        if (impl_->dead(entry, t)) continue;
        content += hex(key);
        content += ' ';
        content += std::to_string(entry.first_ms);
        content += ' ';
        content += std::to_string(entry.last_ms);
        content += entry.passed ? " 1\n" : " 0\n";
        ++count;
    }
    content += kFileEnd;
    content += std::to_string(count);
    content += '\n';
    impl_->dirty = false;
    return content;
}

bool Greylist::write_file(const std::filesystem::path& file, const std::string& content, std::string& error) {
    // Temporary file in the same folder (rename is atomic only within a filesystem), fsync, rename, fsync of the
    // folder: a crash leaves the old table or the new one.
    const std::filesystem::path folder = file.parent_path().empty() ? std::filesystem::path(".") : file.parent_path();
    std::string tmp = (folder / ("." + file.filename().string() + ".XXXXXX")).string();
    const int fd = ::mkostemp(tmp.data(), O_CLOEXEC);
    if (fd < 0) {
        error = tmp + ": cannot create: " + std::strerror(errno);
        return false;
    }
    auto fail = [&](const std::string& what, std::error_code ec) {
        error = what + ": " + ec.message();
        ::unlink(tmp.c_str());
        return false;
    };
    if (::fchmod(fd, 0600) != 0) {
        const auto ec = util::last_error();
        ::close(fd);
        return fail(tmp + ": cannot chmod", ec);
    }
    if (const auto ec = util::write_all(fd, content)) {
        ::close(fd);
        return fail(tmp + ": cannot write", ec);
    }
    if (::fsync(fd) != 0) {
        const auto ec = util::last_error();
        ::close(fd);
        return fail(tmp + ": cannot fsync", ec);
    }
    if (::close(fd) != 0) return fail(tmp + ": cannot close", util::last_error());
    if (::rename(tmp.c_str(), file.c_str()) != 0) return fail(file.string() + ": cannot rename into place", util::last_error());
    if (const auto ec = util::fsync_dir(folder)) {
        error = folder.string() + ": cannot fsync: " + ec.message();
        return false;
    }
    return true;
}

}  // namespace ferry::policy
