#include "smtp/content_decoder.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ferry::smtp {
namespace {

constexpr std::size_t kLine = 1000;
constexpr std::uint64_t kBig = 1ull << 30;

ContentDecoder stuffed(std::uint64_t max_size = kBig) {
    return ContentDecoder(ContentDecoder::Mode::dot_stuffed, kLine, max_size);
}
ContentDecoder raw(std::uint64_t max_size = kBig) { return ContentDecoder(ContentDecoder::Mode::raw, kLine, max_size); }

struct Result {
    std::string out;
    std::size_t consumed = 0;
};

// Feeds `parts` one after the other the way the I/O layer would: stops once the decoder has finished.
Result feed_parts(ContentDecoder& d, const std::vector<std::string_view>& parts) {
    Result r;
    for (std::string_view p : parts) {
        const std::size_t n = d.feed(p, r.out);
        EXPECT_LE(n, p.size());
        r.consumed += n;
        if (d.finished()) break;
        EXPECT_EQ(n, p.size()) << "an unfinished decoder must take every octet";
    }
    return r;
}

Result feed_all(ContentDecoder& d, std::string_view in) { return feed_parts(d, {in}); }

Result feed_bytewise(ContentDecoder& d, std::string_view in) {
    std::vector<std::string_view> parts;
    for (std::size_t i = 0; i < in.size(); ++i) parts.push_back(in.substr(i, 1));
    return feed_parts(d, parts);
}

bool no_flaws(const ContentDecoder& d) { return !d.flaws().any(); }

// --- ordinary content and dot-unstuffing ---------------------------------------------------------------

TEST(SmtpContentDecoder, PlainMessage) {
    ContentDecoder d = stuffed();
    const std::string in = "Subject: hi\r\n\r\nHello\r\n.\r\n";
    const Result r = feed_all(d, in);
    EXPECT_TRUE(d.finished());
    EXPECT_EQ(r.consumed, in.size());
    EXPECT_EQ(r.out, "Subject: hi\r\n\r\nHello\r\n");
    EXPECT_EQ(d.size(), r.out.size());
    EXPECT_TRUE(no_flaws(d));
}

TEST(SmtpContentDecoder, DotUnstuffing) {
    ContentDecoder d = stuffed();
    const Result r = feed_all(d, "..x\r\na\r\n..\r\n...\r\n.\r\n");
    EXPECT_TRUE(d.finished());
    EXPECT_EQ(r.out, ".x\r\na\r\n.\r\n..\r\n");
    EXPECT_EQ(d.size(), r.out.size());   // stuffing dots are not message octets
    EXPECT_TRUE(no_flaws(d));
}

TEST(SmtpContentDecoder, DotsInsideLinesKept) {
    ContentDecoder d = stuffed();
    const Result r = feed_all(d, "a.b\r\nx..\r\n a.\r\n.\r\n");
    EXPECT_EQ(r.out, "a.b\r\nx..\r\n a.\r\n");
    EXPECT_TRUE(d.finished());
}

TEST(SmtpContentDecoder, UnstuffingAcrossFeedCalls) {
    ContentDecoder d = stuffed();
    const Result r = feed_parts(d, {"a\r\n.", ".b\r\n.", "\r", "\n"});
    EXPECT_TRUE(d.finished());
    EXPECT_EQ(r.out, "a\r\n.b\r\n");
}

TEST(SmtpContentDecoder, BinaryOctetsPassThrough) {
    ContentDecoder d = stuffed();
    const std::string body("\x01\xff\xc3\xa9\x7f\r\n", 7);
    const Result r = feed_all(d, body + ".\r\n");
    EXPECT_EQ(r.out, body);
    EXPECT_TRUE(no_flaws(d));
    // A NUL passes through too, but is a flaw (no BINARYMIME): the only one here.
    ContentDecoder n = stuffed();
    const std::string with_nul = std::string(1, '\0') + body;
    EXPECT_EQ(feed_all(n, with_nul + ".\r\n").out, with_nul);
    EXPECT_TRUE(n.flaws().nul);
    EXPECT_FALSE(n.flaws().bare_lf || n.flaws().bare_cr || n.flaws().line_too_long || n.flaws().too_big);
}

// --- end of data ---------------------------------------------------------------------------------------

TEST(SmtpContentDecoder, EndAtVeryStart) {
    // The CRLF before the terminator is the one that ended the DATA command line.
    ContentDecoder d = stuffed();
    const Result r = feed_all(d, ".\r\n");
    EXPECT_TRUE(d.finished());
    EXPECT_EQ(r.consumed, 3u);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(d.size(), 0u);
    EXPECT_TRUE(no_flaws(d));
}

TEST(SmtpContentDecoder, BytesAfterEndNotConsumed) {
    ContentDecoder d = stuffed();
    const std::string in = "body\r\n.\r\nMAIL FROM:<a@b.test>\r\n";
    std::string out;
    const std::size_t n = d.feed(in, out);
    EXPECT_EQ(n, 9u);
    EXPECT_EQ(in.substr(n), "MAIL FROM:<a@b.test>\r\n");
    EXPECT_EQ(out, "body\r\n");
    EXPECT_TRUE(d.finished());
    // Once finished, nothing more is taken.
    EXPECT_EQ(d.feed("more\r\n.\r\n", out), 0u);
    EXPECT_EQ(out, "body\r\n");
}

TEST(SmtpContentDecoder, EndAtStartFollowedByCommand) {
    ContentDecoder d = stuffed();
    std::string out;
    EXPECT_EQ(d.feed(".\r\nQUIT\r\n", out), 3u);
    EXPECT_TRUE(d.finished());
    EXPECT_EQ(out, "");
}

TEST(SmtpContentDecoder, NotFinishedWithoutTerminator) {
    ContentDecoder d = stuffed();
    const Result r = feed_all(d, "a\r\n.\r");
    EXPECT_FALSE(d.finished());
    EXPECT_EQ(r.consumed, 5u);
    std::string out;
    EXPECT_EQ(d.feed("\nNEXT", out), 1u);
    EXPECT_TRUE(d.finished());
    EXPECT_TRUE(no_flaws(d));
}

TEST(SmtpContentDecoder, DotLineWithTextIsNotTheEnd) {
    ContentDecoder d = stuffed();
    const Result r = feed_all(d, "a\r\n. \r\n.x\r\n");
    EXPECT_FALSE(d.finished());
    EXPECT_EQ(r.out, "a\r\n \r\nx\r\n");
}

TEST(SmtpContentDecoder, TerminatorSplitAtEveryPairOfPoints) {
    const std::string in = "From: a\r\n\r\n..lead\r\nx.y\r\n\r\n.\r\nQUIT\r\n";
    const std::size_t end = in.find("\r\n.\r\n") + 5;
    const std::string expected = "From: a\r\n\r\n.lead\r\nx.y\r\n\r\n";
    for (std::size_t i = 0; i <= in.size(); ++i) {
        for (std::size_t j = i; j <= in.size(); ++j) {
            ContentDecoder d = stuffed();
            const std::string_view v(in);
            const Result r = feed_parts(d, {v.substr(0, i), v.substr(i, j - i), v.substr(j)});
            ASSERT_TRUE(d.finished()) << i << "," << j;
            ASSERT_EQ(r.consumed, end) << i << "," << j;
            ASSERT_EQ(r.out, expected) << i << "," << j;
            ASSERT_TRUE(no_flaws(d)) << i << "," << j;
        }
    }
}

TEST(SmtpContentDecoder, ByteByByte) {
    const std::string in = "a\r\n..b\r\n\r\n.\r\nQUIT\r\n";
    ContentDecoder d = stuffed();
    const Result r = feed_bytewise(d, in);
    EXPECT_TRUE(d.finished());
    EXPECT_EQ(r.consumed, in.find("QUIT"));
    EXPECT_EQ(r.out, "a\r\n.b\r\n\r\n");
    EXPECT_TRUE(no_flaws(d));
}

TEST(SmtpContentDecoder, ByteByByteEmptyMessage) {
    ContentDecoder d = stuffed();
    const Result r = feed_bytewise(d, ".\r\nX");
    EXPECT_TRUE(d.finished());
    EXPECT_EQ(r.consumed, 3u);
    EXPECT_EQ(r.out, "");
}

TEST(SmtpContentDecoder, EmptyFeedIsHarmless) {
    ContentDecoder d = stuffed();
    std::string out;
    EXPECT_EQ(d.feed("", out), 0u);
    EXPECT_EQ(d.feed("a\r\n", out), 3u);
    EXPECT_EQ(d.feed("", out), 0u);
    EXPECT_EQ(d.feed(".\r\n", out), 3u);
    EXPECT_TRUE(d.finished());
    EXPECT_EQ(out, "a\r\n");
}

// --- SMTP smuggling: only <CRLF>.<CRLF> ends data ------------------------------------------------------

struct Smuggle {
    const char* name;
    std::string_view seq;
    bool bare_lf;
    bool bare_cr;
};

const Smuggle kSmuggles[] = {
    {"LF.LF", "\n.\n", true, false},       {"LF.CRLF", "\n.\r\n", true, false},
    {"CR.CR", "\r.\r", false, true},       {"CRLF.CR", "\r\n.\r", false, true},
    {"CRLF.LF", "\r\n.\n", true, false},   {"CR.CRLF", "\r.\r\n", false, true},
};

const std::string kInjected = "MAIL FROM:<evil@attacker.test>\r\nRCPT TO:<victim@example.test>\r\nDATA\r\n";

void check_smuggle(const Smuggle& s, bool bytewise) {
    SCOPED_TRACE(std::string(s.name) + (bytewise ? " bytewise" : ""));
    ContentDecoder d = stuffed();
    const std::string in = "Subject: x\r\n\r\nhello" + std::string(s.seq) + kInjected;
    const Result r = bytewise ? feed_bytewise(d, in) : feed_all(d, in);
    EXPECT_FALSE(d.finished());
    EXPECT_EQ(r.consumed, in.size());
    EXPECT_EQ(d.flaws().bare_lf, s.bare_lf);
    EXPECT_EQ(d.flaws().bare_cr, s.bare_cr);
    EXPECT_FALSE(d.flaws().line_too_long);
    EXPECT_FALSE(d.flaws().too_big);
    EXPECT_NE(r.out.find("MAIL FROM:<evil@attacker.test>"), std::string::npos) << "injected text stays content";
    // The real terminator still ends the data, and the flaw stays recorded.
    std::string out;
    EXPECT_EQ(d.feed(".\r\nQUIT\r\n", out), 3u);
    EXPECT_TRUE(d.finished());
    EXPECT_TRUE(d.flaws().any());
}

TEST(SmtpContentDecoder, SmugglingVariantsDoNotEndData) {
    for (const Smuggle& s : kSmuggles) check_smuggle(s, false);
}

TEST(SmtpContentDecoder, SmugglingVariantsDoNotEndDataBytewise) {
    for (const Smuggle& s : kSmuggles) check_smuggle(s, true);
}

TEST(SmtpContentDecoder, SmugglingVariantsAtVeryStart) {
    for (const Smuggle& s : kSmuggles) {
        SCOPED_TRACE(s.name);
        ContentDecoder d = stuffed();
        const std::string in = std::string(s.seq) + kInjected;
        const Result r = feed_all(d, in);
        EXPECT_FALSE(d.finished());
        EXPECT_EQ(r.consumed, in.size());
        EXPECT_TRUE(d.flaws().bare_lf || d.flaws().bare_cr);
    }
}

TEST(SmtpContentDecoder, SmugglingVariantsAsFinalTerminatorDoNotEndData) {
    // The client stops right after the fake terminator: the session must keep waiting, not end the data.
    for (const Smuggle& s : kSmuggles) {
        SCOPED_TRACE(s.name);
        ContentDecoder d = stuffed();
        const std::string in = "hello" + std::string(s.seq);
        const Result r = feed_all(d, in);
        EXPECT_FALSE(d.finished());
        EXPECT_EQ(r.consumed, in.size());
    }
}

// A NUL before the dot of "<CRLF>NUL.<CRLF>" is what a next hop that drops NULs would read as an end of data:
// it stays content here, and is a flaw (RFC 5321 2.3.8; no BINARYMIME).
TEST(SmtpContentDecoder, NulDotIsContentAndFlagged) {
    using namespace std::string_literals;
    for (const bool bytewise : {false, true}) {
        SCOPED_TRACE(bytewise ? "bytewise" : "whole");
        ContentDecoder d = stuffed();
        const std::string in = "Subject: x\r\n\r\nhello\r\n\0.\r\n"s + kInjected + ".\r\n";
        const Result r = bytewise ? feed_bytewise(d, in) : feed_all(d, in);
        EXPECT_TRUE(d.finished());
        EXPECT_EQ(r.consumed, in.size());
        EXPECT_TRUE(d.flaws().nul);
        EXPECT_FALSE(d.flaws().bare_lf || d.flaws().bare_cr);
        EXPECT_NE(r.out.find("hello\r\n\0.\r\nMAIL FROM:"s), std::string::npos) << "the NUL line stays content";
    }
}

TEST(SmtpContentDecoder, NulFlaggedInRawModeAndAfterStuffingDot) {
    using namespace std::string_literals;
    ContentDecoder r = raw();
    std::string out;
    r.feed("a\0b\r\n"s, out);
    r.finish_raw();
    EXPECT_TRUE(r.flaws().nul);
    EXPECT_EQ(out, "a\0b\r\n"s);

    ContentDecoder d = stuffed();
    const Result s = feed_all(d, "..\0\r\n.\r\n"s);   // a stuffed dot, then NUL
    EXPECT_TRUE(d.finished());
    EXPECT_TRUE(d.flaws().nul);
    EXPECT_EQ(s.out, ".\0\r\n"s);

    ContentDecoder clean = stuffed();
    feed_all(clean, "a\r\n.\r\n");
    EXPECT_FALSE(clean.flaws().nul);
}

TEST(SmtpContentDecoder, BareLfFlagged) {
    ContentDecoder d = stuffed();
    const Result r = feed_all(d, "a\nb\r\n.\r\n");
    EXPECT_TRUE(d.finished());
    EXPECT_TRUE(d.flaws().bare_lf);
    EXPECT_FALSE(d.flaws().bare_cr);
    EXPECT_EQ(r.out, "a\nb\r\n");
}

TEST(SmtpContentDecoder, BareCrFlagged) {
    ContentDecoder d = stuffed();
    const Result r = feed_all(d, "a\rb\r\n.\r\n");
    EXPECT_TRUE(d.finished());
    EXPECT_TRUE(d.flaws().bare_cr);
    EXPECT_FALSE(d.flaws().bare_lf);
    EXPECT_EQ(r.out, "a\rb\r\n");
}

TEST(SmtpContentDecoder, CrCrLfIsOneBareCr) {
    ContentDecoder d = stuffed();
    const Result r = feed_all(d, "a\r\r\n.\r\n");
    EXPECT_TRUE(d.finished());
    EXPECT_TRUE(d.flaws().bare_cr);
    EXPECT_FALSE(d.flaws().bare_lf);
    EXPECT_EQ(r.out, "a\r\r\n");
}

TEST(SmtpContentDecoder, CrlfSplitAcrossFeedsIsNotBare) {
    ContentDecoder d = stuffed();
    const Result r = feed_parts(d, {"a\r", "\nb\r", "\n.\r\n"});
    EXPECT_TRUE(d.finished());
    EXPECT_TRUE(no_flaws(d));
    EXPECT_EQ(r.out, "a\r\nb\r\n");
}

TEST(SmtpContentDecoder, DotCrWithoutLfKeepsContent) {
    ContentDecoder d = stuffed();
    const Result r = feed_all(d, "a\r\n.\rb\r\n.\r\n");
    EXPECT_TRUE(d.finished());
    EXPECT_TRUE(d.flaws().bare_cr);
    EXPECT_NE(r.out.find("\rb\r\n"), std::string::npos);
}

// --- line length (RFC 5321 4.5.3.1.6) --------------------------------------------------------------------

TEST(SmtpContentDecoder, Line1000WithCrlfAccepted) {
    ContentDecoder d = stuffed();
    const std::string line(998, 'x');
    const Result r = feed_all(d, line + "\r\n" + line + "\r\n.\r\n");
    EXPECT_TRUE(d.finished());
    EXPECT_FALSE(d.flaws().line_too_long);
    EXPECT_EQ(r.out.size(), 2000u);
}

TEST(SmtpContentDecoder, Line1001WithCrlfFlagged) {
    ContentDecoder d = stuffed();
    const Result r = feed_all(d, std::string(999, 'x') + "\r\n.\r\n");
    EXPECT_TRUE(d.finished());
    EXPECT_TRUE(d.flaws().line_too_long);
    EXPECT_FALSE(d.flaws().bare_cr);
    EXPECT_FALSE(d.flaws().bare_lf);
    EXPECT_FALSE(d.flaws().too_big);
    EXPECT_EQ(r.out.size(), 1001u);   // flagged, not truncated
}

TEST(SmtpContentDecoder, LineLimitBytewise) {
    ContentDecoder ok = stuffed();
    feed_bytewise(ok, std::string(998, 'x') + "\r\n.\r\n");
    EXPECT_FALSE(ok.flaws().line_too_long);
    ContentDecoder bad = stuffed();
    feed_bytewise(bad, std::string(999, 'x') + "\r\n.\r\n");
    EXPECT_TRUE(bad.flaws().line_too_long);
}

TEST(SmtpContentDecoder, LongLineWithoutEndFlagged) {
    ContentDecoder d = stuffed();
    feed_all(d, std::string(1001, 'x'));
    EXPECT_TRUE(d.flaws().line_too_long);
}

TEST(SmtpContentDecoder, StuffingDotNotCountedInLineLength) {
    // ".." + 997 octets + CRLF is 1001 octets on the wire, 1000 once the transparency dot is removed.
    ContentDecoder d = stuffed();
    const Result r = feed_all(d, ".." + std::string(997, 'x') + "\r\n.\r\n");
    EXPECT_TRUE(d.finished());
    EXPECT_FALSE(d.flaws().line_too_long);
    EXPECT_EQ(r.out.size(), 1000u);
    ContentDecoder bad = stuffed();
    feed_all(bad, ".." + std::string(998, 'x') + "\r\n.\r\n");
    EXPECT_TRUE(bad.flaws().line_too_long);
}

TEST(SmtpContentDecoder, LineLengthResetsEachLine) {
    ContentDecoder d = stuffed();
    std::string in;
    for (int i = 0; i < 5; ++i) in += std::string(998, static_cast<char>('a' + i)) + "\r\n";
    feed_all(d, in + ".\r\n");
    EXPECT_TRUE(d.finished());
    EXPECT_FALSE(d.flaws().line_too_long);
}

TEST(SmtpContentDecoder, CustomLineLimit) {
    ContentDecoder d(ContentDecoder::Mode::dot_stuffed, 10, kBig);
    feed_all(d, "12345678\r\n.\r\n");
    EXPECT_FALSE(d.flaws().line_too_long);
    ContentDecoder e(ContentDecoder::Mode::dot_stuffed, 10, kBig);
    feed_all(e, "123456789\r\n.\r\n");
    EXPECT_TRUE(e.flaws().line_too_long);
}

// --- size limit (RFC 1870) -----------------------------------------------------------------------------

TEST(SmtpContentDecoder, SizeExactlyAtLimitAccepted) {
    ContentDecoder d = stuffed(10);
    const Result r = feed_all(d, "01234567\r\n.\r\n");
    EXPECT_TRUE(d.finished());
    EXPECT_FALSE(d.flaws().too_big);
    EXPECT_EQ(d.size(), 10u);
    EXPECT_EQ(r.out, "01234567\r\n");
}

TEST(SmtpContentDecoder, SizeOverLimit) {
    ContentDecoder d = stuffed(10);
    const std::string in = "012345678\r\nmore text\r\n..and more\r\n.\r\nQUIT\r\n";
    const Result r = feed_all(d, in);
    EXPECT_TRUE(d.finished());   // the end is still found
    EXPECT_EQ(r.consumed, in.find("QUIT"));
    EXPECT_TRUE(d.flaws().too_big);
    EXPECT_FALSE(d.flaws().line_too_long);
    EXPECT_LE(r.out.size(), 10u);
    EXPECT_EQ(r.out, "012345678");
    EXPECT_EQ(d.size(), 11u + 11u + 11u);   // counted, not stored
}

TEST(SmtpContentDecoder, OutputStopsGrowingAfterLimit) {
    ContentDecoder d = stuffed(100);
    std::string out;
    d.feed(std::string(90, 'a') + "\r\n", out);
    EXPECT_FALSE(d.flaws().too_big);
    d.feed(std::string(50, 'b') + "\r\n", out);
    EXPECT_TRUE(d.flaws().too_big);
    const std::size_t stored = out.size();
    EXPECT_LE(stored, 100u);
    for (int i = 0; i < 100; ++i) d.feed(std::string(80, 'c') + "\r\n", out);
    EXPECT_EQ(out.size(), stored);
    EXPECT_FALSE(d.finished());
    EXPECT_EQ(d.feed(".\r\nNEXT", out), 3u);
    EXPECT_TRUE(d.finished());
    EXPECT_EQ(out.size(), stored);
}

TEST(SmtpContentDecoder, SizeLimitBytewise) {
    ContentDecoder d = stuffed(5);
    const Result r = feed_bytewise(d, "abcdefgh\r\n.\r\n");
    EXPECT_TRUE(d.finished());
    EXPECT_TRUE(d.flaws().too_big);
    EXPECT_EQ(r.out, "abcde");
}

TEST(SmtpContentDecoder, FlawsAny) {
    ContentFlaws f;
    EXPECT_FALSE(f.any());
    f.bare_lf = true;
    EXPECT_TRUE(f.any());
    f = {};
    f.bare_cr = true;
    EXPECT_TRUE(f.any());
    f = {};
    f.line_too_long = true;
    EXPECT_TRUE(f.any());
    f = {};
    f.too_big = true;
    EXPECT_TRUE(f.any());
}

// --- raw mode (BDAT, RFC 3030) -------------------------------------------------------------------------

TEST(SmtpContentDecoder, RawNoUnstuffingNoEnd) {
    ContentDecoder d = raw();
    const std::string in = "..x\r\n.\r\nafter\r\n";
    const Result r = feed_all(d, in);
    EXPECT_FALSE(d.finished());
    EXPECT_EQ(r.consumed, in.size());
    EXPECT_EQ(r.out, in);
    EXPECT_EQ(d.size(), in.size());
    d.finish_raw();
    EXPECT_TRUE(no_flaws(d));
    EXPECT_FALSE(d.finished());
}

TEST(SmtpContentDecoder, RawAcrossChunks) {
    ContentDecoder d = raw();
    std::string out;
    EXPECT_EQ(d.feed("a\r", out), 2u);
    EXPECT_EQ(d.feed("\n.", out), 2u);
    EXPECT_EQ(d.feed("\r\n", out), 2u);
    d.finish_raw();
    EXPECT_EQ(out, "a\r\n.\r\n");
    EXPECT_TRUE(no_flaws(d));
}

TEST(SmtpContentDecoder, RawTrailingCrIsBare) {
    ContentDecoder d = raw();
    std::string out;
    d.feed("line\r\nend\r", out);
    EXPECT_FALSE(d.flaws().bare_cr);   // might still be followed by LF in the next chunk
    d.finish_raw();
    EXPECT_TRUE(d.flaws().bare_cr);
    EXPECT_FALSE(d.flaws().bare_lf);
}

TEST(SmtpContentDecoder, RawWithoutTrailingCrlfIsFine) {
    ContentDecoder d = raw();
    std::string out;
    d.feed("no final newline", out);
    d.finish_raw();
    EXPECT_TRUE(no_flaws(d));
    EXPECT_EQ(out, "no final newline");
}

TEST(SmtpContentDecoder, RawBareLfAndCr) {
    ContentDecoder lf = raw();
    std::string out;
    lf.feed("a\nb", out);
    lf.finish_raw();
    EXPECT_TRUE(lf.flaws().bare_lf);
    EXPECT_FALSE(lf.flaws().bare_cr);
    ContentDecoder cr = raw();
    cr.feed("a\rb", out);
    cr.finish_raw();
    EXPECT_TRUE(cr.flaws().bare_cr);
    EXPECT_FALSE(cr.flaws().bare_lf);
}

TEST(SmtpContentDecoder, RawLineAndSizeLimits) {
    ContentDecoder ok = raw();
    std::string out;
    ok.feed(std::string(998, 'x') + "\r\n", out);
    ok.finish_raw();
    EXPECT_FALSE(ok.flaws().line_too_long);
    ContentDecoder longline = raw();
    longline.feed(std::string(999, 'x') + "\r\n", out);
    EXPECT_TRUE(longline.flaws().line_too_long);

    ContentDecoder big = raw(10);
    std::string stored;
    EXPECT_EQ(big.feed("0123456789abc", stored), 13u);
    EXPECT_TRUE(big.flaws().too_big);
    EXPECT_EQ(big.size(), 13u);
    EXPECT_LE(stored.size(), 10u);
}

TEST(SmtpContentDecoder, RawByteByByteSmuggling) {
    for (const Smuggle& s : kSmuggles) {
        SCOPED_TRACE(s.name);
        ContentDecoder d = raw();
        const std::string in = "x" + std::string(s.seq) + "y";
        feed_bytewise(d, in);
        d.finish_raw();
        EXPECT_FALSE(d.finished());
        EXPECT_EQ(d.flaws().bare_lf, s.bare_lf);
        EXPECT_EQ(d.flaws().bare_cr, s.bare_cr);
    }
}

TEST(SmtpContentFlaws, AWholeMessageMeetsTheRulesOfDataInPieces) {
    EXPECT_FALSE(content_flaws("Subject: x\r\n\r\nbody\r\n", 1000, 100).any());
    EXPECT_FALSE(content_flaws("", 1000, 100).any());
    EXPECT_TRUE(content_flaws("a\r.\r\n", 1000, 100).bare_cr);
    EXPECT_TRUE(content_flaws("a\n.\r\n", 1000, 100).bare_lf);
    EXPECT_TRUE(content_flaws("ends in a CR\r", 1000, 100).bare_cr);
    EXPECT_TRUE(content_flaws(std::string(1000, 'x') + "\r\n", 1000, 1 << 20).line_too_long);
    EXPECT_FALSE(content_flaws(std::string(998, 'x') + "\r\n", 1000, 1 << 20).any());
    EXPECT_TRUE(content_flaws("0123456789\r\n", 1000, 5).too_big);
    EXPECT_TRUE(content_flaws(std::string("a\r\n\0.\r\n", 7), 1000, 100).nul);
    EXPECT_NE(describe_flaws(content_flaws(std::string("a\0\r\n", 4), 1000, 100), 1000, 100).find("NUL"),
              std::string::npos);
    // A CRLF and a long line across the 64 KiB pieces it is scanned in.
    std::string across(64 * 1024 - 1, 'x');
    for (std::size_t i = 500; i < across.size(); i += 500) across.replace(i, 2, "\r\n");
    EXPECT_FALSE(content_flaws(across + "\r\n", 1000, 1 << 20).any());
    EXPECT_TRUE(content_flaws(std::string(64 * 1024 + 10, 'x'), 1000, 1 << 20).line_too_long);

    EXPECT_EQ(describe_flaws({}, 1000, 5), "");
    EXPECT_EQ(describe_flaws(content_flaws("a\r.\r\n", 1000, 100), 1000, 100),
              "bare <LF> or <CR> in message content (RFC 5321 2.3.8)");
    EXPECT_EQ(describe_flaws(content_flaws(std::string(1001, 'x'), 1000, 1 << 20), 1000, 1 << 20),
              "message line longer than 1000 octets (RFC 5321 4.5.3.1.6)");
    EXPECT_EQ(describe_flaws(content_flaws("0123456789", 1000, 5), 1000, 5), "message larger than the limit of 5 octets");
}

}  // namespace
}  // namespace ferry::smtp
