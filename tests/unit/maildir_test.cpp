#include "delivery/maildir.hpp"

#include <gtest/gtest.h>

#include "temp_dir_test.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using namespace ferry;

namespace {

class MaildirTest : public ferry::testing::TempDirTest {
protected:
    // A content file the copies are made from.
    int content(const std::string& text) {
        const fs::path path = dir_ / "content";
        std::ofstream(path, std::ios::binary) << text;
        const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        EXPECT_GE(fd, 0);
        return fd;
    }
    static std::string read(const fs::path& path) {
        std::ifstream in(path, std::ios::binary);
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }
    static std::size_t count(const fs::path& dir) {
        std::size_t n = 0;
        for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++n;
        return n;
    }
};

TEST(MaildirName, SameForEveryAttemptAndDistinctPerMessage) {
    const auto a = delivery::maildir_name("1J0UBRC4KC200GS", 1795446498, "mx.example.test", 1234);
    EXPECT_EQ(a, "1795446498.1J0UBRC4KC200GS.mx.example.test,S=1234");
    EXPECT_EQ(a, delivery::maildir_name("1J0UBRC4KC200GS", 1795446498, "mx.example.test", 1234));
    EXPECT_NE(a, delivery::maildir_name("1J0UBRC4KC200GT", 1795446498, "mx.example.test", 1234));
    // Maildir names may not hold '/' or ':' (Dovecot's encoding).
    EXPECT_EQ(delivery::maildir_name("ID", 1, "a/b:c", 2), "1.ID.a\\057b\\072c,S=2");
}

TEST_F(MaildirTest, RepeatedDeliveryAfterACrashLeavesOneCopy) {
    const int fd = content("prefix|Subject: x\r\n\r\nbody\r\n");
    const fs::path box = dir_ / "mail" / "alice";
    const std::string name = delivery::maildir_name("1J0UBRC4KC200GS", 1795446498, "mx.example.test", 42);
    EXPECT_FALSE(delivery::maildir_has(box, name));

    delivery::MaildirFile first;
    ASSERT_TRUE(delivery::write_maildir_file(box, name, "Delivered-To: a\r\n", fd, 7, 20, false, first).ok);
    ASSERT_TRUE(delivery::publish_maildir_file(first).ok);
    EXPECT_EQ(read(box / "new" / name), "Delivered-To: a\r\nSubject: x\r\n\r\nbody\r\n");
    EXPECT_TRUE(delivery::maildir_has(box, name));

    // The same copy again (the record of the first one was lost): a success, and still one file.
    delivery::MaildirFile again;
    ASSERT_TRUE(delivery::write_maildir_file(box, name, "Delivered-To: a\r\n", fd, 7, 20, false, again).ok);
    ASSERT_TRUE(delivery::publish_maildir_file(again).ok);
    EXPECT_EQ(count(box / "new"), 1u);
    EXPECT_EQ(count(box / "tmp"), 0u);
    ::close(fd);
}

TEST_F(MaildirTest, CopyMovedToCurByAReaderIsFound) {
    const fs::path box = dir_ / "box";
    fs::create_directories(box / "new");
    fs::create_directories(box / "cur");
    const std::string name = delivery::maildir_name("1J0UBRC4KC200GS", 1795446498, "mx.example.test", 42);
    const std::string unique = "1795446498.1J0UBRC4KC200GS.mx.example.test";
    std::ofstream(box / "cur" / "1795446498.1J0UBRC4KC200GT.mx.example.test,S=42:2,S");   // another message
    EXPECT_FALSE(delivery::maildir_has(box, name));
    std::ofstream(box / "cur" / (unique + ",S=42,W=44:2,S"));   // Dovecot, seen
    EXPECT_TRUE(delivery::maildir_has(box, name));
    fs::remove(box / "cur" / (unique + ",S=42,W=44:2,S"));
    std::ofstream(box / "cur" / (unique + ":2,"));
    EXPECT_TRUE(delivery::maildir_has(box, name));
}

TEST_F(MaildirTest, HalfWrittenCopyInTmpIsOverwritten) {
    const int fd = content("0123456789");
    const fs::path box = dir_ / "box";
    const std::string name = delivery::maildir_name("ID", 1, "h", 12);
    for (const char* sub : {"tmp", "new", "cur"}) fs::create_directories(box / sub);
    std::ofstream(box / "tmp" / name) << "garbage from a cut attempt, longer than the copy";
    delivery::MaildirFile f;
    ASSERT_TRUE(delivery::write_maildir_file(box, name, "H\n", fd, 0, 10, true, f).ok);
    ASSERT_TRUE(delivery::publish_maildir_file(f).ok);
    EXPECT_EQ(read(box / "new" / name), "H\n0123456789");
    ::close(fd);
}

TEST_F(MaildirTest, MailboxWithTmpButNoNewStillGetsTheCopy) {
    // What a delivery saw when another one was creating the same Maildir: tmp/ there, new/ not yet.
    const int fd = content("0123456789");
    const fs::path box = dir_ / "box";
    fs::create_directories(box / "tmp");
    const std::string name = delivery::maildir_name("ID", 1, "h", 12);
    delivery::MaildirFile f;
    ASSERT_TRUE(delivery::write_maildir_file(box, name, "H\n", fd, 0, 10, false, f).ok);
    const auto published = delivery::publish_maildir_file(f);
    EXPECT_TRUE(published.ok) << published.reason;
    EXPECT_EQ(read(box / "new" / name), "H\n0123456789");
    ::close(fd);
}

TEST_F(MaildirTest, FirstDeliveriesAtOnceAllLand) {
    // Many first deliveries to one new Maildir at the same time: none may find tmp/ before new/ exists.
    const int fd = content("0123456789");
    std::atomic<int> failed{0};
    std::size_t landed = 0;
    constexpr int rounds = 200, writers = 16;
    for (int round = 0; round < rounds; ++round) {
        const fs::path box = dir_ / ("box" + std::to_string(round));
        std::vector<std::thread> threads;
        for (int i = 0; i < writers; ++i)
            threads.emplace_back([&, i] {
                const std::string name = delivery::maildir_name("ID" + std::to_string(i), 1, "h", 12);
                delivery::MaildirFile f;
                if (!delivery::write_maildir_file(box, name, "H\n", fd, 0, 10, false, f).ok ||
                    !delivery::publish_maildir_file(f).ok)
                    ++failed;
            });
        for (auto& t : threads) t.join();
        landed += count(box / "new");
    }
    EXPECT_EQ(failed.load(), 0);
    EXPECT_EQ(landed, std::size_t{rounds * writers});
    ::close(fd);
}

}  // namespace
