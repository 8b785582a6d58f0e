#include <gtest/gtest.h>

#include "filter/message_edit.hpp"

namespace ferry::filter {
namespace {

const std::string kHeader =
    "Received: from x\r\n\tby y\r\n"
    "From: a@example.test\r\n"
    "X-Tag: one\r\n"
    "Subject: hello\r\n"
    "X-Tag: two\r\n";

std::string apply(std::vector<HeaderEdit> edits, std::size_t* skipped_out = nullptr) {
    std::size_t skipped = 0;
    std::string out = apply_header_edits(kHeader, edits, skipped);
    if (skipped_out) *skipped_out = skipped;
    return out;
}

HeaderEdit edit(HeaderEdit::Kind kind, long index, std::string name, std::string value = "") {
    HeaderEdit e;
    e.kind = kind;
    e.index = index;
    e.name = std::move(name);
    e.value = std::move(value);
    return e;
}

TEST(FilterMessageEdit, AppendGoesAfterTheLastField) {
    EXPECT_EQ(apply({edit(HeaderEdit::Kind::append, 0, "X-New", "v")}), kHeader + "X-New: v\r\n");
}

TEST(FilterMessageEdit, InsertAtIndexCountsEveryField) {
    EXPECT_EQ(apply({edit(HeaderEdit::Kind::insert, 0, "X-First", "1")}), "X-First: 1\r\n" + kHeader);
    const std::string second = apply({edit(HeaderEdit::Kind::insert, 2, "X-Third", " 3")});
    EXPECT_EQ(second,
              "Received: from x\r\n\tby y\r\nFrom: a@example.test\r\nX-Third: 3\r\nX-Tag: one\r\nSubject: hello\r\n"
              "X-Tag: two\r\n");
    EXPECT_EQ(apply({edit(HeaderEdit::Kind::insert, 99, "X-Last", "z")}), kHeader + "X-Last: z\r\n");
}

TEST(FilterMessageEdit, ChangeCountsFieldsOfTheNameFromOne) {
    const std::string out = apply({edit(HeaderEdit::Kind::change, 2, "x-tag", "changed")});
    EXPECT_EQ(out, "Received: from x\r\n\tby y\r\nFrom: a@example.test\r\nX-Tag: one\r\nSubject: hello\r\n"
                   "x-tag: changed\r\n");
}

TEST(FilterMessageEdit, ChangeWithEmptyValueDeletes) {
    const std::string out = apply({edit(HeaderEdit::Kind::change, 1, "X-Tag", "")});
    EXPECT_EQ(out, "Received: from x\r\n\tby y\r\nFrom: a@example.test\r\nSubject: hello\r\nX-Tag: two\r\n");
    // A field that is not there: a change adds it, a delete does nothing.
    EXPECT_EQ(apply({edit(HeaderEdit::Kind::change, 3, "X-Tag", "")}), kHeader);
    EXPECT_EQ(apply({edit(HeaderEdit::Kind::change, 1, "X-Absent", "v")}), kHeader + "X-Absent: v\r\n");
}

TEST(FilterMessageEdit, RemoveAllNthAndNthFromTheEnd) {
    EXPECT_EQ(apply({edit(HeaderEdit::Kind::remove, 0, "X-Tag")}),
              "Received: from x\r\n\tby y\r\nFrom: a@example.test\r\nSubject: hello\r\n");
    EXPECT_EQ(apply({edit(HeaderEdit::Kind::remove, -1, "X-Tag")}),
              "Received: from x\r\n\tby y\r\nFrom: a@example.test\r\nX-Tag: one\r\nSubject: hello\r\n");
    EXPECT_EQ(apply({edit(HeaderEdit::Kind::remove, 1, "X-Tag")}),
              "Received: from x\r\n\tby y\r\nFrom: a@example.test\r\nSubject: hello\r\nX-Tag: two\r\n");
    EXPECT_EQ(apply({edit(HeaderEdit::Kind::remove, 3, "X-Tag")}), kHeader);
}

TEST(FilterMessageEdit, EditsApplyInOrderEachOnTheResultBefore) {
    const std::string out = apply({edit(HeaderEdit::Kind::insert, 0, "X-Tag", "zero"),
                                   edit(HeaderEdit::Kind::change, 1, "X-Tag", "first")});
    EXPECT_TRUE(out.starts_with("X-Tag: first\r\nReceived:"));
}

TEST(FilterMessageEdit, BadNamesAreSkippedAndCounted) {
    std::size_t skipped = 0;
    const std::string out = apply({edit(HeaderEdit::Kind::append, 0, "Bad Name", "v"),
                                   edit(HeaderEdit::Kind::append, 0, "", "v"),
                                   edit(HeaderEdit::Kind::append, 0, "A:B", "v")},
                                  &skipped);
    EXPECT_EQ(out, kHeader);
    EXPECT_EQ(skipped, 3u);
}

TEST(FilterMessageEdit, ValueLineBreaksCannotStartAnotherField) {
    // A value "x\nBcc: victim" must stay one field: the next line becomes a continuation.
    EXPECT_EQ(render_field("X-A", "x\nBcc: victim"), "X-A: x\r\n\tBcc: victim\r\n");
    EXPECT_EQ(render_field("X-A", "x\r\n  folded\r\n"), "X-A: x\r\n  folded\r\n");
    EXPECT_EQ(render_field("X-A", "x\r\n\r\nbody"), "X-A: x\r\n\t\r\n\tbody\r\n");
    EXPECT_EQ(render_field("X-A", ""), "X-A: \r\n");
    EXPECT_EQ(render_field("X A", "v"), "");
}

TEST(FilterMessageEdit, SplitAndJoinKeepTheMessage) {
    const std::string msg = "A: 1\r\nB: 2\r\n\r\nbody\r\n";
    const MessageText m = MessageText::split(msg);
    EXPECT_EQ(m.header, "A: 1\r\nB: 2\r\n");
    EXPECT_EQ(m.body, "body\r\n");
    EXPECT_EQ(m.joined(), msg);
    const MessageText no_body = MessageText::split("A: 1\r\n");
    EXPECT_FALSE(no_body.has_body);
    EXPECT_EQ(no_body.joined(), "A: 1\r\n");
    EXPECT_EQ(MessageText::split("A: 1\r\n\r\n").joined(), "A: 1\r\n\r\n");
}


}  // namespace
}  // namespace ferry::filter
