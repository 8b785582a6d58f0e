#include "accounts/sasl.hpp"

#include <gtest/gtest.h>

using namespace ferry::accounts;
using Kind = SaslExchange::Step::Kind;

namespace {

TEST(Base64, RoundTripAndRfc4648Vectors) {
    for (const auto& [plain, coded] : {std::pair{"", ""}, std::pair{"f", "Zg=="}, std::pair{"fo", "Zm8="},
                                       std::pair{"foo", "Zm9v"}, std::pair{"foob", "Zm9vYg=="},
                                       std::pair{"fooba", "Zm9vYmE="}, std::pair{"foobar", "Zm9vYmFy"}}) {
        EXPECT_EQ(base64_encode(plain), coded);
        EXPECT_EQ(base64_decode(coded), std::string(plain));
    }
    EXPECT_EQ(base64_decode("AGFsaWNlAHNlY3JldA=="), std::string("\0alice\0secret", 13));
}

TEST(Base64, RejectsWhatIsNotStrictBase64) {
    for (const char* bad : {"Zg", "Zg=", "Zm9v\r\n", "Zm 9v", "Zm9v!A==", "=Zm9", "Zg==Zg==", "Z===", "Zm9vY"})
        EXPECT_FALSE(base64_decode(bad)) << bad;
}

TEST(SaslPlain, ParsesTheThreeFields) {
    auto c = parse_plain(std::string("\0alice@example.test\0secret", 26));
    ASSERT_TRUE(c);
    EXPECT_EQ(c->authzid, "");
    EXPECT_EQ(c->authcid, "alice@example.test");
    EXPECT_EQ(c->password, "secret");
    c = parse_plain(std::string("admin\0alice\0pw", 14));
    ASSERT_TRUE(c);
    EXPECT_EQ(c->authzid, "admin");
    EXPECT_FALSE(parse_plain(std::string("\0\0pw", 4)));             // no authcid
    EXPECT_FALSE(parse_plain(std::string("\0alice\0", 7)));          // no password
    EXPECT_FALSE(parse_plain(std::string("alice\0pw", 8)));          // one NUL
    EXPECT_FALSE(parse_plain(std::string("\0alice\0pw\0x", 11)));    // three
    EXPECT_FALSE(parse_plain(std::string("\0alice\0", 7) + std::string(256, 'p')));
}

TEST(SaslExchange, PlainWithInitialResponse) {
    auto x = SaslExchange::start("plain");
    ASSERT_TRUE(x);
    const auto s = x->next(base64_encode(std::string("\0alice\0secret", 13)));
    ASSERT_EQ(s.kind, Kind::done);
    EXPECT_EQ(s.credentials.authcid, "alice");
    EXPECT_EQ(s.credentials.password, "secret");
}

TEST(SaslExchange, PlainWithEmptyChallenge) {
    auto x = SaslExchange::start("PLAIN");
    auto s = x->next(std::nullopt);
    ASSERT_EQ(s.kind, Kind::challenge);
    EXPECT_EQ(s.challenge, "");
    s = x->next(base64_encode(std::string("\0bob\0pw", 7)));
    ASSERT_EQ(s.kind, Kind::done);
    EXPECT_EQ(s.credentials.authcid, "bob");
}

TEST(SaslExchange, PlainMalformed) {
    EXPECT_EQ(SaslExchange::start("PLAIN")->next("not base64!").kind, Kind::malformed);
    EXPECT_EQ(SaslExchange::start("PLAIN")->next("=").kind, Kind::malformed);   // empty: no fields
    EXPECT_EQ(SaslExchange::start("PLAIN")->next(base64_encode("alice")).kind, Kind::malformed);
}

TEST(SaslExchange, LoginTwoChallenges) {
    auto x = SaslExchange::start("LOGIN");
    auto s = x->next(std::nullopt);
    ASSERT_EQ(s.kind, Kind::challenge);
    EXPECT_EQ(s.challenge, "VXNlcm5hbWU6");   // "Username:"
    s = x->next(base64_encode("alice@example.test"));
    ASSERT_EQ(s.kind, Kind::challenge);
    EXPECT_EQ(s.challenge, "UGFzc3dvcmQ6");   // "Password:"
    s = x->next(base64_encode("secret"));
    ASSERT_EQ(s.kind, Kind::done);
    EXPECT_EQ(s.credentials.authcid, "alice@example.test");
    EXPECT_EQ(s.credentials.password, "secret");
}

TEST(SaslExchange, LoginWithInitialUsername) {
    auto x = SaslExchange::start("login");
    auto s = x->next(base64_encode("alice"));
    ASSERT_EQ(s.kind, Kind::challenge);
    EXPECT_EQ(s.challenge, "UGFzc3dvcmQ6");
    EXPECT_EQ(x->next("").kind, Kind::malformed);   // empty password
}

TEST(SaslExchange, UnknownMechanism) {
    EXPECT_FALSE(SaslExchange::start("CRAM-MD5"));
    EXPECT_FALSE(SaslExchange::start(""));
}

}  // namespace
