// parse_rspamd_reply on replies captured from Debian's rspamd 3.4 (tests/integration/rspamdtest.py, curl to
// /checkv2), and on the shapes other versions write (rspamd >= 3.3 lists in milter.add_headers).
#include <gtest/gtest.h>

#include <string>

#include "filter/rspamd_reply.hpp"

using namespace ferry;
using filter::Decision;
using filter::HeaderEdit;
using filter::parse_rspamd_reply;

namespace {

config::RspamdSettings settings() { return config::RspamdSettings{}; }

// Captured: the GTUBE reject pattern.
constexpr const char* kReject =
    R"({"is_skipped":true,"score":15.0,"required_score":15.0,"action":"reject","symbols":{"GTUBE":{"name":"GTUBE","score":0.0,"metric_score":0.0}},"messages":{"smtp_message":"Gtube pattern"},"message-id":"rspamdtest.1@sender.example","time_real":0.041638})";
// Captured: the GTUBE add header pattern.
constexpr const char* kAddHeader =
    R"({"is_skipped":true,"score":6.0,"required_score":15.0,"action":"add header","symbols":{"GTUBE":{"name":"GTUBE","score":0.0,"metric_score":0.0}},"messages":{"smtp_message":"Gtube pattern"},"message-id":"rspamdtest.1@sender.example","time_real":0.000293})";
// Captured: the GTUBE rewrite subject pattern, on "Subject: Hi there".
constexpr const char* kRewriteSubject =
    R"({"is_skipped":true,"score":0.0,"required_score":15.0,"action":"rewrite subject","subject":"***SPAM*** Hi there","symbols":{"GTUBE":{"name":"GTUBE","score":0.0,"metric_score":0.0}},"messages":{"smtp_message":"Gtube pattern"},"message-id":"rspamdtest.1@sender.example","time_real":0.000365})";
// Captured: a force_actions rule with a message.
constexpr const char* kSoftReject =
    R"({"is_skipped":false,"score":0.0,"required_score":15.0,"action":"soft reject","symbols":{"FORCE_ACTION_FERRY_SOFT_REJECT":{"name":"FORCE_ACTION_FERRY_SOFT_REJECT","score":0.0,"metric_score":0.0,"options":["soft reject"]},"FROM_EQ_ENVFROM":{"name":"FROM_EQ_ENVFROM","score":0.0,"metric_score":0.0,"description":"From address is the same as the envelope"},"R_DKIM_NA":{"name":"R_DKIM_NA","score":0.0,"metric_score":0.0,"description":"Missing DKIM signature"},"FROM_NO_DN":{"name":"FROM_NO_DN","score":0.0,"metric_score":0.0,"description":"From header does not have a display name"},"FERRY_SOFT_REJECT_MARK":{"name":"FERRY_SOFT_REJECT_MARK","score":0.0,"metric_score":0.0,"description":"Ferry test marker: soft reject"},"R_SPF_NA":{"name":"R_SPF_NA","score":0.0,"metric_score":0.0,"description":"Missing SPF record","options":["no SPF record"]}},"messages":{"smtp_message":"Ferry test: try again later"},"message-id":"rspamdtest.1@sender.example","time_real":0.002088,"milter":{"remove_headers":{"X-Spam":0}}})";
// Captured: a force_actions rule without a message.
constexpr const char* kGreylist =
    R"({"is_skipped":false,"score":0.0,"required_score":15.0,"action":"greylist","symbols":{"FROM_EQ_ENVFROM":{"name":"FROM_EQ_ENVFROM","score":0.0,"metric_score":0.0,"description":"From address is the same as the envelope"},"FERRY_GREYLIST_MARK":{"name":"FERRY_GREYLIST_MARK","score":0.0,"metric_score":0.0,"description":"Ferry test marker: greylist"},"FORCE_ACTION_FERRY_GREYLIST":{"name":"FORCE_ACTION_FERRY_GREYLIST","score":0.0,"metric_score":0.0,"options":["greylist"]}},"messages":{},"message-id":"rspamdtest.1@sender.example","time_real":0.001495,"milter":{"remove_headers":{"X-Spam":0}}})";
// Captured: milter_headers with a custom routine (the rspamd < 3.3 object shape, order -1), and rspamd's own
// remove-spam-flag routine.
constexpr const char* kMilterBlock =
    R"({"is_skipped":false,"score":3.700000,"required_score":15.0,"action":"no action","symbols":{"ARC_NA":{"name":"ARC_NA","score":0.0,"metric_score":0.0,"description":"ARC signature absent"},"RDNS_NONE":{"name":"RDNS_NONE","score":1.0,"metric_score":1.0,"description":"Cannot resolve reverse DNS for sender's IP"},"ONCE_RECEIVED":{"name":"ONCE_RECEIVED","score":0.100000,"metric_score":0.100000,"description":"One received header in a message"},"AUTH_NA":{"name":"AUTH_NA","score":1.0,"metric_score":1.0,"description":"Authenticating message via SPF/DKIM/DMARC/ARC not available"},"SUBJ_ALL_CAPS":{"name":"SUBJ_ALL_CAPS","score":1.500000,"metric_score":3.0,"description":"All capital letters in subject","options":["20"]},"FERRY_MILTER_MARK":{"name":"FERRY_MILTER_MARK","score":0.0,"metric_score":0.0,"description":"Ferry test marker: milter headers"},"R_SPF_NA":{"name":"R_SPF_NA","score":0.0,"metric_score":0.0,"description":"Missing SPF record","options":["no SPF record"]},"MIME_TRACE":{"name":"MIME_TRACE","score":0.0,"metric_score":0.0,"options":["0:~"]},"MIME_UNKNOWN":{"name":"MIME_UNKNOWN","score":0.100000,"metric_score":0.100000,"description":"Missing or unknown content-type","options":["text/plain"]}},"messages":{},"message-id":"rspamdtest.1@sender.example","time_real":0.004530,"milter":{"add_headers":{"X-Ferry-Rspamd-Added":{"order":-1,"value":"added by rspamd"}},"remove_headers":{"X-Spam":0,"X-Ferry-Rspamd-Remove":0}}})";

void expect_edit(const HeaderEdit& e, HeaderEdit::Kind kind, long index, const std::string& name,
                 const std::string& value) {
    EXPECT_EQ(e.kind, kind) << e.name;
    EXPECT_EQ(e.index, index) << e.name;
    EXPECT_EQ(e.name, name);
    EXPECT_EQ(e.value, value) << e.name;
}

}  // namespace

TEST(RspamdReply, RejectCarriesRspamdsSmtpMessage) {
    const auto r = parse_rspamd_reply(kReject, settings(), 5);
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.verdict.decision.action, Decision::Action::reject);
    ASSERT_TRUE(r.verdict.decision.reply);
    EXPECT_EQ(r.verdict.decision.reply->render(), "550 5.7.1 Gtube pattern\r\n");
    EXPECT_TRUE(r.verdict.header_edits.empty());
    EXPECT_FALSE(r.verdict.junk);
    EXPECT_EQ(r.verdict.summary, "action=reject score=15.00/15.00 symbols=GTUBE(0.00)");
}

TEST(RspamdReply, RejectWithoutMessageGetsTheDefaultText) {
    const auto r = parse_rspamd_reply(R"({"action":"reject","score":20,"required_score":15,"messages":{}})", settings(), 0);
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.verdict.decision.reply->render(), "550 5.7.1 Spam message rejected\r\n");
}

TEST(RspamdReply, SmtpMessageIsMadeOneLineOfPrintableAscii) {
    // A reply text must not end the SMTP reply early (CRLF) nor carry octets SMTP has no room for.
    const auto r = parse_rspamd_reply(R"({"action":"reject","messages":{"smtp_message":"spam\r\n250 ok \u00e9\u0001 x"}})",
                                      settings(), 0);
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.verdict.decision.reply->render(), "550 5.7.1 spam 250 ok ??? x\r\n");
    const std::string longer(2000, 'a');
    const auto l = parse_rspamd_reply(R"({"action":"reject","messages":{"smtp_message":")" + longer + "\"}}", settings(), 0);
    ASSERT_TRUE(l.ok()) << l.error;
    EXPECT_EQ(l.verdict.decision.reply->lines.at(0).size(), filter::kMaxRspamdReplyText);
}

TEST(RspamdReply, SoftRejectIsATempfailWithItsMessage) {
    const auto r = parse_rspamd_reply(kSoftReject, settings(), 5);
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.verdict.decision.action, Decision::Action::tempfail);
    EXPECT_EQ(r.verdict.decision.reply->render(), "451 4.7.1 Ferry test: try again later\r\n");
    EXPECT_TRUE(r.verdict.header_edits.empty());
    const auto d = parse_rspamd_reply(R"({"action":"soft reject"})", settings(), 5);
    EXPECT_EQ(d.verdict.decision.reply->render(), "451 4.7.1 Try again later\r\n");
}

TEST(RspamdReply, GreylistIsATempfail) {
    const auto r = parse_rspamd_reply(kGreylist, settings(), 5);
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.verdict.decision.action, Decision::Action::tempfail);
    EXPECT_EQ(r.verdict.decision.reply->render(), "451 4.7.1 Greylisted, try again later\r\n");
}

TEST(RspamdReply, AddHeaderIsJunkWithTheSpamFieldsOnTop) {
    const auto r = parse_rspamd_reply(kAddHeader, settings(), 5);
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.verdict.decision.action, Decision::Action::proceed);
    EXPECT_FALSE(r.verdict.decision.reply);
    EXPECT_TRUE(r.verdict.junk);
    const auto& e = r.verdict.header_edits;
    ASSERT_EQ(e.size(), 6u);
    expect_edit(e[0], HeaderEdit::Kind::remove, 0, "X-Spam-Flag", "");
    expect_edit(e[1], HeaderEdit::Kind::insert, 0, "X-Spam-Flag", "YES");
    expect_edit(e[2], HeaderEdit::Kind::remove, 0, "X-Spam-Score", "");
    expect_edit(e[3], HeaderEdit::Kind::insert, 1, "X-Spam-Score", "6.00");
    expect_edit(e[4], HeaderEdit::Kind::remove, 0, "X-Spam-Status", "");
    expect_edit(e[5], HeaderEdit::Kind::insert, 2, "X-Spam-Status", "Yes, score=6.00 required=15.00");
}

TEST(RspamdReply, SpamFieldNamesComeFromTheSettings) {
    config::RspamdSettings s;
    s.spam_flag_header = "X-Junk";
    s.score_header = "";   // left out
    s.status_header = "X-Junk-Status";
    const auto r = parse_rspamd_reply(R"({"action":"add header","score":7.126,"required_score":15})", s, 5);
    ASSERT_TRUE(r.ok()) << r.error;
    const auto& e = r.verdict.header_edits;
    ASSERT_EQ(e.size(), 4u);
    expect_edit(e[1], HeaderEdit::Kind::insert, 0, "X-Junk", "YES");
    expect_edit(e[3], HeaderEdit::Kind::insert, 1, "X-Junk-Status", "Yes, score=7.13 required=15.00");
}

TEST(RspamdReply, RewriteSubjectChangesTheFirstSubject) {
    const auto r = parse_rspamd_reply(kRewriteSubject, settings(), 5);
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.verdict.decision.action, Decision::Action::proceed);
    EXPECT_FALSE(r.verdict.junk);   // the marked subject is for the inbox
    ASSERT_EQ(r.verdict.header_edits.size(), 7u);
    expect_edit(r.verdict.header_edits.back(), HeaderEdit::Kind::change, 1, "Subject", "***SPAM*** Hi there");
}

TEST(RspamdReply, NoActionWithTheMilterBlockOfOldRspamd) {
    const auto r = parse_rspamd_reply(kMilterBlock, settings(), 6);
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.verdict.decision.action, Decision::Action::proceed);
    EXPECT_FALSE(r.verdict.junk);
    const auto& e = r.verdict.header_edits;
    ASSERT_EQ(e.size(), 3u);
    // remove_headers first, in the reply's order; then add_headers. Order -1: after the last of the 6 fields.
    expect_edit(e[0], HeaderEdit::Kind::remove, 0, "X-Spam", "");
    expect_edit(e[1], HeaderEdit::Kind::remove, 0, "X-Ferry-Rspamd-Remove", "");
    expect_edit(e[2], HeaderEdit::Kind::insert, 6, "X-Ferry-Rspamd-Added", "added by rspamd");
    EXPECT_EQ(r.verdict.summary,
              "action=no action score=3.70/15.00 symbols=SUBJ_ALL_CAPS(1.50),AUTH_NA(1.00),RDNS_NONE(1.00),"
              "MIME_UNKNOWN(0.10),ONCE_RECEIVED(0.10),+4");
}

TEST(RspamdReply, AddHeadersInEveryShape) {
    // rspamd < 3.3: "Name": "value" (append) or {"value", "order"}; rspamd >= 3.3: a list of those objects, one
    // field each.
    const auto r = parse_rspamd_reply(R"({"action":"no action","milter":{"add_headers":{
        "X-Plain":"plain value",
        "X-Object":{"value":"at two","order":2},
        "X-NoOrder":{"value":"appended"},
        "X-List":[{"value":"first","order":0},{"value":"second","order":1},"third"],
        "X-Negative":{"value":"before the last","order":-2},
        "X-Far":{"value":"top","order":-100}}}})",
                                      settings(), 4);
    ASSERT_TRUE(r.ok()) << r.error;
    const auto& e = r.verdict.header_edits;
    ASSERT_EQ(e.size(), 8u);
    expect_edit(e[0], HeaderEdit::Kind::append, 0, "X-Plain", "plain value");
    expect_edit(e[1], HeaderEdit::Kind::insert, 2, "X-Object", "at two");
    expect_edit(e[2], HeaderEdit::Kind::append, 0, "X-NoOrder", "appended");
    expect_edit(e[3], HeaderEdit::Kind::insert, 0, "X-List", "first");
    expect_edit(e[4], HeaderEdit::Kind::insert, 1, "X-List", "second");
    expect_edit(e[5], HeaderEdit::Kind::append, 0, "X-List", "third");
    expect_edit(e[6], HeaderEdit::Kind::insert, 3, "X-Negative", "before the last");
    expect_edit(e[7], HeaderEdit::Kind::insert, 0, "X-Far", "top");
}

TEST(RspamdReply, RemoveHeadersKeepsTheIndex) {
    const auto r = parse_rspamd_reply(
        R"({"action":"no action","milter":{"remove_headers":{"X-All":0,"X-Second":2,"X-Last":-1,"X-Bad":"one"}}})",
        settings(), 4);
    ASSERT_TRUE(r.ok()) << r.error;
    const auto& e = r.verdict.header_edits;
    ASSERT_EQ(e.size(), 3u);
    expect_edit(e[0], HeaderEdit::Kind::remove, 0, "X-All", "");
    expect_edit(e[1], HeaderEdit::Kind::remove, 2, "X-Second", "");
    expect_edit(e[2], HeaderEdit::Kind::remove, -1, "X-Last", "");
}

TEST(RspamdReply, HeaderEditsCannotInjectFields) {
    // A value's bare line break would start a field of its own; a name with ':' or a space is no field name.
    const auto r = parse_rspamd_reply(R"({"action":"no action","milter":{"add_headers":{
        "X-A":"one\r\nBcc: victim@example.org",
        "X-Folded":"first line\r\n\tsecond line",
        "Bad: Name":"x", "Bad Name":"x", "":"x"}}})",
                                      settings(), 4);
    ASSERT_TRUE(r.ok()) << r.error;
    const auto& e = r.verdict.header_edits;
    ASSERT_EQ(e.size(), 2u);
    expect_edit(e[0], HeaderEdit::Kind::append, 0, "X-A", "one  Bcc: victim@example.org");
    expect_edit(e[1], HeaderEdit::Kind::append, 0, "X-Folded", "first line\r\n\tsecond line");
}

TEST(RspamdReply, HeaderEditsAreBounded) {
    std::string adds;
    for (int i = 0; i < 100; ++i) adds += (i ? "," : "") + std::string("\"X-H") + std::to_string(i) + "\":\"v\"";
    const std::string huge(filter::kMaxRspamdHeaderValue + 1, 'v');
    const auto r = parse_rspamd_reply(R"({"action":"no action","milter":{"add_headers":{)" + adds +
                                          R"(}}})", settings(), 4);
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.verdict.header_edits.size(), filter::kMaxRspamdHeaderEdits);
    EXPECT_NE(r.verdict.summary.find("dropped_header_edits=36"), std::string::npos) << r.verdict.summary;
    const auto h = parse_rspamd_reply(R"({"action":"no action","milter":{"add_headers":{"X-Huge":")" + huge + "\"}}}",
                                      settings(), 4);
    ASSERT_TRUE(h.ok()) << h.error;
    EXPECT_TRUE(h.verdict.header_edits.empty());
}

TEST(RspamdReply, RefusedAndRejectedMessagesGetNoEdits) {
    const auto r = parse_rspamd_reply(
        R"({"action":"soft reject","milter":{"add_headers":{"X-A":"b"},"remove_headers":{"X-Spam":0}}})", settings(), 4);
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_TRUE(r.verdict.header_edits.empty());
}

TEST(RspamdReply, DiscardAndQuarantine) {
    const auto d = parse_rspamd_reply(R"({"action":"discard"})", settings(), 4);
    ASSERT_TRUE(d.ok()) << d.error;
    EXPECT_EQ(d.verdict.decision.action, Decision::Action::discard);
    const auto q = parse_rspamd_reply(R"({"action":"quarantine","messages":{"smtp_message":"held"}})", settings(), 4);
    ASSERT_TRUE(q.ok()) << q.error;
    EXPECT_EQ(q.verdict.decision.action, Decision::Action::proceed);
    EXPECT_TRUE(q.verdict.quarantine);
    EXPECT_EQ(q.verdict.quarantine_reason, "held");
}

TEST(RspamdReply, UnusableRepliesAreErrors) {
    for (const char* bad : {"", "not json", "[]", "{\"action\":1}", "{}", "{\"score\":3}",
                            "{\"action\":\"reject\"", "{\"action\":\"tempfail\"}", "{\"action\":\"Reject\"}",
                            "{\"error\":\"invalid command\",\"error_domain\":\"protocol-error\"}"}) {
        const auto r = parse_rspamd_reply(bad, settings(), 0);
        EXPECT_FALSE(r.ok()) << bad;
        EXPECT_FALSE(r.error.empty()) << bad;
    }
    EXPECT_EQ(parse_rspamd_reply(R"({"action":"fly away"})", settings(), 0).error, "unknown action \"fly away\"");
    EXPECT_EQ(parse_rspamd_reply(R"({"error":"invalid command"})", settings(), 0).error, "rspamd: invalid command");
}

TEST(RspamdReply, SizeAndDepthAreBounded) {
    std::string big = R"({"action":"no action","pad":")" + std::string(filter::kMaxRspamdReply, 'x') + "\"}";
    EXPECT_FALSE(parse_rspamd_reply(big, settings(), 0).ok());
    std::string deep = R"({"action":"no action","x":)" + std::string(100, '[') + std::string(100, ']') + "}";
    EXPECT_FALSE(parse_rspamd_reply(deep, settings(), 0).ok());
}

TEST(RspamdReply, UnknownFieldsAndOddTypesAreIgnored) {
    const auto r = parse_rspamd_reply(
        R"({"action":"add header","score":"high","required_score":null,"symbols":[1,2],"messages":"x",
            "milter":"no","dkim-signature":17,"new_field":{"a":[1,2,3]}})",
        settings(), 2);
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_TRUE(r.verdict.junk);
    EXPECT_EQ(r.verdict.header_edits.size(), 6u);
    EXPECT_EQ(r.verdict.summary, "action=add header score=0.00/0.00");
}

TEST(RspamdReply, DkimSignaturesGoOnTop) {
    // Captured: rspamd's dkim_signing for an authenticated user (User: header) with a key from rspamadm dkim_keygen;
    // folded with CRLF + TAB like the message it signed. A list (one per signing domain or key) is taken too.
    const auto one = parse_rspamd_reply(
        R"({"is_skipped":false,"score":2.1,"required_score":15.0,"action":"no action","dkim-signature":"v=1; a=rsa-sha256; c=relaxed/relaxed; d=sender.example;\r\n\ts=dkim; t=1796683250;\r\n\th=from:from:reply-to:subject:subject:date:date:message-id:message-id:\r\n\t to:to:cc; bh=yZQq1c8wjBl0fZ4Wc/oraMCAG1mZJv5v/hlvyFy+t6A=;\r\n\tb=dRTfqh2+YKyEGv5FGG0G4AN5P1vxAY2Jwiaka2oBUpguui14mBPDygbBJmKjph3SReH77e\r\n\td/qdX04gbfYYx0CumQIpDVWVmdvjON5H8H3qSHT9r1jt9KN1k2Snl3eS8PGNQq43RERF9B\r\n\tNDz4i+ZrOrif3Hfy31X45AkgFOUXQVShf0AT5K/kMCBmIi1jaP2hQqdidSP5czwzi5uFNX\r\n\ttXI9PVvGzTlH/OTeocS0FOur1EGADAfbgtWsT3jiAx/ejOV9Id1Y6ZdhifPtyelekLj/7L\r\n\tPO4xYlD+0j8YU17z8/JjQWrolEruKJuzRhSyVBisQC/Bts7OHH9o9j3LuRpY9Q==","milter":{"remove_headers":{"X-Spam":0}}})",
        settings(), 5);
    ASSERT_TRUE(one.ok()) << one.error;
    ASSERT_EQ(one.verdict.header_edits.size(), 2u);
    expect_edit(one.verdict.header_edits[0], HeaderEdit::Kind::remove, 0, "X-Spam", "");
    expect_edit(one.verdict.header_edits[1], HeaderEdit::Kind::insert, 0, "DKIM-Signature",
                "v=1; a=rsa-sha256; c=relaxed/relaxed; d=sender.example;\r\n\ts=dkim; t=1796683250;\r\n\th=from:from:reply-to:subject:subject:date:date:message-id:message-id:\r\n\t to:to:cc; bh=yZQq1c8wjBl0fZ4Wc/oraMCAG1mZJv5v/hlvyFy+t6A=;\r\n\tb=dRTfqh2+YKyEGv5FGG0G4AN5P1vxAY2Jwiaka2oBUpguui14mBPDygbBJmKjph3SReH77e\r\n\td/qdX04gbfYYx0CumQIpDVWVmdvjON5H8H3qSHT9r1jt9KN1k2Snl3eS8PGNQq43RERF9B\r\n\tNDz4i+ZrOrif3Hfy31X45AkgFOUXQVShf0AT5K/kMCBmIi1jaP2hQqdidSP5czwzi5uFNX\r\n\ttXI9PVvGzTlH/OTeocS0FOur1EGADAfbgtWsT3jiAx/ejOV9Id1Y6ZdhifPtyelekLj/7L\r\n\tPO4xYlD+0j8YU17z8/JjQWrolEruKJuzRhSyVBisQC/Bts7OHH9o9j3LuRpY9Q==");
    const auto two = parse_rspamd_reply(R"({"action":"no action","dkim-signature":["v=1; d=a.test","v=1; d=b.test",3]})",
                                        settings(), 4);
    ASSERT_TRUE(two.ok()) << two.error;
    ASSERT_EQ(two.verdict.header_edits.size(), 2u);
    expect_edit(two.verdict.header_edits[0], HeaderEdit::Kind::insert, 0, "DKIM-Signature", "v=1; d=a.test");
    expect_edit(two.verdict.header_edits[1], HeaderEdit::Kind::insert, 1, "DKIM-Signature", "v=1; d=b.test");
    std::string many = R"({"action":"no action","dkim-signature":[)";
    for (int i = 0; i < 20; ++i) many += (i ? "," : "") + std::string("\"v=1; d=d") + std::to_string(i) + ".test\"";
    const auto capped = parse_rspamd_reply(many + "]}", settings(), 4);
    ASSERT_TRUE(capped.ok()) << capped.error;
    EXPECT_EQ(capped.verdict.header_edits.size(), filter::kMaxRspamdDkimSignatures);
    // Not for a refused message.
    const auto refused = parse_rspamd_reply(R"({"action":"reject","dkim-signature":"v=1; d=a.test"})", settings(), 4);
    EXPECT_TRUE(refused.verdict.header_edits.empty());
}
