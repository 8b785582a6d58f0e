#include <gtest/gtest.h>

#include "policy/dnsbl.hpp"

namespace ferry::policy {
namespace {

constexpr std::uint32_t ip(unsigned a, unsigned b, unsigned c, unsigned d) { return a << 24 | b << 16 | c << 8 | d; }

TEST(Dnsbl, QueryNamesReverseIpv4OctetsAndIpv6Nibbles) {
    // RFC 5782 2.1 and 2.4, with the RFC's own examples.
    EXPECT_EQ(dnsbl_query_name("192.0.2.99", "dnsbl.example.net"), "99.2.0.192.dnsbl.example.net");
    EXPECT_EQ(dnsbl_query_name("2001:db8:1:2:3:4:567:89ab", "ugly.example.com."),
              "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.ugly.example.com");
    EXPECT_EQ(dnsbl_query_name("::ffff:192.0.2.1", "zen.test"), "1.2.0.192.zen.test");   // IPv4-mapped: as IPv4
    EXPECT_EQ(dnsbl_query_name("127.0.0.2", "zen.test"), "2.0.0.127.zen.test");           // the RFC 5782 5 test point
}

TEST(Dnsbl, QueryNamesRefuseWhatIsNotAnAddress) {
    EXPECT_FALSE(dnsbl_query_name("mx.example.test", "zen.test"));
    EXPECT_FALSE(dnsbl_query_name("192.0.2.1", ""));
    EXPECT_FALSE(dnsbl_query_name("192.0.2.1", "."));
    EXPECT_FALSE(dnsbl_query_name(std::string("192.0.2.1\0x", 11), "zen.test"));
    EXPECT_FALSE(dnsbl_query_name("", "zen.test"));
    EXPECT_FALSE(dnsbl_query_name("[192.0.2.1]", "zen.test"));
}

TEST(Dnsbl, ResponseRanges) {
    EXPECT_EQ(parse_response_range("127.0.0.2"), (ResponseRange{ip(127, 0, 0, 2), ip(127, 0, 0, 2)}));
    EXPECT_EQ(parse_response_range("127.0.0.2-127.0.0.11"), (ResponseRange{ip(127, 0, 0, 2), ip(127, 0, 0, 11)}));
    EXPECT_FALSE(parse_response_range("127.0.0.11-127.0.0.2"));   // reversed
    EXPECT_FALSE(parse_response_range("10.0.0.2"));               // outside 127.0.0.0/8 (RFC 5782 2.3)
    EXPECT_FALSE(parse_response_range("127.0.0.2-"));
    EXPECT_FALSE(parse_response_range("127.0.0"));
    EXPECT_FALSE(parse_response_range(""));
}

TEST(Dnsbl, OnlyListedAnswersCount) {
    const std::vector<ResponseRange> zen{{ip(127, 0, 0, 2), ip(127, 0, 0, 11)}};
    EXPECT_EQ(classify_dnsbl_answer({}, zen), DnsblAnswer::not_listed);   // NXDOMAIN
    EXPECT_EQ(classify_dnsbl_answer({ip(127, 0, 0, 2)}, zen), DnsblAnswer::listed);
    EXPECT_EQ(classify_dnsbl_answer({ip(127, 0, 0, 11), ip(127, 0, 0, 4)}, zen), DnsblAnswer::listed);
    EXPECT_EQ(classify_dnsbl_answer({ip(127, 0, 0, 12)}, zen), DnsblAnswer::not_listed);   // not one we count
    EXPECT_EQ(classify_dnsbl_answer({ip(127, 0, 0, 2)}, {}), DnsblAnswer::not_listed);     // nothing counts
}

TEST(Dnsbl, RefusedQueriesAreErrorsNeverListings) {
    // Even when the operator's ranges would take them in: a refused query says nothing about the client.
    const std::vector<ResponseRange> everything{{ip(127, 0, 0, 0), ip(127, 255, 255, 255)}};
    EXPECT_EQ(classify_dnsbl_answer({ip(127, 255, 255, 254)}, everything), DnsblAnswer::error);   // public resolver
    EXPECT_EQ(classify_dnsbl_answer({ip(127, 255, 255, 255)}, everything), DnsblAnswer::error);   // over quota
    EXPECT_EQ(classify_dnsbl_answer({ip(127, 0, 0, 255)}, everything), DnsblAnswer::error);       // dnswl limit
    EXPECT_EQ(classify_dnsbl_answer({ip(127, 0, 0, 2), ip(127, 255, 255, 252)}, everything), DnsblAnswer::error);
    EXPECT_EQ(classify_dnsbl_answer({ip(192, 0, 2, 1)}, everything), DnsblAnswer::error);         // not 127/8
}

TEST(Dnsbl, ScoreSumsTheWeightsOfListingsOnly) {
    EXPECT_EQ(dnsbl_score({}), 0);
    EXPECT_EQ(dnsbl_score({{DnsblAnswer::listed, 3}, {DnsblAnswer::not_listed, 5}, {DnsblAnswer::error, 7},
                           {DnsblAnswer::listed, -2}}),
              1);
}

}  // namespace
}  // namespace ferry::policy
