#include "spool/spool.hpp"
#include "spool/trailer.hpp"

#include <gtest/gtest.h>

#include "temp_dir_test.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <fstream>
#include <future>
#include <sstream>

namespace fs = std::filesystem;
using namespace ferry;
using spool::kTrailerSize;

namespace {

TEST(SpoolTrailer, RoundTrip) {
    const spool::Trailer t{0x0123456789abcdefULL, 0xcbf43926U};
    const std::string text = spool::make_trailer(t);
    ASSERT_EQ(text.size(), kTrailerSize);
    EXPECT_EQ(text, "Ferry-End: 0123456789abcdef cbf43926\n");
    const auto back = spool::parse_trailer(text);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->length, t.length);
    EXPECT_EQ(back->crc, t.crc);
}

TEST(SpoolTrailer, RejectsAnythingElse) {
    const std::string good = "Ferry-End: 0000000000000010 0000abcd\n";
    ASSERT_TRUE(spool::parse_trailer(good));
    EXPECT_FALSE(spool::parse_trailer(good.substr(1)));                     // too short
    EXPECT_FALSE(spool::parse_trailer("x" + good.substr(1)));               // wrong prefix
    EXPECT_FALSE(spool::parse_trailer("Ferry-End: 0000000000000010 0000ABCD\n"));   // upper case
    EXPECT_FALSE(spool::parse_trailer("Ferry-End: 000000000000001g 0000abcd\n"));   // not hex
    EXPECT_FALSE(spool::parse_trailer("Ferry-End: 0000000000000010-0000abcd\n"));   // separator
    EXPECT_FALSE(spool::parse_trailer("Ferry-End: 0000000000000010 0000abcd\r"));   // terminator
    EXPECT_FALSE(spool::parse_trailer(std::string(kTrailerSize, '\0')));
}

TEST(SpoolTrailer, Crc32IsTheStandardOneAndRuns) {
    EXPECT_EQ(spool::crc32_update(0, "123456789"), 0xcbf43926U);   // the CRC-32 check value
    EXPECT_EQ(spool::crc32_update(spool::crc32_update(0, "1234"), "56789"), 0xcbf43926U);
    EXPECT_EQ(spool::crc32_update(0, ""), 0U);
}

class SpoolTest : public ferry::testing::TempDirTest {
protected:
    static spool::Envelope envelope(const std::string& id) {
        spool::Envelope e;
        e.queue_id = id;
        e.arrival = 1700000000;
        e.client = "192.0.2.1";
        e.sender = "a@example.test";
        e.recipients = {"b@example.test"};
        return e;
    }
    static std::string read(const fs::path& p) {
        std::ifstream in(p, std::ios::binary);
        std::stringstream s;
        s << in.rdbuf();
        return s.str();
    }
    static void write(const fs::path& p, const std::string& text) { std::ofstream(p, std::ios::binary) << text; }

    // Receives and commits one message through the real committer; returns the commit result.
    std::error_code commit(spool::Spool& sp, const std::string& id, const std::string& content) {
        spool::Committer committer(sp);
        auto opened = spool::MessageWriter::open(sp, envelope(id));
        EXPECT_FALSE(opened.error);
        spool::MessageWriter& writer = *opened.writer;
        EXPECT_FALSE(writer.append(content));
        std::promise<std::error_code> done;
        committer.submit(writer, [&](std::error_code ec) { done.set_value(ec); });
        return done.get_future().get();
    }

    std::optional<std::uint64_t> length_of(const fs::path& p) {
        const int fd = ::open(p.c_str(), O_RDONLY);
        if (fd < 0) return std::nullopt;
        const auto n = spool::committed_length(fd);
        ::close(fd);
        return n;
    }
};

TEST_F(SpoolTest, CommittedFileIsEnvelopeContentAndTrailer) {
    for (const auto mode : {config::SyncMode::filesystem, config::SyncMode::files}) {
        spool::Spool sp(dir_ / "spool", mode);
        const std::string id = mode == config::SyncMode::files ? "AAAAAAAAAAAAAAB" : "AAAAAAAAAAAAAAA";
        const std::string content = "Subject: x\r\n\r\n" + std::string(200000, 'y') + "\r\n";
        ASSERT_FALSE(commit(sp, id, content));
        const fs::path file = sp.queue_file(id);
        const std::string bytes = read(file);
        const std::string head = spool::serialize_envelope(envelope(id));
        ASSERT_EQ(bytes.size(), head.size() + content.size() + kTrailerSize);
        EXPECT_EQ(bytes.substr(0, head.size()), head);
        EXPECT_EQ(bytes.substr(head.size(), content.size()), content);
        const auto trailer = spool::parse_trailer(bytes.substr(bytes.size() - kTrailerSize));
        ASSERT_TRUE(trailer);
        EXPECT_EQ(trailer->length, head.size() + content.size());
        EXPECT_EQ(trailer->crc, spool::crc32_update(0, head + content));
        EXPECT_EQ(length_of(file), head.size() + content.size());
    }
}

TEST_F(SpoolTest, AddendumIsStoredAfterTheContentAndReadBack) {
    spool::Spool sp(dir_ / "spool", config::SyncMode::filesystem);
    const std::string content = "Subject: x\r\n\r\nbody\r\n";
    for (const bool with_headers : {false, true}) {
        const std::string id = with_headers ? "AAAAAAAAAAAAAAE" : "AAAAAAAAAAAAAAD";
        spool::Envelope e = envelope(id);
        e.addendum = true;
        spool::Committer committer(sp);
        auto opened = spool::MessageWriter::open(sp, e);
        ASSERT_FALSE(opened.error);
        spool::MessageWriter& writer = *opened.writer;
        ASSERT_FALSE(writer.append(content));
        spool::Addendum a;
        if (with_headers) a = {"Authentication-Results: mx.example.test; none\r\n", "Junk", "milter spamass: score 9.1"};
        writer.set_addendum(a);
        std::promise<std::error_code> done;
        committer.submit(writer, [&](std::error_code ec) { done.set_value(ec); });
        ASSERT_FALSE(done.get_future().get());

        const int fd = ::open(sp.queue_file(id).c_str(), O_RDONLY);
        ASSERT_GE(fd, 0);
        const auto m = spool::read_stored_message(fd);
        ::close(fd);
        ASSERT_TRUE(m);
        EXPECT_EQ(m->envelope.queue_id, id);
        EXPECT_TRUE(m->envelope.addendum);
        EXPECT_EQ(m->content_length, content.size());
        EXPECT_EQ(read(sp.queue_file(id)).substr(static_cast<std::size_t>(m->content_offset), m->content_length), content);
        EXPECT_EQ(m->addendum, a);
    }
    EXPECT_EQ(sp.recover().size(), 2u);   // the CRC covers the addendum too
}

TEST_F(SpoolTest, WriterReadsItsContentBackAndStartsOverWithANewEnvelope) {
    // A content filter reads the message as stored, then may change the envelope and the message: the file is
    // rewritten in place, under the same queue id, before it is committed.
    spool::Spool sp(dir_ / "spool", config::SyncMode::filesystem);
    const std::string id = "AAAAAAAAAAAAAAS";
    spool::Committer committer(sp);
    spool::Envelope e = envelope(id);
    e.addendum = true;
    auto opened = spool::MessageWriter::open(sp, e);
    ASSERT_FALSE(opened.error);
    spool::MessageWriter& writer = *opened.writer;
    const std::string content = "Subject: x\r\n\r\n" + std::string(150000, 'b') + "\r\n";   // past the write buffer
    ASSERT_FALSE(writer.append(content.substr(0, 70000)));
    ASSERT_FALSE(writer.append(content.substr(70000)));
    EXPECT_EQ(writer.content(), content);

    spool::Envelope changed = e;
    changed.sender = "new@example.test";
    changed.recipients = {"b@example.test", "added@example.test"};
    ASSERT_FALSE(writer.restart(changed));
    EXPECT_EQ(writer.content(), "");
    const std::string edited = "X-Filter: yes\r\n" + content;
    ASSERT_FALSE(writer.append(edited));
    spool::Addendum added;
    added.headers = "X-Spam-Flag: YES\r\n";
    added.folder = "Junk";
    writer.set_addendum(added);
    std::promise<std::error_code> done;
    committer.submit(writer, [&](std::error_code ec) { done.set_value(ec); });
    ASSERT_FALSE(done.get_future().get());

    const int fd = ::open(sp.queue_file(id).c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    const auto m = spool::read_stored_message(fd);
    ::close(fd);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->envelope.sender, "new@example.test");
    EXPECT_EQ(m->envelope.recipients.size(), 2u);
    EXPECT_EQ(read(sp.queue_file(id)).substr(static_cast<std::size_t>(m->content_offset), m->content_length), edited);
    EXPECT_EQ(m->addendum.folder, "Junk");
    EXPECT_EQ(sp.recover(), (std::vector<std::string>{id}));   // the trailer's length and CRC are the new file's
}

TEST_F(SpoolTest, FileWithoutAnAddendumReadsAsBefore) {
    spool::Spool sp(dir_ / "spool", config::SyncMode::filesystem);
    ASSERT_FALSE(commit(sp, "AAAAAAAAAAAAAAF", "Subject: y\r\n\r\nFerry-Addendum: 0000000000000021\n"));
    const int fd = ::open(sp.queue_file("AAAAAAAAAAAAAAF").c_str(), O_RDONLY);
    const auto m = spool::read_stored_message(fd);
    ::close(fd);
    ASSERT_TRUE(m);
    EXPECT_FALSE(m->envelope.addendum);   // content that looks like a footer is content
    EXPECT_EQ(m->content_length, 47u);
    EXPECT_TRUE(m->addendum.headers.empty());
}

TEST(SpoolAddendum, RoundTripsAndRefusesDamage) {
    const spool::Addendum a{"DKIM-Signature: v=1; a=ed25519-sha256;\r\n\tb=abc\r\n", "Junk", ""};
    const std::string text = spool::serialize_addendum(a);
    EXPECT_TRUE(text.ends_with("\n") && text.size() > spool::kAddendumFooterSize);
    EXPECT_EQ(spool::parse_addendum(text), a);
    EXPECT_EQ(spool::parse_addendum(spool::serialize_addendum({})), spool::Addendum{});
    EXPECT_EQ(spool::parse_addendum_footer(text.substr(text.size() - spool::kAddendumFooterSize)), text.size());
    EXPECT_FALSE(spool::parse_addendum(text.substr(1)));               // size does not match
    EXPECT_FALSE(spool::parse_addendum("X" + text));
    std::string bad = text;
    bad[bad.find("Headers: ") + 9] = '9';                               // header length wrong
    EXPECT_FALSE(spool::parse_addendum(bad));
    EXPECT_FALSE(spool::parse_addendum_footer("Ferry-Addendum: 00000000000000zz\n"));
    EXPECT_FALSE(spool::parse_addendum_footer("Ferry-Addendum: 0000000000000001\n"));   // smaller than itself
}

// A milter's quarantine (SMFIR_QUARANTINE) is stored as a "Hold" line between "Folder" and "Headers".
TEST(SpoolAddendum, HoldLineRoundTripsBetweenFolderAndHeaders) {
    const spool::Addendum held{"X-Spam-Flag: YES\r\n", "Junk", "milter clamav: Eicar-Signature"};
    const std::string text = spool::serialize_addendum(held);
    const auto folder = text.find("Folder: Junk\n");
    const auto hold = text.find("Hold: milter clamav: Eicar-Signature\n");
    const auto headers = text.find("Headers: 18\n");
    ASSERT_NE(hold, std::string::npos);
    EXPECT_LT(folder, hold);
    EXPECT_LT(hold, headers);
    EXPECT_EQ(spool::parse_addendum(text), held);

    const spool::Addendum only_hold{"", "", "quarantined"};
    EXPECT_EQ(spool::serialize_addendum(only_hold).substr(0, 18), "Hold: quarantined\n");
    EXPECT_EQ(spool::parse_addendum(spool::serialize_addendum(only_hold)), only_hold);

    // An addendum written before the line existed (no Hold) reads as not held.
    const auto old = spool::parse_addendum(spool::serialize_addendum({"A: b\r\n", "Junk", ""}));
    ASSERT_TRUE(old);
    EXPECT_EQ(old->hold, "");
}

TEST(SpoolAddendum, HoldReasonIsOnePrintableLineOfAtMost200Octets) {
    EXPECT_EQ(spool::hold_reason(""), "quarantined");   // held without a reason is still held
    EXPECT_EQ(spool::hold_reason("virus found"), "virus found");
    EXPECT_EQ(spool::hold_reason(std::string_view("a\r\nHeaders: 5\r\nb\tc\x00\x7f\xc3\xa9", 22)), "a??Headers: 5??b?c????");
    EXPECT_EQ(spool::hold_reason(std::string(300, 'x')), std::string(200, 'x'));

    // A reason that would break the format is written sanitised and reads back as that one line.
    const spool::Addendum nasty{"", "", "evil\nHeaders: 3\nabc"};
    const std::string text = spool::serialize_addendum(nasty);
    EXPECT_EQ(text.substr(0, text.size() - spool::kAddendumFooterSize), "Hold: evil?Headers: 3?abc\n");
    const auto read = spool::parse_addendum(text);
    ASSERT_TRUE(read);
    EXPECT_EQ(read->hold, "evil?Headers: 3?abc");
    EXPECT_EQ(read->headers, "");
    EXPECT_EQ(spool::parse_addendum(spool::serialize_addendum({"", "", std::string(500, 'y')}))->hold,
              std::string(200, 'y'));
}

// The parser takes only what serialize_addendum writes (the fuzz target checks parse -> serialize is the identity).
TEST(SpoolAddendum, MalformedHoldLinesAreRefused) {
    auto block = [](const std::string& body) {
        return body + fmt::format("Ferry-Addendum: {:016x}\n", body.size() + spool::kAddendumFooterSize);
    };
    EXPECT_TRUE(spool::parse_addendum(block("Hold: x\n")));
    EXPECT_FALSE(spool::parse_addendum(block("Hold: \n")));                          // empty
    EXPECT_FALSE(spool::parse_addendum(block("Hold: a\tb\n")));                      // not printable
    EXPECT_FALSE(spool::parse_addendum(block("Hold: caf\xc3\xa9\n")));               // not ASCII
    EXPECT_FALSE(spool::parse_addendum(block("Hold: " + std::string(201, 'z') + "\n")));   // too long
    EXPECT_TRUE(spool::parse_addendum(block("Hold: " + std::string(200, 'z') + "\n")));
    EXPECT_FALSE(spool::parse_addendum(block("Hold: x\nFolder: Junk\n")));          // out of order
    EXPECT_FALSE(spool::parse_addendum(block("Hold: x\nHold: y\n")));               // twice
}

TEST_F(SpoolTest, UncommittedWriterLeavesNothing) {
    spool::Spool sp(dir_ / "spool", config::SyncMode::filesystem);
    {
        auto opened = spool::MessageWriter::open(sp, envelope("AAAAAAAAAAAAAAC"));
        ASSERT_FALSE(opened.error);
        spool::MessageWriter& writer = *opened.writer;
        ASSERT_FALSE(writer.append(std::string(100000, 'z')));
        EXPECT_TRUE(fs::exists(sp.queue_file("AAAAAAAAAAAAAAC")));
        EXPECT_FALSE(length_of(sp.queue_file("AAAAAAAAAAAAAAC")));   // no trailer yet
    }
    EXPECT_FALSE(fs::exists(sp.queue_file("AAAAAAAAAAAAAAC")));
}

// A spool that cannot take the file is an error value, never an exception (the constructor used to throw
// std::system_error): here queue/ has gone, so creating the file fails with ENOENT.
TEST_F(SpoolTest, OpeningAWriterWhereNoFileCanBeMadeIsAnError) {
    spool::Spool sp(dir_ / "spool", config::SyncMode::filesystem);
    fs::remove_all(sp.queue_dir());
    spool::MessageWriter::Opened opened;
    EXPECT_NO_THROW(opened = spool::MessageWriter::open(sp, envelope("AAAAAAAAAAAAAAE")));
    EXPECT_EQ(opened.error, std::errc::no_such_file_or_directory);
    EXPECT_EQ(opened.writer, nullptr);
}

TEST_F(SpoolTest, RecoveryKeepsCommittedDropsPartialQuarantinesCorrupt) {
    spool::Spool sp(dir_ / "spool", config::SyncMode::filesystem);
    ASSERT_FALSE(commit(sp, "AAAAAAAAAAAAAAD", "Subject: kept\r\n\r\nbody\r\n"));
    ASSERT_FALSE(commit(sp, "AAAAAAAAAAAAAAE", "Subject: corrupt\r\n\r\nbody\r\n"));
    ASSERT_FALSE(commit(sp, "AAAAAAAAAAAAAAF", "Subject: cut\r\n\r\nbody\r\n"));
    ASSERT_FALSE(commit(sp, "AAAAAAAAAAAAAAG", "Subject: kept too\r\n\r\nbody\r\n"));

    // A flipped content byte: the trailer no longer matches.
    std::string bytes = read(sp.queue_file("AAAAAAAAAAAAAAE"));
    bytes[bytes.find("body")] = 'B';
    write(sp.queue_file("AAAAAAAAAAAAAAE"), bytes);
    // A file cut inside its trailer, as a crash during the commit would leave it; and one never sealed whose
    // content ends like a trailer of the wrong length.
    bytes = read(sp.queue_file("AAAAAAAAAAAAAAF"));
    write(sp.queue_file("AAAAAAAAAAAAAAF"), bytes.substr(0, bytes.size() - 3));
    write(sp.queue_file("AAAAAAAAAAAAAAH"),
          spool::serialize_envelope(envelope("AAAAAAAAAAAAAAH")) + "x\r\n" + spool::make_trailer({5, 0}));
    write(sp.queue_file("AAAAAAAAAAAAAAD.done"), "b@example.test\n");

    const auto ids = sp.recover();
    EXPECT_EQ(ids, (std::vector<std::string>{"AAAAAAAAAAAAAAD", "AAAAAAAAAAAAAAG"}));
    EXPECT_FALSE(fs::exists(sp.queue_file("AAAAAAAAAAAAAAF")));
    EXPECT_FALSE(fs::exists(sp.queue_file("AAAAAAAAAAAAAAH")));
    EXPECT_FALSE(fs::exists(sp.queue_file("AAAAAAAAAAAAAAE")));
    EXPECT_TRUE(fs::exists(sp.corrupt_dir() / "AAAAAAAAAAAAAAE"));
    EXPECT_TRUE(fs::exists(sp.queue_file("AAAAAAAAAAAAAAD.done")));
}

}  // namespace

namespace {

TEST_F(SpoolTest, DeliveredFilesAreEmptiedAndReused) {
    spool::Spool sp(dir_ / "spool", config::SyncMode::filesystem);
    ASSERT_FALSE(commit(sp, "AAAAAAAAAAAAAAJ", std::string(300000, 'x')));
    sp.remove("AAAAAAAAAAAAAAJ");
    EXPECT_FALSE(fs::exists(sp.queue_file("AAAAAAAAAAAAAAJ")));
    const fs::path freed = dir_ / "spool" / "free" / "AAAAAAAAAAAAAAJ";
    ASSERT_TRUE(fs::exists(freed));
    EXPECT_EQ(fs::file_size(freed), 0u);
    struct stat before {};
    ASSERT_EQ(::stat(freed.c_str(), &before), 0);

    ASSERT_FALSE(commit(sp, "AAAAAAAAAAAAAAK", "small\r\n"));
    struct stat after {};
    ASSERT_EQ(::stat(sp.queue_file("AAAAAAAAAAAAAAK").c_str(), &after), 0);
    EXPECT_EQ(after.st_ino, before.st_ino);
    EXPECT_FALSE(fs::exists(freed));
    const std::string head = spool::serialize_envelope(envelope("AAAAAAAAAAAAAAK"));
    EXPECT_EQ(read(sp.queue_file("AAAAAAAAAAAAAAK")),
              head + "small\r\n" + spool::make_trailer({head.size() + 7, spool::crc32_update(0, head + "small\r\n")}));

    // The free list survives a restart.
    sp.remove("AAAAAAAAAAAAAAK");
    spool::Spool again(dir_ / "spool", config::SyncMode::filesystem);
    ASSERT_FALSE(commit(again, "AAAAAAAAAAAAAAL", "again\r\n"));
    struct stat third {};
    ASSERT_EQ(::stat(again.queue_file("AAAAAAAAAAAAAAL").c_str(), &third), 0);
    EXPECT_EQ(third.st_ino, before.st_ino);
}

TEST_F(SpoolTest, RecoveryDropsAReusedFileThatStillHoldsItsDeliveredMessage) {
    spool::Spool sp(dir_ / "spool", config::SyncMode::filesystem);
    ASSERT_FALSE(commit(sp, "AAAAAAAAAAAAAAM", "Subject: delivered long ago\r\n\r\nbody\r\n"));
    // A crash lost the truncation of a reused file but kept its rename to the new id.
    fs::rename(sp.queue_file("AAAAAAAAAAAAAAM"), sp.queue_file("AAAAAAAAAAAAAAN"));
    ASSERT_FALSE(commit(sp, "AAAAAAAAAAAAAAP", "Subject: live\r\n\r\nbody\r\n"));
    EXPECT_EQ(sp.recover(), (std::vector<std::string>{"AAAAAAAAAAAAAAP"}));
    EXPECT_FALSE(fs::exists(sp.queue_file("AAAAAAAAAAAAAAN")));
    EXPECT_FALSE(fs::exists(sp.corrupt_dir() / "AAAAAAAAAAAAAAN"));
}

}  // namespace
