#include <gtest/gtest.h>

#include <set>

#include "policy/client_network.hpp"

namespace ferry::policy {
namespace {

IpAddress ip(std::string_view text) {
    const auto a = parse_ip(text);
    EXPECT_TRUE(a) << text;
    return a.value_or(IpAddress{});
}

IpNetwork net(std::string_view text) {
    const auto n = parse_network(text);
    EXPECT_TRUE(n) << text;
    return n.value_or(IpNetwork{});
}

TEST(ClientNetworkParseIp, Ipv4IsStoredAsMappedIpv6) {
    const IpAddress a = ip("192.0.2.1");
    EXPECT_TRUE(a.v4);
    const std::array<std::uint8_t, 16> expected{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1};
    EXPECT_EQ(a.octets, expected);
    EXPECT_EQ(a.to_string(), "192.0.2.1");
}

TEST(ClientNetworkParseIp, Ipv6) {
    const IpAddress a = ip("2001:DB8::1");
    EXPECT_FALSE(a.v4);
    EXPECT_EQ(a.octets[0], 0x20);
    EXPECT_EQ(a.octets[1], 0x01);
    EXPECT_EQ(a.octets[15], 0x01);
    EXPECT_EQ(a.to_string(), "2001:db8::1");   // inet_ntop's canonical form (RFC 5952)
    EXPECT_EQ(ip("::1").to_string(), "::1");
    EXPECT_EQ(ip("::").to_string(), "::");
}

TEST(ClientNetworkParseIp, MappedIpv6ReadsAsTheIpv4AddressItMaps) {
    // RFC 4291 2.5.5.2: a dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d; they are IPv4 clients.
    const IpAddress mapped = ip("::ffff:192.0.2.1");
    EXPECT_TRUE(mapped.v4);
    EXPECT_EQ(mapped, ip("192.0.2.1"));
    EXPECT_EQ(mapped.to_string(), "192.0.2.1");
    EXPECT_EQ(ip("::FFFF:c000:0201"), ip("192.0.2.1"));
    // The deprecated IPv4-compatible form (RFC 4291 2.5.5.1) is not a mapped address: IPv6.
    EXPECT_FALSE(ip("::192.0.2.1").v4);
}

TEST(ClientNetworkParseIp, RefusesWhatIsNotAnAddress) {
    for (const std::string_view bad : {"", "mx.example.test", "localhost", "[192.0.2.1]", "[::1]", "fe80::1%eth0",
                                       "fe80::1%1", " 192.0.2.1", "192.0.2.1 ", "192.0.2.1\n", "192.0.2", "192.0.2.256",
                                       "192.0.2.1.5", "0x7f.0.0.1", "1::2::3", "2001:db8::g", "192.0.2.1/32", ":::"}) {
        EXPECT_FALSE(parse_ip(bad)) << bad;
    }
    EXPECT_FALSE(parse_ip(std::string("192.0.2.1\0garbage", 17)));   // inet_pton would stop at the NUL
    EXPECT_FALSE(parse_ip(std::string(100, '1')));
}

TEST(ClientNetworkParseNetwork, CidrAndAddressesAlone) {
    const IpNetwork v4 = net("192.0.2.0/24");
    EXPECT_TRUE(v4.base.v4);
    EXPECT_EQ(v4.bits, 24u);
    EXPECT_EQ(v4.to_string(), "192.0.2.0/24");
    EXPECT_EQ(net("192.0.2.7").bits, 32u);
    EXPECT_EQ(net("192.0.2.7").to_string(), "192.0.2.7/32");
    EXPECT_EQ(net("2001:db8::/32").to_string(), "2001:db8::/32");
    EXPECT_EQ(net("2001:db8::1").bits, 128u);
    EXPECT_EQ(net("0.0.0.0/0").bits, 0u);
    EXPECT_EQ(net("::/0").bits, 0u);
    EXPECT_EQ(net("2001:db8::1/128").bits, 128u);
    EXPECT_EQ(net("10.1.2.3/32").bits, 32u);
}

TEST(ClientNetworkParseNetwork, MappedNotationCountsIpv6Bits) {
    // "::ffff:192.0.2.0/120" is the IPv4 network 192.0.2.0/24 written in IPv6 bits.
    EXPECT_EQ(net("::ffff:192.0.2.0/120"), net("192.0.2.0/24"));
    EXPECT_EQ(net("::ffff:0.0.0.0/96"), net("0.0.0.0/0"));
    EXPECT_FALSE(parse_network("::ffff:192.0.2.0/24"));   // would reach outside the IPv4 addresses
}

TEST(ClientNetworkParseNetwork, RefusesBitsOutsideTheFamilyAndHostBits) {
    for (const std::string_view bad : {"192.0.2.0/33", "2001:db8::/129", "192.0.2.0/", "/24", "192.0.2.0/-1",
                                       "192.0.2.0/+24", "192.0.2.0/024", "192.0.2.0/ 24", "192.0.2.0 /24",
                                       "192.0.2.0/24 ", "192.0.2.0/24/8", "192.0.2.0/2x", "example.test/24",
                                       "192.0.2.0/4294967320", "[2001:db8::]/32", ""}) {
        EXPECT_FALSE(parse_network(bad)) << bad;
    }
    // Host bits after the prefix: a typo, refused instead of guessed.
    EXPECT_FALSE(parse_network("192.0.2.1/24"));
    EXPECT_FALSE(parse_network("192.0.2.128/24"));
    EXPECT_FALSE(parse_network("192.0.3.0/23"));   // the last bit of the third octet is a host bit in a /23
    EXPECT_TRUE(parse_network("192.0.2.0/23"));
    EXPECT_FALSE(parse_network("2001:db8::1/64"));
    EXPECT_FALSE(parse_network("2001:db8:0:0:8000::/64"));
    EXPECT_TRUE(parse_network("192.0.2.128/25"));
    EXPECT_TRUE(parse_network("2001:db8:0:0:8000::/65"));
}

TEST(ClientNetworkContains, PrefixesOfEveryLength) {
    const IpNetwork n = net("192.0.2.0/24");
    EXPECT_TRUE(n.contains(ip("192.0.2.0")));
    EXPECT_TRUE(n.contains(ip("192.0.2.255")));
    EXPECT_FALSE(n.contains(ip("192.0.3.0")));
    EXPECT_FALSE(n.contains(ip("192.0.1.255")));
    const IpNetwork odd = net("10.0.0.0/9");   // a prefix that ends inside an octet
    EXPECT_TRUE(odd.contains(ip("10.127.255.255")));
    EXPECT_FALSE(odd.contains(ip("10.128.0.0")));
    EXPECT_TRUE(net("0.0.0.0/0").contains(ip("203.0.113.9")));
    EXPECT_TRUE(net("192.0.2.7").contains(ip("192.0.2.7")));
    EXPECT_FALSE(net("192.0.2.7").contains(ip("192.0.2.6")));
    const IpNetwork v6 = net("2001:db8::/33");
    EXPECT_TRUE(v6.contains(ip("2001:db8:7fff:ffff::1")));
    EXPECT_FALSE(v6.contains(ip("2001:db8:8000::")));
    EXPECT_TRUE(net("::/0").contains(ip("2001:db8::1")));
    EXPECT_TRUE(net("::1/128").contains(ip("::1")));
}

TEST(ClientNetworkContains, FamiliesMustMatch) {
    // ::/0 holds ::ffff:0:0/96 as bits, but an IPv4 client is not an IPv6 client; and the other way round.
    EXPECT_FALSE(net("::/0").contains(ip("192.0.2.1")));
    EXPECT_FALSE(net("::/0").contains(ip("::ffff:192.0.2.1")));
    EXPECT_FALSE(net("0.0.0.0/0").contains(ip("::1")));
    EXPECT_FALSE(net("0.0.0.0/0").contains(ip("2001:db8::1")));
    EXPECT_TRUE(net("192.0.2.0/24").contains(ip("::ffff:192.0.2.9")));   // mapped: the same IPv4 client
}

TEST(ClientNetworkNetworkOf, ClearsHostBitsPerFamily) {
    EXPECT_EQ(network_of(ip("192.0.2.77"), 24, 64), net("192.0.2.0/24"));
    EXPECT_EQ(network_of(ip("::ffff:192.0.2.77"), 24, 64), net("192.0.2.0/24"));
    EXPECT_EQ(network_of(ip("2001:db8:1:2:3:4:5:6"), 24, 64), net("2001:db8:1:2::/64"));
    EXPECT_EQ(network_of(ip("192.0.2.77"), 32, 64), net("192.0.2.77/32"));
    EXPECT_EQ(network_of(ip("192.0.2.77"), 20, 64), net("192.0.0.0/20"));
    EXPECT_EQ(network_of(ip("2001:db8::1"), 32, 128), net("2001:db8::1/128"));
    EXPECT_EQ(network_of(ip("192.0.2.77"), 0, 0), net("0.0.0.0/0"));
    // Bits past the family's width mean the whole address.
    EXPECT_EQ(network_of(ip("192.0.2.77"), 64, 200), net("192.0.2.77/32"));
    EXPECT_EQ(network_of(ip("2001:db8::1"), 24, 200), net("2001:db8::1/128"));
    EXPECT_TRUE(network_of(ip("192.0.2.77"), 24, 64).contains(ip("192.0.2.77")));
}

TEST(ClientNetworkKey, EqualNetworksEqualKeysOthersDiffer) {
    EXPECT_EQ(network_of(ip("192.0.2.1"), 24, 64).key(), network_of(ip("192.0.2.200"), 24, 64).key());
    EXPECT_EQ(network_of(ip("2001:db8::1"), 24, 64).key(), network_of(ip("2001:db8::ffff"), 24, 64).key());
    EXPECT_EQ(net("192.0.2.0/24").key().size(), 17u);
    std::set<std::string> keys;
    for (const std::string_view n : {"0.0.0.0/0", "::/0", "192.0.2.0/24", "192.0.2.0/25", "192.0.3.0/24", "::/96",
                                     "::ffff:0:0/96", "::ffff:0:0/104", "0.0.0.0/8", "2001:db8::/64", "2001:db8::/65"})
        keys.insert(net(n).key());
    // "::ffff:0:0/96" is "0.0.0.0/0" and "::ffff:0:0/104" is "0.0.0.0/8": the same networks, the same keys.
    EXPECT_EQ(keys.size(), 9u);
    EXPECT_EQ(net("::ffff:0:0/104").key(), net("0.0.0.0/8").key());
}

TEST(ClientNetworkInAny, AnyListedNetwork) {
    const std::vector<IpNetwork> allow{net("127.0.0.0/8"), net("::1/128"), net("2001:db8:5::/48")};
    EXPECT_TRUE(in_any(allow, ip("127.0.0.1")));
    EXPECT_TRUE(in_any(allow, ip("127.255.0.3")));
    EXPECT_TRUE(in_any(allow, ip("::ffff:127.0.0.1")));
    EXPECT_TRUE(in_any(allow, ip("::1")));
    EXPECT_TRUE(in_any(allow, ip("2001:db8:5:ffff::9")));
    EXPECT_FALSE(in_any(allow, ip("128.0.0.1")));
    EXPECT_FALSE(in_any(allow, ip("::2")));
    EXPECT_FALSE(in_any(allow, ip("2001:db8:6::1")));
    EXPECT_FALSE(in_any({}, ip("127.0.0.1")));
}

}  // namespace
}  // namespace ferry::policy
