// Greylisting (RFC 6647): the first attempt of an unknown (source, sender, recipient) triplet is deferred; a retry
// after `delay` and within `retry_window` passes, and the triplet is then known for `max_age` after its last use.
// Pure apart from load()/save(): the caller gives the time, and the I/O side decides when to save.
//
// A triplet is stored as a 128-bit hash of its three parts (no addresses kept in the file, fixed-size entries).
// The table is bounded: past max_entries the entries used longest ago are dropped first.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace ferry::policy {

struct GreylistSettings {
    std::chrono::milliseconds delay{5 * 60 * 1000};                       // RFC 6647 2.1: minutes, not hours
    std::chrono::milliseconds retry_window{2LL * 24 * 3600 * 1000};       // a retry later than this starts over
    std::chrono::milliseconds max_age{35LL * 24 * 3600 * 1000};           // a passed triplet unused this long is forgotten
    std::size_t max_entries = 100000;                                     // 0 counts as 1
};

struct GreylistDecision {
    enum class Kind {
        known,       // passed before and used within max_age: pass
        retried,     // a retry after delay, within retry_window: pass (the triplet is now known)
        first,       // unknown (or expired, or its window passed): deferred, the triplet is recorded
        too_early,   // a retry before delay: deferred
    };
    Kind kind = Kind::first;
    bool pass() const { return kind == Kind::known || kind == Kind::retried; }
    std::chrono::milliseconds wait{0};   // deferred: how much longer until a retry passes
};

class Greylist {
public:
    using Time = std::chrono::system_clock::time_point;   // wall time: the table outlives the process

    explicit Greylist(GreylistSettings settings = {});
    ~Greylist();
    Greylist(Greylist&&) noexcept;
    Greylist& operator=(Greylist&&) noexcept;
    // On reload; entries are kept (trimmed if needed, with the latest time given to check() or load() as now).
    void set_settings(const GreylistSettings& settings);

    // `source`: the client's network ("192.0.2.0/24") or "spf:" + the SPF-pass domain; `sender`: the reverse
    // path ("" for <>); `recipient`: the forward path. Records what it decides.
    GreylistDecision check(std::string_view source, std::string_view sender, std::string_view recipient, Time now);

    std::size_t size() const;
    bool dirty() const;   // changed since the last load() or save()

    // The table file under data_dir: a line "ferry-greylist 1", one line per entry ("<32 hex digits of the key>
    // <first seen> <last used> <passed 0|1>", times in ms since the epoch), then "end <number of entries>".
    // load(): a missing file is an empty table (true); entries already expired at `now` are skipped; the entries
    // read are added to the table (a key in both keeps the later use); a damaged or cut file gives false, `error`
    // says why, and the entries read so far are kept.
    // save(): written to a temporary file, flushed (fsync) and renamed over `file`, so a crash leaves the old
    // table or the new one, never half of one.
    bool load(const std::filesystem::path& file, Time now, std::string& error);
    bool save(const std::filesystem::path& file, Time now, std::string& error);
    // save() in two halves, so the slow one (the write and its fsyncs) can run off the I/O thread: snapshot() is
    // the file's content for the table as it is now (and the table counts as saved); write_file() puts it in place
    // as save() does.
    std::string snapshot(Time now);
    static bool write_file(const std::filesystem::path& file, const std::string& content, std::string& error);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace ferry::policy
