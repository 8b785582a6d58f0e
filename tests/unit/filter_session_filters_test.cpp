// The pure parts of a session's filter chain: a verdict applied to a message and its envelope, and when the
// changes are only fields put in front (stored in the addendum, no rewrite of the spool file).
#include <gtest/gtest.h>

#include "filter/session_filters.hpp"

namespace ferry::filter {
namespace {

const std::string kMessage = "Received: by us\r\nFrom: a@example.test\r\nSubject: hi\r\n\r\nbody\r\n";

HeaderEdit edit(HeaderEdit::Kind kind, long index, std::string name, std::string value = "") {
    HeaderEdit e;
    e.kind = kind;
    e.index = index;
    e.name = std::move(name);
    e.value = std::move(value);
    return e;
}

TEST(FilterChain, NoChangesKeepTheMessageAndEnvelope) {
    const AppliedVerdict a = apply_verdict(ContentVerdict{}, kMessage, "s@x.test", {"r@y.test"});
    EXPECT_FALSE(a.message);   // no copy when nothing in it changes
    EXPECT_FALSE(a.sender);
    EXPECT_EQ(a.recipients, (std::vector<std::string>{"r@y.test"}));
}

TEST(FilterChain, HeaderEditsAndANewBody) {
    ContentVerdict v;
    v.header_edits = {edit(HeaderEdit::Kind::change, 1, "Subject", "changed")};
    v.new_body = "new\nbody\n";
    const AppliedVerdict a = apply_verdict(v, kMessage, "s@x.test", {"r@y.test"});
    EXPECT_EQ(a.message,
              std::string("Received: by us\r\nFrom: a@example.test\r\nSubject: changed\r\n\r\nnew\r\nbody\r\n"));
}

TEST(FilterChain, EnvelopeChangesSkipBadAddressesAndDuplicates) {
    ContentVerdict v;
    v.new_sender = "new@x.test";
    v.add_recipients = {"added@y.test", "R@y.test", "bad address\n@y.test"};
    v.delete_recipients = {"gone@y.test"};
    const AppliedVerdict a = apply_verdict(v, kMessage, "s@x.test", {"r@y.test", "GONE@y.test"});
    EXPECT_EQ(a.sender, "new@x.test");
    EXPECT_EQ(a.recipients, (std::vector<std::string>{"r@y.test", "added@y.test"}));
    EXPECT_EQ(a.skipped, 1u);
    ContentVerdict bad;
    bad.new_sender = "no at sign\r\nInjected: yes";
    const AppliedVerdict b = apply_verdict(bad, kMessage, "s@x.test", {"r@y.test"});
    EXPECT_FALSE(b.sender);
    EXPECT_EQ(b.skipped, 1u);
    ContentVerdict null_sender;
    null_sender.new_sender = "";   // the null reverse-path <> is a sender
    EXPECT_EQ(apply_verdict(null_sender, kMessage, "s@x.test", {"r@y.test"}).sender, "");
}

TEST(FilterChain, FieldsInFrontAreTheAddendumAnythingElseIsARewrite) {
    EXPECT_EQ(prepended_fields("X-Spam-Flag: YES\r\nX-Spam-Score: 7\r\n" + kMessage, kMessage),
              "X-Spam-Flag: YES\r\nX-Spam-Score: 7\r\n");
    EXPECT_EQ(prepended_fields("X-Folded: a\r\n\tb\r\n" + kMessage, kMessage), "X-Folded: a\r\n\tb\r\n");
    EXPECT_FALSE(prepended_fields(kMessage, kMessage));                              // nothing added
    EXPECT_FALSE(prepended_fields(kMessage + "more", kMessage));                      // not in front
    EXPECT_FALSE(prepended_fields("\tcontinued\r\n" + kMessage, kMessage));          // not a field of its own
    EXPECT_FALSE(prepended_fields("X: 1\r\n\r\n" + kMessage, kMessage));             // an empty line: a new body
    EXPECT_FALSE(prepended_fields("X: no line end" + kMessage, kMessage));
}

TEST(FilterChain, DefaultRepliesAreFiltersOwnOrPostfixs) {
    Decision d;
    d.action = Decision::Action::reject;
    EXPECT_EQ(reply_for(d, "mx.test").render(), "550 5.7.1 Command rejected\r\n");
    d.action = Decision::Action::tempfail;
    EXPECT_EQ(reply_for(d, "mx.test").render(), "451 4.7.1 Service unavailable - try again later\r\n");
    d.action = Decision::Action::shutdown;
    EXPECT_EQ(reply_for(d, "mx.test").code, 421);
    d.reply = smtp::Reply(554, "5.7.0", "custom");
    EXPECT_EQ(reply_for(d, "mx.test").render(), "554 5.7.0 custom\r\n");
}

}  // namespace
}  // namespace ferry::filter
