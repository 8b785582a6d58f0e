#include "mime/header_splitter.hpp"

#include <gtest/gtest.h>

using ferry::mime::HeaderSplitter;

namespace {

struct Split {
    std::string header, body;
    bool has_body = false;
    HeaderSplitter::State state;
};

// Feeds `content` in pieces of `step` octets.
Split split(std::string_view content, std::size_t step, std::size_t limit = 1000) {
    HeaderSplitter s(limit);
    Split out;
    for (std::size_t at = 0; at < content.size(); at += step) out.body += s.feed(content.substr(at, step));
    s.finish();
    out.header = s.header();
    out.has_body = s.has_body();
    out.state = s.state();
    return out;
}

}  // namespace

TEST(HeaderSplitter, SplitsAtTheFirstEmptyLineWhateverThePieces) {
    const std::string content = "From: a@b\r\nSubject: x\r\n\r\nbody\r\n\r\nmore\r\n";
    for (std::size_t step = 1; step <= content.size(); ++step) {
        const Split s = split(content, step);
        EXPECT_EQ(s.header, "From: a@b\r\nSubject: x\r\n") << step;
        EXPECT_EQ(s.body, "body\r\n\r\nmore\r\n") << step;
        EXPECT_TRUE(s.has_body);
        EXPECT_EQ(s.state, HeaderSplitter::State::body);
    }
}

TEST(HeaderSplitter, EmptyHeaderEmptyBodyNoBody) {
    Split s = split("\r\nonly body\r\n", 1);
    EXPECT_EQ(s.header, "");
    EXPECT_EQ(s.body, "only body\r\n");
    s = split("A: 1\r\n\r\n", 3);
    EXPECT_EQ(s.header, "A: 1\r\n");
    EXPECT_EQ(s.body, "");
    EXPECT_TRUE(s.has_body);
    s = split("A: 1\r\nB: 2\r\n", 4);   // no empty line: all header, no body
    EXPECT_EQ(s.header, "A: 1\r\nB: 2\r\n");
    EXPECT_FALSE(s.has_body);
    EXPECT_EQ(s.state, HeaderSplitter::State::body);
    s = split("", 1);
    EXPECT_EQ(s.header, "");
    EXPECT_FALSE(s.has_body);
}

TEST(HeaderSplitter, LimitCountsOnlyTheHeader) {
    const std::string header = "X: " + std::string(94, 'y') + "\r\n";   // 99 octets
    Split s = split(header + "\r\n" + std::string(5000, 'b'), 7, 99);
    EXPECT_EQ(s.state, HeaderSplitter::State::body);
    EXPECT_EQ(s.header, header);
    EXPECT_EQ(s.body.size(), 5000u);
    s = split(header + "Z: 1\r\n\r\nbody", 7, 99);
    EXPECT_EQ(s.state, HeaderSplitter::State::too_large);
    EXPECT_EQ(s.body, "");
    EXPECT_EQ(s.header, "");
    s = split(std::string(5000, 'h'), 64, 99);   // never an empty line
    EXPECT_EQ(s.state, HeaderSplitter::State::too_large);
    s = split(std::string(101, 'h'), 200, 99);   // over the limit by less than an empty line, then the end
    EXPECT_EQ(s.state, HeaderSplitter::State::too_large);
    s = split(std::string(99, 'h'), 200, 99);
    EXPECT_EQ(s.state, HeaderSplitter::State::body);
    EXPECT_EQ(s.header.size(), 99u);
}
