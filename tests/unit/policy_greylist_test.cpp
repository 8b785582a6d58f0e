#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "policy/greylist.hpp"
#include "temp_dir_test.hpp"

namespace ferry::policy {
namespace {

using namespace std::chrono_literals;
using Kind = GreylistDecision::Kind;
using ms = std::chrono::milliseconds;

constexpr std::int64_t kStart = 1'750'000'000'000;   // June 2025, in ms since the epoch

Greylist::Time at(ms offset) { return Greylist::Time{} + ms{kStart} + offset; }

GreylistSettings settings(std::size_t max_entries = 1000) {
    GreylistSettings s;
    s.delay = 5min;
    s.retry_window = 48h;
    s.max_age = 35 * 24h;
    s.max_entries = max_entries;
    return s;
}

constexpr std::string_view kNet = "192.0.2.0/24";
constexpr std::string_view kFrom = "alice@example.org";
constexpr std::string_view kTo = "bob@example.test";

TEST(GreylistCheck, FirstTooEarlyRetriedKnown) {
    Greylist g(settings());
    const GreylistDecision first = g.check(kNet, kFrom, kTo, at(0ms));
    EXPECT_EQ(first.kind, Kind::first);
    EXPECT_FALSE(first.pass());
    EXPECT_EQ(first.wait, ms(5min));
    EXPECT_EQ(g.size(), 1u);

    const GreylistDecision early = g.check(kNet, kFrom, kTo, at(1min));
    EXPECT_EQ(early.kind, Kind::too_early);
    EXPECT_FALSE(early.pass());
    EXPECT_EQ(early.wait, ms(4min));   // counted from the first attempt, not from the last one
    EXPECT_EQ(g.check(kNet, kFrom, kTo, at(5min - 1ms)).wait, 1ms);

    const GreylistDecision retried = g.check(kNet, kFrom, kTo, at(5min));   // exactly the delay: passes
    EXPECT_EQ(retried.kind, Kind::retried);
    EXPECT_TRUE(retried.pass());
    EXPECT_EQ(retried.wait, 0ms);

    const GreylistDecision known = g.check(kNet, kFrom, kTo, at(10min));
    EXPECT_EQ(known.kind, Kind::known);
    EXPECT_TRUE(known.pass());
    EXPECT_EQ(g.size(), 1u);
}

TEST(GreylistCheck, EachPartOfTheTripletCounts) {
    Greylist g(settings());
    g.check(kNet, kFrom, kTo, at(0ms));
    ASSERT_EQ(g.check(kNet, kFrom, kTo, at(6min)).kind, Kind::retried);
    EXPECT_EQ(g.check("198.51.100.0/24", kFrom, kTo, at(6min)).kind, Kind::first);
    EXPECT_EQ(g.check(kNet, "carol@example.org", kTo, at(6min)).kind, Kind::first);
    EXPECT_EQ(g.check(kNet, "", kTo, at(6min)).kind, Kind::first);   // the null reverse path <> is a sender too
    EXPECT_EQ(g.check(kNet, kFrom, "dave@example.test", at(6min)).kind, Kind::first);
    // Parts are not run together: moving characters between parts gives another triplet.
    g.check("a", "bc", "d", at(0ms));
    EXPECT_EQ(g.check("ab", "c", "d", at(6min)).kind, Kind::first);
    EXPECT_EQ(g.check("a", "b", "cd", at(6min)).kind, Kind::first);
    EXPECT_EQ(g.check("a", "bc", "d", at(6min)).kind, Kind::retried);
}

TEST(GreylistCheck, CaseInsensitiveAsAWhole) {
    Greylist g(settings());
    g.check("spf:Example.ORG", "Alice@Example.ORG", "Bob@EXAMPLE.test", at(0ms));
    EXPECT_EQ(g.check("spf:example.org", "alice@example.org", "bob@example.test", at(6min)).kind, Kind::retried);
    EXPECT_EQ(g.check("SPF:EXAMPLE.ORG", "ALICE@EXAMPLE.ORG", "BOB@EXAMPLE.TEST", at(7min)).kind, Kind::known);
    EXPECT_EQ(g.size(), 1u);
}

TEST(GreylistCheck, ARetryAfterTheWindowStartsOver) {
    Greylist g(settings());
    g.check(kNet, kFrom, kTo, at(0ms));
    const GreylistDecision late = g.check(kNet, kFrom, kTo, at(48h + 1ms));
    EXPECT_EQ(late.kind, Kind::first);   // RFC 6647 2.2: too late, a new first attempt
    EXPECT_EQ(late.wait, ms(5min));
    EXPECT_EQ(g.check(kNet, kFrom, kTo, at(48h + 1min)).kind, Kind::too_early);
    EXPECT_EQ(g.check(kNet, kFrom, kTo, at(48h + 1ms + 5min)).kind, Kind::retried);
    EXPECT_EQ(g.size(), 1u);
}

TEST(GreylistCheck, ARetryAtTheEndOfTheWindowPasses) {
    Greylist g(settings());
    g.check(kNet, kFrom, kTo, at(0ms));
    EXPECT_EQ(g.check(kNet, kFrom, kTo, at(48h)).kind, Kind::retried);
}

TEST(GreylistCheck, KnownTripletsExpireMaxAgeAfterTheirLastUse) {
    Greylist g(settings());
    g.check(kNet, kFrom, kTo, at(0ms));
    ASSERT_EQ(g.check(kNet, kFrom, kTo, at(10min)).kind, Kind::retried);
    // Each use restarts max_age: 30 days, then 35 days later, it is still known.
    EXPECT_EQ(g.check(kNet, kFrom, kTo, at(10min + 30 * 24h)).kind, Kind::known);
    EXPECT_EQ(g.check(kNet, kFrom, kTo, at(10min + 65 * 24h)).kind, Kind::known);
    // Unused for longer than max_age: forgotten, greylisted again.
    const GreylistDecision forgotten = g.check(kNet, kFrom, kTo, at(10min + 100 * 24h + 1ms));
    EXPECT_EQ(forgotten.kind, Kind::first);
    EXPECT_EQ(forgotten.wait, ms(5min));
}

TEST(GreylistCheck, ClockSteppedBackNeverWaitsLongerThanTheDelay) {
    Greylist g(settings());
    g.check(kNet, kFrom, kTo, at(1h));
    const GreylistDecision d = g.check(kNet, kFrom, kTo, at(0ms));
    EXPECT_EQ(d.kind, Kind::too_early);
    EXPECT_EQ(d.wait, ms(5min));
}

TEST(GreylistBound, SizeStaysWithinMaxEntriesAndTheMostRecentlyUsedSurvive) {
    constexpr std::size_t kMax = 100;
    Greylist g(settings(kMax));
    g.check(kNet, kFrom, "kept@example.test", at(0ms));   // first seen before all others, but used throughout
    for (std::size_t i = 0; i < 2 * kMax; ++i) {
        g.check(kNet, kFrom, "r" + std::to_string(i) + "@example.test", at(ms(1 + i)));
        g.check(kNet, kFrom, "kept@example.test", at(ms(1 + i)));
        ASSERT_LE(g.size(), kMax) << i;
    }
    EXPECT_GE(g.size(), kMax * 9 / 10 - 1);   // trimmed down to 90%, not emptied
    // The most recently used 80 are still there (a retry too early, not a first attempt); checking them inserts
    // nothing, so nothing is trimmed meanwhile.
    EXPECT_EQ(g.check(kNet, kFrom, "kept@example.test", at(1s)).kind, Kind::too_early);
    for (std::size_t i = 2 * kMax - 80; i < 2 * kMax; ++i)
        EXPECT_EQ(g.check(kNet, kFrom, "r" + std::to_string(i) + "@example.test", at(1s)).kind, Kind::too_early) << i;
    // The oldest are gone.
    EXPECT_EQ(g.check(kNet, kFrom, "r0@example.test", at(1s)).kind, Kind::first);
    EXPECT_EQ(g.check(kNet, kFrom, "r1@example.test", at(1s)).kind, Kind::first);
}

TEST(GreylistBound, DeadEntriesGoBeforeLiveOnes) {
    Greylist g(settings(10));
    // Nine triplets seen at the start: dead after the 48 h window.
    for (int i = 0; i < 9; ++i) g.check(kNet, kFrom, "old" + std::to_string(i) + "@example.test", at(0ms));
    g.check(kNet, kFrom, "live@example.test", at(47h));
    ASSERT_EQ(g.size(), 10u);
    g.check(kNet, kFrom, "new@example.test", at(49h));   // over the bound: the nine dead ones go
    EXPECT_EQ(g.size(), 2u);
    EXPECT_EQ(g.check(kNet, kFrom, "live@example.test", at(49h)).kind, Kind::retried);
}

TEST(GreylistBound, LoweringMaxEntriesTrims) {
    Greylist g(settings(1000));
    for (int i = 0; i < 500; ++i) g.check(kNet, kFrom, "r" + std::to_string(i) + "@example.test", at(ms(i)));
    g.set_settings(settings(100));
    EXPECT_LE(g.size(), 100u);
    EXPECT_EQ(g.check(kNet, kFrom, "r499@example.test", at(1s)).kind, Kind::too_early);
}

TEST(GreylistBound, ATripletJustSeenIsKeptEvenWhenTheClockSteppedBack) {
    Greylist g(settings(10));
    for (int i = 0; i < 10; ++i) g.check(kNet, kFrom, "r" + std::to_string(i) + "@example.test", at(1h));
    // 1 h earlier than every entry's last use: by time alone the new one is the oldest, yet it was just recorded.
    EXPECT_EQ(g.check(kNet, kFrom, "new@example.test", at(0ms)).kind, Kind::first);
    EXPECT_LE(g.size(), 10u);
    EXPECT_EQ(g.check(kNet, kFrom, "new@example.test", at(1min)).kind, Kind::too_early);
}

TEST(GreylistBound, NoEntriesAllowedStillKeepsOne) {
    // max_entries = 0 counts as 1: a table that kept nothing would defer every retry for ever.
    Greylist g(settings(0));
    g.check(kNet, kFrom, "a@example.test", at(0ms));
    g.check(kNet, kFrom, "b@example.test", at(1ms));
    EXPECT_EQ(g.size(), 1u);
    EXPECT_EQ(g.check(kNet, kFrom, "b@example.test", at(6min)).kind, Kind::retried);
}

class GreylistFile : public ferry::testing::TempDirTest {
protected:
    std::filesystem::path file() const { return dir_ / "greylist"; }
    void write(const std::string& content) const {
        std::ofstream out(file(), std::ios::binary | std::ios::trunc);
        out << content;
    }
    std::string read() const {
        std::ifstream in(file(), std::ios::binary);
        std::stringstream s;
        s << in.rdbuf();
        return s.str();
    }
};

TEST_F(GreylistFile, AMissingFileIsAnEmptyTable) {
    Greylist g(settings());
    std::string error;
    EXPECT_TRUE(g.load(file(), at(0ms), error)) << error;
    EXPECT_EQ(g.size(), 0u);
    EXPECT_FALSE(g.dirty());
}

TEST_F(GreylistFile, SaveAndLoadKeepTheDecisions) {
    std::string error;
    {
        Greylist g(settings());
        EXPECT_FALSE(g.dirty());
        g.check(kNet, kFrom, "known@example.test", at(0ms));
        g.check(kNet, kFrom, "known@example.test", at(6min));   // now known
        g.check(kNet, kFrom, "pending@example.test", at(8min));  // first seen at 8 min
        EXPECT_TRUE(g.dirty());
        ASSERT_TRUE(g.save(file(), at(9min), error)) << error;
        EXPECT_FALSE(g.dirty());
    }
    // Atomic replacement: no temporary file left beside it, and the file is private (it maps who mails whom).
    std::size_t files = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir_)) ++files;
    EXPECT_EQ(files, 1u);
    struct stat st {};
    ASSERT_EQ(::stat(file().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);

    Greylist g(settings());
    ASSERT_TRUE(g.load(file(), at(10min), error)) << error;
    EXPECT_EQ(g.size(), 2u);
    EXPECT_FALSE(g.dirty());
    EXPECT_EQ(g.check(kNet, kFrom, "known@example.test", at(10min)).kind, Kind::known);
    EXPECT_TRUE(g.dirty());
    // The pending triplet keeps its first-seen time (8 min): at 10 min it waits 3 more, at 13 min it passes.
    const GreylistDecision pending = g.check(kNet, kFrom, "pending@example.test", at(10min));
    EXPECT_EQ(pending.kind, Kind::too_early);
    EXPECT_EQ(pending.wait, ms(3min));
    EXPECT_EQ(g.check(kNet, kFrom, "pending@example.test", at(13min)).kind, Kind::retried);
    EXPECT_EQ(g.check(kNet, kFrom, "unknown@example.test", at(13min)).kind, Kind::first);
}

TEST_F(GreylistFile, SavingAgainReplacesTheTable) {
    std::string error;
    Greylist g(settings());
    g.check(kNet, kFrom, "a@example.test", at(0ms));
    ASSERT_TRUE(g.save(file(), at(0ms), error)) << error;
    g.check(kNet, kFrom, "b@example.test", at(1ms));
    ASSERT_TRUE(g.save(file(), at(1ms), error)) << error;
    Greylist reloaded(settings());
    ASSERT_TRUE(reloaded.load(file(), at(2ms), error)) << error;
    EXPECT_EQ(reloaded.size(), 2u);
}

TEST_F(GreylistFile, LoadSkipsExpiredEntries) {
    std::string error;
    Greylist g(settings());
    g.check(kNet, kFrom, "known@example.test", at(0ms));
    g.check(kNet, kFrom, "known@example.test", at(6min));     // known, last used at 6 min
    g.check(kNet, kFrom, "pending@example.test", at(1h));    // pending since 1 h
    ASSERT_TRUE(g.save(file(), at(1h), error)) << error;

    Greylist within(settings());
    ASSERT_TRUE(within.load(file(), at(47h), error)) << error;
    EXPECT_EQ(within.size(), 2u);

    Greylist after_window(settings());   // the pending one's 48 h window has passed
    ASSERT_TRUE(after_window.load(file(), at(49h + 1ms), error)) << error;
    EXPECT_EQ(after_window.size(), 1u);
    EXPECT_EQ(after_window.check(kNet, kFrom, "known@example.test", at(49h + 1ms)).kind, Kind::known);
    EXPECT_EQ(after_window.check(kNet, kFrom, "pending@example.test", at(49h + 1ms)).kind, Kind::first);

    Greylist after_max_age(settings());   // the known one unused for more than 35 days
    ASSERT_TRUE(after_max_age.load(file(), at(6min + 35 * 24h + 1ms), error)) << error;
    EXPECT_EQ(after_max_age.size(), 0u);
}

TEST_F(GreylistFile, SaveLeavesOutExpiredEntries) {
    std::string error;
    Greylist g(settings());
    g.check(kNet, kFrom, "old@example.test", at(0ms));
    g.check(kNet, kFrom, "new@example.test", at(48h));
    ASSERT_TRUE(g.save(file(), at(48h + 1ms), error)) << error;
    Greylist reloaded(settings());
    ASSERT_TRUE(reloaded.load(file(), at(0ms), error)) << error;   // loaded "early" so nothing is skipped on load
    EXPECT_EQ(reloaded.size(), 1u);
}

TEST_F(GreylistFile, LoadKeepsTheBound) {
    std::string error;
    Greylist big(settings(1000));
    for (int i = 0; i < 500; ++i) big.check(kNet, kFrom, "r" + std::to_string(i) + "@example.test", at(ms(i)));
    ASSERT_TRUE(big.save(file(), at(1s), error)) << error;
    Greylist small(settings(100));
    ASSERT_TRUE(small.load(file(), at(1s), error)) << error;
    EXPECT_LE(small.size(), 100u);
    EXPECT_EQ(small.check(kNet, kFrom, "r499@example.test", at(1s)).kind, Kind::too_early);
}

TEST_F(GreylistFile, DamagedFilesAreRefusedAndWhatWasReadIsKept) {
    std::string error;
    {
        Greylist g(settings());
        for (int i = 0; i < 3; ++i) g.check(kNet, kFrom, "r" + std::to_string(i) + "@example.test", at(ms(i)));
        ASSERT_TRUE(g.save(file(), at(1s), error)) << error;
    }
    const std::string good = read();
    ASSERT_EQ(std::count(good.begin(), good.end(), '\n'), 5);   // header, 3 entries, end line
    const auto line_end = [&](int n) {   // the offset just after the n-th '\n'
        std::size_t at = 0;
        for (int i = 0; i < n; ++i) at = good.find('\n', at) + 1;
        return at;
    };
    struct Case {
        std::string name;
        std::string content;
        std::size_t kept;   // entries read before the damage
    };
    std::string binary(300, '\0');
    for (std::size_t i = 0; i < binary.size(); ++i) binary[i] = static_cast<char>(i * 37 + 11);
    std::string flipped = good;
    flipped[line_end(2) + 5] = 'x';   // a non-hex digit in the second entry's key
    const std::vector<Case> cases{
        {"empty", "", 0},
        {"binary garbage", binary, 0},
        {"another version", "ferry-greylist 2\n" + good.substr(line_end(1)), 0},
        {"cut in the middle of an entry", good.substr(0, line_end(2) + 10), 1},
        {"cut at a line end, no end line", good.substr(0, line_end(3)), 2},
        {"last line without its line end", good.substr(0, good.size() - 1), 3},
        {"end line with another count", good.substr(0, line_end(4)) + "end 7\n", 3},
        {"a damaged entry", flipped, 1},
        {"data after the end line", good + "extra\n", 3},
        {"a line far too long", good.substr(0, line_end(1)) + std::string(100000, '1') + "\n", 0},
        {"a NUL inside a line", good.substr(0, line_end(1)) + std::string("0123\0 1 1 1\n", 12), 0},
        {"fields out of range", good.substr(0, line_end(1)) + std::string(32, 'a') + " 99999999999999999999 1 0\n", 0},
        {"passed flag not 0 or 1", good.substr(0, line_end(1)) + std::string(32, 'a') + " 1 1 2\n", 0},
    };
    for (const Case& c : cases) {
        write(c.content);
        Greylist g(settings());
        std::string why;
        EXPECT_FALSE(g.load(file(), at(1s), why)) << c.name;
        EXPECT_FALSE(why.empty()) << c.name;
        EXPECT_EQ(g.size(), c.kept) << c.name << ": " << why;
    }
    write(good);
    Greylist g(settings());
    EXPECT_TRUE(g.load(file(), at(1s), error)) << error;
    EXPECT_EQ(g.size(), 3u);
}

TEST_F(GreylistFile, AFolderInsteadOfTheFileIsAnError) {
    std::filesystem::create_directory(file());
    Greylist g(settings());
    std::string error;
    EXPECT_FALSE(g.load(file(), at(0ms), error));
    EXPECT_NE(error.find("cannot read"), std::string::npos) << error;   // said as it is, not as a damaged file
}

TEST_F(GreylistFile, SaveIntoAMissingFolderFails) {
    Greylist g(settings());
    g.check(kNet, kFrom, kTo, at(0ms));
    std::string error;
    EXPECT_FALSE(g.save(dir_ / "missing" / "greylist", at(0ms), error));
    EXPECT_FALSE(error.empty());
    EXPECT_TRUE(g.dirty());   // still to be saved
}

}  // namespace
}  // namespace ferry::policy
