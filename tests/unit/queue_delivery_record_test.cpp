#include "queue/delivery_record.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include "temp_dir_test.hpp"

using namespace ferry::queue;

namespace {

std::string line_of(std::string_view text) { return std::string(text) + "\n"; }

// A record as Ferry wrote it before the "next" line: final recipients, a final copy, deferrals.
constexpr std::string_view kOldFormat =
    "carol@example.test\n"
    "sales@example.test>alice@example.test\n"
    "\t1\tdave@remote.test\tconnect to 127.0.0.1:25: Connection refused\n"
    "\t2\tdave@remote.test\tconnect to 127.0.0.1:25: Connection refused again\n";

TEST(DeliveryRecord, ReadsTheFormatWrittenBeforeTheUpgrade) {
    const DeliveryRecord r = parse_delivery_record(kOldFormat);
    EXPECT_TRUE(r.is_final("carol@example.test"));
    EXPECT_TRUE(r.is_final("sales@example.test", "alice@example.test"));
    EXPECT_FALSE(r.is_final("sales@example.test"));
    EXPECT_FALSE(r.is_final("dave@remote.test"));
    EXPECT_EQ(r.attempts, 2);
    EXPECT_EQ(r.last_error.at("dave@remote.test"), "connect to 127.0.0.1:25: Connection refused again");
    EXPECT_FALSE(r.next_attempt.has_value());   // due at once, as before the upgrade
    EXPECT_FALSE(r.released.has_value());       // a held message stays held
}

TEST(DeliveryRecord, FormatReadsBackWithTheNextAttempt) {
    DeliveryRecordUpdate first{{"a@example.test", "list@example.test>b@example.test"}, 1,
                               {{"c@remote.test", "451 4.3.0 try\tlater\r\n"}}, 1795430789, std::nullopt};
    DeliveryRecordUpdate second{{}, 2, {{"c@remote.test", "421 busy"}}, 1795431389, std::nullopt};
    const std::string text = format_delivery_record(first) + format_delivery_record(second);
    EXPECT_EQ(format_delivery_record(first),
              "a@example.test\nlist@example.test>b@example.test\n\t1\tc@remote.test\t451 4.3.0 try later  \n"
              "\tnext\t1\t1795430789\n");
    const DeliveryRecord r = parse_delivery_record(text);
    EXPECT_TRUE(r.is_final("a@example.test"));
    EXPECT_TRUE(r.is_final("list@example.test", "b@example.test"));
    EXPECT_EQ(r.attempts, 2);
    EXPECT_EQ(r.last_error.at("c@remote.test"), "421 busy");
    ASSERT_TRUE(r.next_attempt.has_value());
    EXPECT_EQ(*r.next_attempt, 1795431389);   // the later line wins
}

TEST(DeliveryRecord, SkipsLinesItDoesNotUnderstand) {
    const DeliveryRecord r = parse_delivery_record(
        "\n\tx\tc@remote.test\twhy\n\t3\n\t3\t\twhy\n\tnext\tx\t5\n\tnext\t4\t-1\n\tnext\t4\t12a\n\t-2\tc@r.test\tno\n"
        "ok@example.test\r\n");
    EXPECT_EQ(r.attempts, 0);
    EXPECT_TRUE(r.last_error.empty());
    EXPECT_FALSE(r.next_attempt.has_value());
    EXPECT_EQ(r.final, std::set<std::string>{"ok@example.test"});
}

// An append cut short by a crash leaves a last line without its "\n": "list@example.test>alice@example.test"
// cut to "list@example.test" must not make every copy of the list final.
TEST(DeliveryRecord, IgnoresALastLineWithoutItsLineBreak) {
    const DeliveryRecord r = parse_delivery_record("carol@example.test\nlist@example.test");
    EXPECT_TRUE(r.is_final("carol@example.test"));
    EXPECT_FALSE(r.is_final("list@example.test"));
    EXPECT_FALSE(r.is_final("list@example.test", "alice@example.test"));
    EXPECT_TRUE(parse_delivery_record("\t2\tdave@remote.test\tcut sh").last_error.empty());
}

TEST(DeliveryRecord, NeverWritesAnAddressThatWouldBreakTheFormat) {
    const DeliveryRecordUpdate u{{"bad\tone@example.test", "bad\none@example.test"}, 1, {{"x\ny@example.test", "why"}},
                                 std::nullopt, std::nullopt};
    EXPECT_EQ(format_delivery_record(u), "");
}

// `ferry queue release`: a held message is delivered once its record says so.
TEST(DeliveryRecord, ReleasedLineReadsBackBesideTheOthers) {
    DeliveryRecordUpdate release;
    release.released = 1795430789;
    EXPECT_FALSE(release.empty());
    EXPECT_EQ(format_delivery_record(release), "\treleased\t1795430789\n");
    const DeliveryRecord r = parse_delivery_record(std::string(kOldFormat) + format_delivery_record(release));
    EXPECT_EQ(r.released, std::optional<std::time_t>(1795430789));
    EXPECT_EQ(r.attempts, 2);                                  // not an attempt
    EXPECT_EQ(r.final.size(), 2u);                             // not a final recipient
    EXPECT_EQ(r.last_error.size(), 1u);                        // not a deferral
    EXPECT_FALSE(r.is_final("released"));
}

TEST(DeliveryRecord, SkipsMalformedReleasedLines) {
    for (const char* line : {"\treleased\t\n", "\treleased\tsoon\n", "\treleased\t-5\n", "\treleased\t5\tx\n",
                             "\treleased\n", "\treleased\t7"})
        EXPECT_FALSE(parse_delivery_record(line).released.has_value()) << line;
    EXPECT_TRUE(parse_delivery_record(line_of("\treleased\t0")).released.has_value());
}

class DeliveryRecordFileTest : public ferry::testing::TempDirTest {};

TEST_F(DeliveryRecordFileTest, AppendsAndReadsBack) {
    const auto file = delivery_record_path(dir_ / "1J0TT776IJT0000");
    EXPECT_EQ(file.filename(), "1J0TT776IJT0000.done");
    EXPECT_EQ(read_delivery_record(file).attempts, 0);   // missing file: empty record
    {
        std::ofstream(file) << kOldFormat;   // a spool from before the upgrade
    }
    ASSERT_FALSE(append_delivery_record(file, {{"dave@remote.test"}, 3, {}, std::nullopt, std::nullopt}));
    ASSERT_FALSE(append_delivery_record(file, {{}, 4, {{"erin@remote.test", "timeout"}}, 1795430789, std::nullopt}));
    const DeliveryRecord r = read_delivery_record(file);
    EXPECT_TRUE(r.is_final("carol@example.test"));
    EXPECT_TRUE(r.is_final("dave@remote.test"));
    EXPECT_EQ(r.attempts, 4);
    EXPECT_EQ(r.last_error.at("erin@remote.test"), "timeout");
    EXPECT_EQ(r.next_attempt, std::optional<std::time_t>(1795430789));
    EXPECT_FALSE(r.released.has_value());
    DeliveryRecordUpdate release;
    release.released = 1795430800;
    ASSERT_FALSE(append_delivery_record(file, release));
    EXPECT_EQ(read_delivery_record(file).released, std::optional<std::time_t>(1795430800));
    EXPECT_EQ(read_delivery_record(file).attempts, 4);
    remove_delivery_record(file);
    EXPECT_FALSE(std::filesystem::exists(file));
}

}  // namespace
