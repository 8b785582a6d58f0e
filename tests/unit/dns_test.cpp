#include "dns/mx_plan.hpp"
#include "dns/wire.hpp"

#include <gtest/gtest.h>

#include <set>

using namespace ferry::dns;

namespace {

// Wire-format name: each label with its length, then the root.
std::string wire_name(std::initializer_list<std::string_view> labels) {
    std::string out;
    for (auto l : labels) {
        out.push_back(static_cast<char>(l.size()));
        out.append(l);
    }
    out.push_back('\0');
    return out;
}

std::string mx_rdata(std::uint16_t preference, std::initializer_list<std::string_view> labels) {
    std::string out;
    out.push_back(static_cast<char>(preference >> 8));
    out.push_back(static_cast<char>(preference & 0xff));
    return out + wire_name(labels);
}

Answer mx_answer(std::vector<std::string> rdata) {
    Answer a;
    a.status = Answer::Status::data;
    a.rdata = std::move(rdata);
    return a;
}

TEST(DnsWire, ReadsNamesLowerCased) {
    const std::string wire = wire_name({"MX1", "Example", "ORG"}) + "tail";
    std::size_t pos = 0;
    EXPECT_EQ(read_name(wire, pos), "mx1.example.org");
    EXPECT_EQ(wire.substr(pos), "tail");
    std::size_t root = 0;
    EXPECT_EQ(read_name(std::string(1, '\0'), root), "");
    EXPECT_EQ(root, 1u);
}

TEST(DnsWire, RefusesMalformedNames) {
    const auto bad = [](std::string wire) {
        std::size_t pos = 0;
        return !read_name(wire, pos).has_value() && pos == 0;
    };
    EXPECT_TRUE(bad(""));
    EXPECT_TRUE(bad(std::string("\x03" "ab", 3)));                  // label runs past the end
    EXPECT_TRUE(bad(std::string("\x02" "ab", 3)));                  // no root label
    EXPECT_TRUE(bad(std::string("\xc0\x0c", 2)));                   // compression pointer
    EXPECT_TRUE(bad(std::string("\x40", 1)));                       // obsolete label type
    EXPECT_TRUE(bad(wire_name({"a.b", "org"})));                    // a dot inside a label
    EXPECT_TRUE(bad(wire_name({"a b", "org"})));                    // space
    EXPECT_TRUE(bad(wire_name({std::string("a\nb"), "org"})));      // control octet
    // 255 octets at most (RFC 1035 2.3.4): four 63-octet labels are 257 with lengths and root.
    const std::string l63(63, 'a');
    EXPECT_TRUE(bad(wire_name({l63, l63, l63, l63})));
    std::size_t pos = 0;
    EXPECT_TRUE(read_name(wire_name({l63, l63, l63, std::string(61, 'b')}), pos).has_value());
}

TEST(DnsWire, ParsesMxAndAddresses) {
    EXPECT_EQ(parse_mx(mx_rdata(10, {"mx", "example", "org"})), (MxRecord{10, "mx.example.org"}));
    EXPECT_EQ(parse_mx(mx_rdata(65535, {})), (MxRecord{65535, ""}));
    EXPECT_FALSE(parse_mx(mx_rdata(10, {"mx"}) + "x"));   // trailing octets
    EXPECT_FALSE(parse_mx(std::string("\x00\x0a", 2)));
    EXPECT_EQ(parse_a(std::string("\x7f\x00\x00\x01", 4)), "127.0.0.1");
    EXPECT_FALSE(parse_a(std::string("\x7f\x00\x00", 3)));
    EXPECT_EQ(parse_aaaa(std::string(15, '\0') + '\x01'), "::1");
    EXPECT_FALSE(parse_aaaa(std::string(4, '\0')));
}

TEST(MxPlan, SortsByPreferenceAndShufflesEqualOnes) {
    std::set<std::string> first_seen;
    for (unsigned seed = 0; seed < 64; ++seed) {
        std::mt19937 random(seed);
        const auto plan = plan_mx("example.org",
                                  mx_answer({mx_rdata(20, {"c", "example", "org"}), mx_rdata(10, {"a", "example", "org"}),
                                             mx_rdata(30, {"d", "example", "org"}), mx_rdata(10, {"b", "example", "org"})}),
                                  random);
        ASSERT_EQ(plan.kind, MxPlan::Kind::hosts);
        ASSERT_EQ(plan.hosts.size(), 4u);
        EXPECT_EQ(plan.hosts[0].preference, 10);
        EXPECT_EQ(plan.hosts[1].preference, 10);
        EXPECT_EQ(plan.hosts[2].host, "c.example.org");
        EXPECT_EQ(plan.hosts[3].host, "d.example.org");
        EXPECT_FALSE(plan.hosts[0].implicit);
        first_seen.insert(plan.hosts[0].host);
    }
    // RFC 5321 5.1: equal preferences are tried in random order, so both come first sometimes.
    EXPECT_EQ(first_seen, (std::set<std::string>{"a.example.org", "b.example.org"}));
}

TEST(MxPlan, NoMxMeansTheDomainItself) {
    std::mt19937 random(1);
    Answer nodata;
    nodata.status = Answer::Status::no_data;
    const auto plan = plan_mx("example.org", nodata, random);
    ASSERT_EQ(plan.kind, MxPlan::Kind::hosts);
    ASSERT_EQ(plan.hosts.size(), 1u);
    EXPECT_EQ(plan.hosts[0].host, "example.org");
    EXPECT_TRUE(plan.hosts[0].implicit);
}

TEST(MxPlan, NullMxNxdomainAndTemporaryFailures) {
    std::mt19937 random(1);
    EXPECT_EQ(plan_mx("example.org", mx_answer({mx_rdata(0, {})}), random).kind, MxPlan::Kind::null_mx);
    // A null MX beside real ones is ignored (RFC 7505 3: a domain must not publish both).
    const auto mixed = plan_mx("example.org", mx_answer({mx_rdata(0, {}), mx_rdata(10, {"mx", "example", "org"})}), random);
    ASSERT_EQ(mixed.kind, MxPlan::Kind::hosts);
    ASSERT_EQ(mixed.hosts.size(), 1u);
    EXPECT_EQ(mixed.hosts[0].host, "mx.example.org");

    Answer nx;
    nx.status = Answer::Status::nxdomain;
    EXPECT_EQ(plan_mx("example.org", nx, random).kind, MxPlan::Kind::no_domain);
    Answer temp;
    temp.why = "SERVFAIL";
    const auto t = plan_mx("example.org", temp, random);
    EXPECT_EQ(t.kind, MxPlan::Kind::temporary);
    EXPECT_NE(t.reason.find("SERVFAIL"), std::string::npos);
    EXPECT_EQ(plan_mx("example.org", mx_answer({"garbage"}), random).kind, MxPlan::Kind::bad_records);
}

TEST(MxPlan, DuplicatesDroppedAndListCapped) {
    std::mt19937 random(1);
    std::vector<std::string> many;
    for (int i = 0; i < 30; ++i) many.push_back(mx_rdata(static_cast<std::uint16_t>(i), {"mx" + std::to_string(i), "org"}));
    many.push_back(mx_rdata(50, {"mx0", "org"}));   // again, at a worse preference
    const auto plan = plan_mx("org", mx_answer(many), random);
    ASSERT_EQ(plan.hosts.size(), kMaxMxHosts);
    EXPECT_EQ(plan.hosts[0].host, "mx0.org");
    EXPECT_EQ(plan.hosts[0].preference, 0);
    EXPECT_EQ(plan.hosts.back().preference, kMaxMxHosts - 1);
}

}  // namespace

TEST(DnsWire, TxtJoinsCharacterStrings) {
    EXPECT_EQ(parse_txt(std::string("\x05v=spf\x06""1 -all", 13)), "v=spf1 -all");
    EXPECT_EQ(parse_txt(std::string("\x00", 1)), "");
    EXPECT_FALSE(parse_txt(""));
    EXPECT_FALSE(parse_txt("\x05v=sp"));   // runs past the end
}

TEST(DnsWire, PtrIsOneName) {
    EXPECT_EQ(parse_ptr(wire_name({"mail", "Example", "org"})), "mail.example.org");
    EXPECT_FALSE(parse_ptr(wire_name({"mail"}) + "x"));
}

TEST(DnsWire, ReverseNames) {
    EXPECT_EQ(reverse_name("192.0.2.10"), "10.2.0.192.in-addr.arpa");
    EXPECT_EQ(reverse_name("2001:db8::1"),
              "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
    EXPECT_FALSE(reverse_name("example.org"));
    EXPECT_FALSE(reverse_name("192.0.2"));
}

namespace {

std::string u16(unsigned v) { return {static_cast<char>(v >> 8), static_cast<char>(v & 0xff)}; }

// A response header (RFC 1035 4.1.1): id 0, QR and RD set, `rcode`, the section counts.
std::string header(unsigned rcode, unsigned questions, unsigned answers) {
    return u16(0) + u16(0x8100 | rcode) + u16(questions) + u16(answers) + u16(0) + u16(0);
}

// A resource record (4.1.3): owner in wire form (labels or a pointer), TTL 60.
std::string rr(const std::string& owner, unsigned type, const std::string& rdata, unsigned klass = 1) {
    return owner + u16(type) + u16(klass) + u16(0) + u16(60) + u16(static_cast<unsigned>(rdata.size())) + rdata;
}

const std::string kPointerToQuestion = "\xc0\x0c";   // offset 12: the question's name

}  // namespace

TEST(DnsMessage, RcodeFromTheHeader) {
    EXPECT_EQ(message_rcode(header(0, 0, 0)), 0);
    EXPECT_EQ(message_rcode(header(2, 0, 0)), 2);
    EXPECT_EQ(message_rcode(header(3, 1, 0)), 3);
    EXPECT_FALSE(message_rcode(header(0, 0, 0).substr(0, 11)));
}

// What libunbound cannot hand over as records (it copies each with memdup(), which fails on zero octets): a TXT
// record of RDLENGTH 0 beside others, read from the whole message instead.
TEST(DnsMessage, AnswerRdataOfTheOwnerAndType) {
    const std::string q = wire_name({"Example", "ORG"});
    const std::string spf = std::string("\x0bv=spf1 -all");
    const std::string message = header(0, 1, 5) + q + u16(16) + u16(1) +
                                rr(kPointerToQuestion, 16, "") +                      // RDLENGTH 0
                                rr(kPointerToQuestion, 16, spf) +
                                rr(kPointerToQuestion, 16, std::string(1, '\0')) +    // one empty string
                                rr(kPointerToQuestion, 16, spf, 3) +                  // class CH: not ours
                                rr(wire_name({"other", "org"}), 16, spf);             // another owner
    const auto txt = answer_rdata(message, "example.org", 16);
    ASSERT_TRUE(txt);
    EXPECT_EQ(*txt, (std::vector<std::string>{"", spf, std::string(1, '\0')}));
    EXPECT_EQ(answer_rdata(message, "EXAMPLE.org.", 16), txt);   // any case, trailing dot or not
    EXPECT_EQ(answer_rdata(message, "other.org", 16), (std::vector<std::string>{spf}));
    EXPECT_EQ(answer_rdata(message, "example.org", 1), std::vector<std::string>{});
    EXPECT_EQ(answer_rdata(message, "org", 16), std::vector<std::string>{});
    // A name-bearing type's rdata may be compressed: never copied as it stands.
    EXPECT_FALSE(answer_rdata(message, "example.org", 15));
    EXPECT_FALSE(answer_rdata(message, "example.org", 12));
}

TEST(DnsMessage, AnswerAfterACnameIsOwnedByItsTarget) {
    // example.org CNAME txt.example.org (the target written as a label and a pointer to "example.org"), then
    // the TXT records of the target, owned by a pointer to the CNAME's rdata.
    const std::string q = wire_name({"example", "org"});
    const std::string head = header(0, 1, 3) + q + u16(16) + u16(1);
    const std::string cname_rdata = std::string("\x03txt") + kPointerToQuestion;
    const std::string with_cname = head + rr(kPointerToQuestion, 5, cname_rdata);
    const std::size_t target_at = with_cname.size() - cname_rdata.size();
    const std::string to_target = u16(0xc000 | static_cast<unsigned>(target_at));
    const std::string message = with_cname + rr(to_target, 16, "") + rr(to_target, 16, "\x02ok");
    EXPECT_EQ(answer_rdata(message, "txt.example.org", 16), (std::vector<std::string>{"", "\x02ok"}));
    EXPECT_EQ(answer_rdata(message, "example.org", 16), std::vector<std::string>{});
}

TEST(DnsMessage, MalformedMessagesGiveNothing) {
    const std::string q = wire_name({"example", "org"});
    const std::string head = header(0, 1, 1) + q + u16(16) + u16(1);
    const std::string good = head + rr(kPointerToQuestion, 16, "\x02ok");
    ASSERT_TRUE(answer_rdata(good, "example.org", 16));
    for (std::size_t cut = 0; cut < good.size(); ++cut)
        EXPECT_FALSE(answer_rdata(good.substr(0, cut), "example.org", 16)) << "cut at " << cut;
    // A pointer to itself, or forwards, would loop or read what is not a name yet.
    const std::string self = u16(0xc000 | static_cast<unsigned>(head.size()));
    EXPECT_FALSE(answer_rdata(head + rr(self, 16, "\x02ok"), "example.org", 16));
    const std::string ahead = u16(0xc000 | static_cast<unsigned>(head.size() + 2));
    EXPECT_FALSE(answer_rdata(head + rr(ahead + std::string(1, '\0'), 16, "\x02ok"), "example.org", 16));
    // A label type other than a length or a pointer (0x40, 0x80: the obsolete extended label types).
    EXPECT_FALSE(answer_rdata(head + rr(std::string("\x41", 1), 16, "\x02ok"), "example.org", 16));
    // A name over 255 octets (RFC 1035 2.3.4): five labels of 63 in the question.
    std::string chain;
    for (int i = 0; i < 5; ++i) chain += std::string(1, '\x3f') + std::string(63, 'a');
    const std::string long_head = header(0, 1, 1) + chain + std::string(1, '\0') + u16(16) + u16(1);
    EXPECT_FALSE(answer_rdata(long_head + rr(kPointerToQuestion, 16, "\x02ok"), "example.org", 16));
    // The record's RDLENGTH runs past the end.
    std::string overlong = good;
    overlong[good.size() - 4] = '\x09';
    EXPECT_FALSE(answer_rdata(overlong, "example.org", 16));
}
