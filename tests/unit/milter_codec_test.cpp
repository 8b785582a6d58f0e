// The milter protocol v6 wire format (MTA side): byte-exact commands, every reply decoded, frames in pieces,
// malformed frames as errors, and the mapping of replies to Decision and ContentVerdict.
#include <gtest/gtest.h>

#include <string>

#include "filter/milter_codec.hpp"

using namespace ferry;
using namespace ferry::filter::milter;
using namespace std::string_literals;

namespace {

// A frame written out by hand: length (big-endian, command + data), command, data.
std::string frame(char command, const std::string& data) {
    const std::uint32_t n = static_cast<std::uint32_t>(data.size() + 1);
    std::string out;
    out.push_back(static_cast<char>(n >> 24));
    out.push_back(static_cast<char>(n >> 16));
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n));
    out.push_back(command);
    return out + data;
}

Decoded decode_one(const std::string& bytes) {
    ReplyDecoder d;
    d.feed(bytes);
    return d.next();
}

Reply decode_ok(const std::string& bytes) {
    Decoded d = decode_one(bytes);
    EXPECT_EQ(d.status, Decoded::Status::reply) << d.error;
    return d.reply;
}

}  // namespace

TEST(MilterCodec, OptnegIsVersionActionsProtocolBigEndian) {
    EXPECT_EQ(encode_optneg(6, 0x1ff, 0x1fffff),
              "\x00\x00\x00\x0d"s "O" "\x00\x00\x00\x06"s "\x00\x00\x01\xff"s "\x00\x1f\xff\xff"s);
}

TEST(MilterCodec, MacrosAreStageThenNamesAndValues) {
    EXPECT_EQ(encode_macros('C', {{"j", "mx.example"}, {"{daemon_name}", "mx"}}),
              frame('D', "Cj\0mx.example\0{daemon_name}\0mx\0"s));
    EXPECT_EQ(encode_macros('T', {}), frame('D', "T"));
}

TEST(MilterCodec, ConnectCarriesHostFamilyPortAndAddress) {
    EXPECT_EQ(encode_connect("client.example", SMFIA_INET, 0x1234, "192.0.2.1"),
              frame('C', "client.example\0" "4" "\x12\x34" "192.0.2.1\0"s));
    EXPECT_EQ(encode_connect("[2001:db8::1]", SMFIA_INET6, 25, "2001:db8::1"),
              frame('C', "[2001:db8::1]\0" "6" "\x00\x19" "2001:db8::1\0"s));
    EXPECT_EQ(encode_connect("localhost", SMFIA_UNKNOWN, 99, "x"), frame('C', "localhost\0U"s));
}

TEST(MilterCodec, EnvelopeCommandsPutTheAddressInAngleBracketsThenTheArguments) {
    EXPECT_EQ(encode_helo("client.example"), frame('H', "client.example\0"s));
    EXPECT_EQ(encode_mail("a@example.org", {"SIZE=100", "BODY=8BITMIME"}),
              frame('M', "<a@example.org>\0SIZE=100\0BODY=8BITMIME\0"s));
    EXPECT_EQ(encode_mail("", {}), frame('M', "<>\0"s));
    EXPECT_EQ(encode_rcpt("b@example.net", {"NOTIFY=NEVER"}), frame('R', "<b@example.net>\0NOTIFY=NEVER\0"s));
}

TEST(MilterCodec, CommandsWithoutData) {
    EXPECT_EQ(encode_data(), "\x00\x00\x00\x01T"s);
    EXPECT_EQ(encode_eoh(), "\x00\x00\x00\x01N"s);
    EXPECT_EQ(encode_eob(), "\x00\x00\x00\x01" "E"s);
    EXPECT_EQ(encode_abort(), "\x00\x00\x00\x01" "A"s);
    EXPECT_EQ(encode_quit(), "\x00\x00\x00\x01Q"s);
    EXPECT_EQ(encode_quit_nc(), "\x00\x00\x00\x01K"s);
}

TEST(MilterCodec, HeaderIsNameAndValue) {
    EXPECT_EQ(encode_header("Subject", "hi\n\tthere"), frame('L', "Subject\0hi\n\tthere\0"s));
}

TEST(MilterCodec, BodyIsCutIntoChunksOfAtMost65535Octets) {
    EXPECT_EQ(encode_body(""), "");
    EXPECT_EQ(encode_body("a\r\n"), frame('B', "a\r\n"));
    const std::string body(65535 * 2 + 10, 'x');
    const std::string out = encode_body(body);
    EXPECT_EQ(out, frame('B', std::string(65535, 'x')) + frame('B', std::string(65535, 'x')) +
                       frame('B', std::string(10, 'x')));
}

TEST(MilterCodec, DecodesOptnegReplyWithMacroLists) {
    std::string data = "\x00\x00\x00\x06\x00\x00\x01\x01\x00\x00\x10\x20"s;
    data += "\x00\x00\x00\x02{mail_addr} i\0"s;
    data += "\x00\x00\x00\x05{msg_id}\0"s;
    const Reply r = decode_ok(frame('O', data));
    EXPECT_EQ(r.kind, Reply::Kind::optneg);
    EXPECT_EQ(r.optneg.version, 6u);
    EXPECT_EQ(r.optneg.actions, SMFIF_ADDHDRS | SMFIF_SETSYMLIST);
    EXPECT_EQ(r.optneg.protocol, SMFIP_NR_CONN | SMFIP_NOHDRS);
    ASSERT_TRUE(r.optneg.macro_lists[SMFIM_ENVFROM]);
    EXPECT_EQ(*r.optneg.macro_lists[SMFIM_ENVFROM], (std::vector<std::string>{"{mail_addr}", "i"}));
    ASSERT_TRUE(r.optneg.macro_lists[SMFIM_EOM]);
    EXPECT_EQ(*r.optneg.macro_lists[SMFIM_EOM], (std::vector<std::string>{"{msg_id}"}));
    EXPECT_FALSE(r.optneg.macro_lists[SMFIM_CONNECT]);
}

TEST(MilterCodec, DecodesEveryDataLessReply) {
    const std::pair<char, Reply::Kind> cases[] = {
        {'a', Reply::Kind::accept},   {'c', Reply::Kind::continue_}, {'r', Reply::Kind::reject},
        {'t', Reply::Kind::tempfail}, {'d', Reply::Kind::discard},   {'4', Reply::Kind::shutdown},
        {'f', Reply::Kind::conn_fail}, {'p', Reply::Kind::progress},  {'s', Reply::Kind::skip},
    };
    for (const auto& [command, kind] : cases) {
        const Reply r = decode_ok(frame(command, ""));
        EXPECT_EQ(r.kind, kind) << command;
        // The same reply with data is malformed.
        EXPECT_EQ(decode_one(frame(command, "x")).status, Decoded::Status::error) << command;
    }
}

TEST(MilterCodec, DecodesReplyCodeIntoAnSmtpReply) {
    Reply r = decode_ok(frame('y', "550 5.7.1 Spam go away\0"s));
    EXPECT_EQ(r.kind, Reply::Kind::replycode);
    EXPECT_EQ(r.reply.code, 550);
    EXPECT_EQ(r.reply.enhanced, "5.7.1");
    EXPECT_EQ(r.reply.lines, std::vector<std::string>{"Spam go away"});

    r = decode_ok(frame('y', "451-4.7.1 first\r\n451-4.7.1 second\r\n451 4.7.1 100%% sure\0"s));
    EXPECT_EQ(r.reply.code, 451);
    EXPECT_EQ(r.reply.enhanced, "4.7.1");
    EXPECT_EQ(r.reply.lines, (std::vector<std::string>{"first", "second", "100% sure"}));

    // No enhanced code: libmilter's default for the class.
    r = decode_ok(frame('y', "554 no thanks\0"s));
    EXPECT_EQ(r.reply.enhanced, "5.0.0");
    EXPECT_EQ(r.reply.lines, std::vector<std::string>{"no thanks"});
}

TEST(MilterCodec, RefusesBadReplyCodes) {
    for (const std::string& bad : {"250 2.0.0 ok"s, "650 5.7.1 x"s, "55 short"s, "550 4.7.1 class mismatch"s,
                                  "550x5.7.1 bad separator"s, "550-5.7.1 no last line"s,
                                  "550-5.7.1 a\r\n451 4.7.1 other code"s, "550 5.7.1 a\r\n550 5.7.1 after last"s, ""s}) {
        const Decoded d = decode_one(frame('y', bad + '\0'));
        EXPECT_EQ(d.status, Decoded::Status::error) << bad;
        EXPECT_FALSE(d.error.empty());
    }
    // Missing NUL.
    EXPECT_EQ(decode_one(frame('y', "550 5.7.1 x")).status, Decoded::Status::error);
}

TEST(MilterCodec, DecodesModifications) {
    Reply r = decode_ok(frame('h', "X-Test\0yes\0"s));
    EXPECT_EQ(r.kind, Reply::Kind::add_header);
    EXPECT_EQ(r.name, "X-Test");
    EXPECT_EQ(r.value, "yes");

    r = decode_ok(frame('i', "\x00\x00\x00\x02X-Ins\0v\0"s));
    EXPECT_EQ(r.kind, Reply::Kind::insert_header);
    EXPECT_EQ(r.index, 2u);
    EXPECT_EQ(r.name, "X-Ins");

    r = decode_ok(frame('m', "\x00\x00\x00\x01Subject\0\0"s));
    EXPECT_EQ(r.kind, Reply::Kind::change_header);
    EXPECT_EQ(r.index, 1u);
    EXPECT_EQ(r.value, "");

    r = decode_ok(frame('+', "<new@example.org>\0"s));
    EXPECT_EQ(r.kind, Reply::Kind::add_rcpt);
    EXPECT_EQ(r.address, "new@example.org");

    r = decode_ok(frame('2', "<p@example.org>\0NOTIFY=NEVER\0"s));
    EXPECT_EQ(r.kind, Reply::Kind::add_rcpt_par);
    EXPECT_EQ(r.address, "p@example.org");
    EXPECT_EQ(r.args, "NOTIFY=NEVER");

    r = decode_ok(frame('-', "old@example.org\0"s));
    EXPECT_EQ(r.kind, Reply::Kind::delete_rcpt);
    EXPECT_EQ(r.address, "old@example.org");

    r = decode_ok(frame('e', "<s@example.org>\0"s));
    EXPECT_EQ(r.kind, Reply::Kind::change_from);
    EXPECT_EQ(r.address, "s@example.org");
    EXPECT_EQ(r.args, "");
    r = decode_ok(frame('e', "<s@example.org>\0SIZE=5\0"s));
    EXPECT_EQ(r.args, "SIZE=5");

    r = decode_ok(frame('b', "new body\n"));
    EXPECT_EQ(r.kind, Reply::Kind::replace_body);
    EXPECT_EQ(r.value, "new body\n");

    r = decode_ok(frame('q', "held for review\0"s));
    EXPECT_EQ(r.kind, Reply::Kind::quarantine);
    EXPECT_EQ(r.value, "held for review");
}

TEST(MilterCodec, RefusesMalformedFrames) {
    // Missing NULs, short fixed fields, extra octets, empty names, unknown commands.
    for (const std::string& bad : {frame('h', "X-Test\0yes"s), frame('h', "X-Test"), frame('h', "\0v\0"s),
                                  frame('i', "\x00\x00\x01"s), frame('m', "\x00\x00\x00\x01Subject\0"s),
                                  frame('+', "a@b"), frame('+', "a@b\0junk"s), frame('e', ""),
                                  frame('O', "\x00\x00\x00\x06\x00\x00\x00\x00"s),
                                  frame('O', "\x00\x00\x00\x06\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x09x\0"s),
                                  frame('O', "\x00\x00\x00\x06\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01x"s),
                                  frame('l', "x"), frame('Z', ""), frame('q', "reason")}) {
        const Decoded d = decode_one(bad);
        EXPECT_EQ(d.status, Decoded::Status::error) << testing::PrintToString(bad);
        EXPECT_FALSE(d.error.empty());
    }
}

TEST(MilterCodec, RefusesZeroAndOversizedLengthsAndStaysInError) {
    ReplyDecoder d;
    d.feed("\x00\x10\x00\x01"s);   // 1 MiB + 1
    EXPECT_EQ(d.next().status, Decoded::Status::error);
    d.feed(frame('c', ""));
    EXPECT_EQ(d.next().status, Decoded::Status::error);   // sticky
    EXPECT_EQ(decode_one("\x00\x00\x00\x00"s).status, Decoded::Status::error);
    // The largest allowed length waits for its data instead.
    ReplyDecoder e;
    e.feed("\x00\x10\x00\x00"s "b");
    EXPECT_EQ(e.next().status, Decoded::Status::incomplete);
}

TEST(MilterCodec, FramesFedOneOctetAtATime) {
    const std::string stream = frame('p', "") + frame('h', "X-A\0one\0"s) + frame('y', "550 5.7.1 no\0"s) + frame('c', "");
    ReplyDecoder d;
    std::vector<Reply::Kind> kinds;
    for (char c : stream) {
        d.feed(std::string_view(&c, 1));
        for (;;) {
            Decoded r = d.next();
            ASSERT_NE(r.status, Decoded::Status::error) << r.error;
            if (r.status == Decoded::Status::incomplete) break;
            kinds.push_back(r.reply.kind);
        }
    }
    EXPECT_EQ(kinds, (std::vector<Reply::Kind>{Reply::Kind::progress, Reply::Kind::add_header,
                                               Reply::Kind::replycode, Reply::Kind::continue_}));
    EXPECT_EQ(d.buffered(), 0u);
}

TEST(MilterCodec, ShortInputIsIncomplete) {
    EXPECT_EQ(decode_one("").status, Decoded::Status::incomplete);
    EXPECT_EQ(decode_one("\x00\x00"s).status, Decoded::Status::incomplete);
    EXPECT_EQ(decode_one("\x00\x00\x00\x05h"s "X\0"s).status, Decoded::Status::incomplete);
}

TEST(MilterCodec, RepliesMapToDecisions) {
    using A = filter::Decision::Action;
    auto of = [](const std::string& bytes) { return decision_of(decode_ok(bytes)); };
    EXPECT_EQ(of(frame('c', "")).action, A::proceed);
    EXPECT_EQ(of(frame('a', "")).action, A::accept);
    filter::Decision d = of(frame('r', ""));
    EXPECT_EQ(d.action, A::reject);
    EXPECT_FALSE(d.reply);   // the default 550 5.7.1
    d = of(frame('t', ""));
    EXPECT_EQ(d.action, A::tempfail);
    EXPECT_FALSE(d.reply);
    EXPECT_EQ(of(frame('d', "")).action, A::discard);
    EXPECT_EQ(of(frame('4', "")).action, A::shutdown);
    EXPECT_EQ(of(frame('f', "")).action, A::shutdown);
    d = of(frame('y', "421 4.3.2 later\0"s));
    EXPECT_EQ(d.action, A::tempfail);
    ASSERT_TRUE(d.reply);
    EXPECT_EQ(d.reply->render(), "421 4.3.2 later\r\n");
    d = of(frame('y', "554 5.7.0 no\0"s));
    EXPECT_EQ(d.action, A::reject);
    EXPECT_EQ(d.reply->render(), "554 5.7.0 no\r\n");
}

TEST(MilterCodec, ModificationsGatherIntoAContentVerdict) {
    const std::uint32_t all = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_CHGBODY | SMFIF_ADDRCPT | SMFIF_ADDRCPT_PAR |
                              SMFIF_DELRCPT | SMFIF_CHGFROM | SMFIF_QUARANTINE;
    VerdictBuilder b(all, "Received");
    for (const std::string& f : {frame('h', "X-Add\0a\0"s), frame('i', "\x00\x00\x00\x00X-Top\0t\0"s),
                                 frame('m', "\x00\x00\x00\x00Subject\0new\0"s),
                                 frame('m', "\x00\x00\x00\x02Received\0\0"s), frame('e', "<s@x.org>\0"s),
                                 frame('+', "<r1@x.org>\0"s), frame('2', "<r2@x.org>\0NOTIFY=NEVER\0"s),
                                 frame('-', "<old@x.org>\0"s), frame('q', "look\0"s), frame('b', "line1\nline2\r\n"),
                                 frame('b', "line3")})
        ASSERT_EQ(b.add(decode_ok(f)), std::nullopt) << testing::PrintToString(f);
    const filter::ContentVerdict v = b.finish(decode_ok(frame('a', "")));
    EXPECT_EQ(v.decision.action, filter::Decision::Action::accept);
    ASSERT_EQ(v.header_edits.size(), 4u);
    EXPECT_EQ(v.header_edits[0].kind, filter::HeaderEdit::Kind::append);
    EXPECT_EQ(v.header_edits[0].name, "X-Add");
    EXPECT_EQ(v.header_edits[0].value, "a");
    EXPECT_EQ(v.header_edits[1].kind, filter::HeaderEdit::Kind::insert);
    EXPECT_EQ(v.header_edits[1].index, 0);
    EXPECT_EQ(v.header_edits[2].kind, filter::HeaderEdit::Kind::change);
    EXPECT_EQ(v.header_edits[2].index, 1);   // 0 means the first, as in Sendmail
    EXPECT_EQ(v.header_edits[2].value, "new");
    EXPECT_EQ(v.header_edits[3].index, 3);   // the filter's 2nd Received: is the 3rd with ours first
    EXPECT_EQ(v.header_edits[3].value, "");
    EXPECT_EQ(v.new_sender, "s@x.org");
    EXPECT_EQ(v.add_recipients, (std::vector<std::string>{"r1@x.org", "r2@x.org"}));
    EXPECT_EQ(v.delete_recipients, std::vector<std::string>{"old@x.org"});
    EXPECT_TRUE(v.quarantine);
    EXPECT_EQ(v.quarantine_reason, "look");
    EXPECT_EQ(v.new_body, "line1\r\nline2\r\nline3\r\n");
}

TEST(MilterCodec, ModificationsNotNegotiatedAreErrors) {
    VerdictBuilder b(SMFIF_ADDHDRS);
    EXPECT_EQ(b.add(decode_ok(frame('h', "X\0y\0"s))), std::nullopt);
    EXPECT_NE(b.add(decode_ok(frame('m', "\x00\x00\x00\x01X\0y\0"s))), std::nullopt);
    EXPECT_NE(b.add(decode_ok(frame('b', "x"))), std::nullopt);
    EXPECT_NE(b.add(decode_ok(frame('q', "r\0"s))), std::nullopt);
    EXPECT_NE(b.add(decode_ok(frame('c', ""))), std::nullopt);
}

TEST(MilterCodec, ToCrlfAndAngleBrackets) {
    EXPECT_EQ(to_crlf("a\nb\r\nc"), "a\r\nb\r\nc\r\n");
    EXPECT_EQ(to_crlf(""), "");
    EXPECT_EQ(strip_angle_brackets("<a@b>"), "a@b");
    EXPECT_EQ(strip_angle_brackets("a@b"), "a@b");
    EXPECT_EQ(strip_angle_brackets("<>"), "");
}
