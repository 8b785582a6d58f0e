#include "delivery/maildir_batch.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "temp_dir_test.hpp"

namespace fs = std::filesystem;
using namespace ferry::delivery;

namespace {

class MaildirBatchTest : public ferry::testing::TempDirTest {
protected:
    void SetUp() override {
        TempDirTest::SetUp();
        const fs::path path = dir_ / "spool-file";
        std::ofstream(path, std::ios::binary) << "ENVELOPE\nSubject: hi\r\n\r\nbody\r\nTRAILER";
        fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        ASSERT_GE(fd_, 0);
    }
    void TearDown() override {
        ::close(fd_);
        TempDirTest::TearDown();
    }
    // A copy of the content (after "ENVELOPE\n", before "TRAILER") into `box`.
    MaildirCopy copy(const fs::path& box, const std::string& name, bool look = false) const {
        return MaildirCopy{box, name, "Delivered-To: x\r\n", fd_, 9, 21, look};
    }
    static std::string read(const fs::path& path) {
        std::ifstream in(path, std::ios::binary);
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }
    static std::size_t count(const fs::path& dir) {
        std::size_t n = 0;
        std::error_code ec;
        for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) ++n;
        return n;
    }
    int fd_ = -1;
};

void expect_batch_publishes(const fs::path& dir, int fd, MaildirBatch::Sync sync) {
    MaildirBatch batch(sync);
    const fs::path alice = dir / "mail" / "example.test" / "alice", bob = dir / "mail" / "example.test" / "bob";
    const MaildirCopy a{alice, "100.ID1.mx,S=42", "Delivered-To: alice\r\n", fd, 9, 21, false};
    const MaildirCopy b{bob, "100.ID1.mx,S=40", "Delivered-To: bob\r\n", fd, 9, 21, false};
    EXPECT_EQ(batch.add(a), 0u);
    EXPECT_EQ(batch.add(b), 1u);
    // Written, not visible: nothing is in new/ before the content is durable.
    EXPECT_TRUE(fs::exists(alice / "tmp" / a.name));
    EXPECT_FALSE(fs::exists(alice / "new" / a.name));
    const auto results = batch.commit();
    ASSERT_EQ(results.size(), 2u);
    for (const auto& r : results) {
        EXPECT_TRUE(r.ok) << r.reason;
        EXPECT_FALSE(r.landed_before);
    }
    EXPECT_FALSE(batch.publish_sync_error());
    std::ifstream in(alice / "new" / a.name, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    EXPECT_EQ(ss.str(), "Delivered-To: alice\r\nSubject: hi\r\n\r\nbody\r\n");
    EXPECT_TRUE(fs::exists(bob / "new" / b.name));
    EXPECT_TRUE(fs::is_empty(alice / "tmp"));
    EXPECT_TRUE(fs::is_empty(bob / "tmp"));
}

TEST_F(MaildirBatchTest, WritesIntoTmpThenPublishesIntoNewOnCommit) {
    expect_batch_publishes(dir_ / "fs", fd_, MaildirBatch::Sync::filesystem);
    expect_batch_publishes(dir_ / "files", fd_, MaildirBatch::Sync::files);
}

TEST_F(MaildirBatchTest, CopyStillInNewAfterACrashIsNotMadeTwice) {
    const fs::path box = dir_ / "box";
    {
        MaildirBatch first(MaildirBatch::Sync::filesystem);
        first.add(copy(box, "100.ID2.mx,S=42"));
        ASSERT_TRUE(first.commit()[0].ok);
    }
    // The crash came before the spool recorded it: the attempt is repeated, with or without recovery's look.
    for (const bool look : {false, true}) {
        MaildirBatch again(MaildirBatch::Sync::filesystem);
        again.add(copy(box, "100.ID2.mx,S=42", look));
        const auto r = again.commit();
        EXPECT_TRUE(r[0].ok) << r[0].reason;
        EXPECT_EQ(r[0].landed_before, look);
        EXPECT_EQ(count(box / "new"), 1u);
        EXPECT_TRUE(fs::is_empty(box / "tmp"));
    }
}

TEST_F(MaildirBatchTest, CopyAReaderMovedToCurIsFoundWhenRecovered) {
    const fs::path box = dir_ / "box";
    for (const char* sub : {"tmp", "new", "cur"}) fs::create_directories(box / sub);
    std::ofstream(box / "cur" / "100.ID3.mx,S=42:2,S") << "read already";
    MaildirBatch batch(MaildirBatch::Sync::filesystem);
    batch.add(copy(box, "100.ID3.mx,S=42", true));
    const auto r = batch.commit();
    EXPECT_TRUE(r[0].ok);
    EXPECT_TRUE(r[0].landed_before);
    EXPECT_TRUE(fs::is_empty(box / "new"));   // not delivered a second time
    EXPECT_TRUE(fs::is_empty(box / "tmp"));
}

TEST_F(MaildirBatchTest, ACopyThatCannotBeWrittenFailsAloneAndTemporarily) {
    std::ofstream(dir_ / "not-a-dir") << "file";
    MaildirBatch batch(MaildirBatch::Sync::filesystem);
    batch.add(copy(dir_ / "not-a-dir" / "box", "100.ID4.mx,S=42"));
    batch.add(copy(dir_ / "good", "100.ID4.mx,S=42"));
    EXPECT_FALSE(batch.result(0).ok);
    const auto r = batch.commit();
    EXPECT_FALSE(r[0].ok);
    EXPECT_FALSE(r[0].permanent);   // an operator can fix the mailbox: deferred, not bounced
    EXPECT_FALSE(r[0].reason.empty());
    EXPECT_TRUE(r[1].ok);
    EXPECT_TRUE(fs::exists(dir_ / "good" / "new" / "100.ID4.mx,S=42"));
}

TEST_F(MaildirBatchTest, CopiesNeverCommittedLeaveNothingBehind) {
    {
        MaildirBatch batch(MaildirBatch::Sync::filesystem);
        batch.add(copy(dir_ / "box", "100.ID5.mx,S=42"));
        EXPECT_EQ(count(dir_ / "box" / "tmp"), 1u);
    }
    EXPECT_TRUE(fs::is_empty(dir_ / "box" / "tmp"));
    EXPECT_TRUE(fs::is_empty(dir_ / "box" / "new"));
}

}  // namespace
