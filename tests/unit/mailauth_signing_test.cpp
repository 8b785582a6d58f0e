#include "mailauth/signing.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include "mailauth/dkim_key.hpp"
#include "temp_dir_test.hpp"

using namespace ferry;
using mailauth::SigningKeys;

namespace {

class SigningKeysTest : public ferry::testing::TempDirTest {
protected:
    config::DkimKeySettings key(const std::string& domain, const std::string& selector, mailauth::DkimAlgorithm alg) {
        const auto generated = mailauth::generate_signing_key(alg, 1024);
        const auto path = dir_ / (domain + "." + selector + ".pem");
        std::ofstream(path) << generated.private_key_pem;
        return config::DkimKeySettings{domain, selector, path};
    }
};

}  // namespace

TEST_F(SigningKeysTest, TheDomainsOwnKeysElseTheNearestParentsAllOfThem) {
    config::DkimSettings s;
    s.relaxed_body = false;
    s.keys = {key("example.org", "rsa", mailauth::DkimAlgorithm::rsa_sha256),
              key("example.org", "ed", mailauth::DkimAlgorithm::ed25519_sha256),
              key("news.example.org", "n", mailauth::DkimAlgorithm::ed25519_sha256)};
    const SigningKeys keys = SigningKeys::load(s);
    EXPECT_EQ(keys.options().header_canon, mailauth::DkimCanon::relaxed);
    EXPECT_EQ(keys.options().body_canon, mailauth::DkimCanon::simple);
    auto selectors = [&](std::string_view domain) {
        std::vector<std::string> out;
        for (const auto* k : keys.for_domain(domain)) out.push_back(k->domain + "/" + k->selector);
        return out;
    };
    EXPECT_EQ(selectors("example.org"), (std::vector<std::string>{"example.org/rsa", "example.org/ed"}));
    EXPECT_EQ(selectors("shop.example.org"), (std::vector<std::string>{"example.org/rsa", "example.org/ed"}));
    EXPECT_EQ(selectors("news.example.org"), (std::vector<std::string>{"news.example.org/n"}));
    EXPECT_EQ(selectors("a.news.example.org"), (std::vector<std::string>{"news.example.org/n"}));
    EXPECT_TRUE(selectors("example.net").empty());
    EXPECT_TRUE(selectors("org").empty());
    EXPECT_TRUE(selectors("badexample.org").empty());   // a parent by labels, not by suffix
}

TEST_F(SigningKeysTest, AnUnusableKeyNamesItself) {
    config::DkimSettings s;
    s.keys = {key("example.org", "ok", mailauth::DkimAlgorithm::ed25519_sha256),
              config::DkimKeySettings{"example.org", "gone", dir_ / "missing.pem"}};
    try {
        SigningKeys::load(s);
        FAIL() << "loaded a missing key";
    } catch (const std::runtime_error& e) {
        EXPECT_EQ(std::string(e.what()).rfind("dkim.key[1] (gone._domainkey.example.org): cannot read " + (dir_ / "missing.pem").string(), 0), 0u)
            << e.what();
    }
}

TEST(SigningDomain, FromFieldElseEnvelopeSender) {
    EXPECT_EQ(mailauth::signing_domain("From: A <a@News.Example.ORG>\r\n", "x@other.test"), "news.example.org");
    EXPECT_EQ(mailauth::signing_domain("Subject: none\r\n", "x@Other.test"), "other.test");
    EXPECT_EQ(mailauth::signing_domain("Subject: none\r\n", ""), std::nullopt);
}
