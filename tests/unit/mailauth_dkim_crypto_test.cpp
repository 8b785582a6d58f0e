#include "mailauth/dkim_crypto.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <string>

using namespace ferry::mailauth;

TEST(DkimCrypto, Sha256) {
    EXPECT_EQ(base64_encode(sha256("")), "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
    EXPECT_EQ(base64_encode(sha256("abc")), "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");
    Sha256 h;
    h.update("a");
    h.update("");
    h.update("bc");
    EXPECT_EQ(h.final(), sha256("abc"));
    Sha256 moved = std::move(h);
    (void)moved;
}

TEST(DkimCrypto, Base64) {
    // RFC 4648 10.
    const std::pair<const char*, const char*> vectors[] = {
        {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"}};
    for (const auto& [plain, encoded] : vectors) {
        EXPECT_EQ(base64_encode(plain), encoded);
        const auto d = base64_decode(encoded);
        ASSERT_TRUE(d) << encoded;
        EXPECT_EQ(*d, plain);
    }
    const std::string all = [] {
        std::string s;
        for (int i = 0; i < 256; ++i) s += static_cast<char>(i);
        return s;
    }();
    EXPECT_EQ(base64_decode(base64_encode(all)), all);
    for (const char* bad : {"Zg=", "Zg", "Z===", "====", "Zm9v=", "Zm=v", "Zm9 v", "Zm9v\r\n", "Zm-v", "Zg==Zg==", "=Zm9"})
        EXPECT_FALSE(base64_decode(bad)) << bad;
}

TEST(DkimCrypto, SignAndVerifyDigests) {
    EVP_PKEY* rsa_raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<std::size_t>(1024));
    EVP_PKEY* ed_raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
    const PkeyPtr rsa(rsa_raw, EVP_PKEY_free), ed(ed_raw, EVP_PKEY_free);
    const std::string digest = sha256("the header data");
    const auto rs = sign_digest(rsa.get(), DkimAlgorithm::rsa_sha256, digest);
    const auto es = sign_digest(ed.get(), DkimAlgorithm::ed25519_sha256, digest);
    ASSERT_TRUE(rs);
    ASSERT_TRUE(es);
    EXPECT_EQ(rs->size(), 128u);
    EXPECT_EQ(es->size(), 64u);
    EXPECT_TRUE(verify_digest(rsa.get(), DkimAlgorithm::rsa_sha256, digest, *rs));
    EXPECT_TRUE(verify_digest(ed.get(), DkimAlgorithm::ed25519_sha256, digest, *es));
    // Deterministic: the same digest gives the same signature.
    EXPECT_EQ(sign_digest(rsa.get(), DkimAlgorithm::rsa_sha256, digest), rs);
    EXPECT_EQ(sign_digest(ed.get(), DkimAlgorithm::ed25519_sha256, digest), es);
    // Any change is a mismatch, never an error.
    const std::string other = sha256("other data");
    EXPECT_FALSE(verify_digest(rsa.get(), DkimAlgorithm::rsa_sha256, other, *rs));
    EXPECT_FALSE(verify_digest(ed.get(), DkimAlgorithm::ed25519_sha256, other, *es));
    std::string flipped = *rs;
    flipped[5] ^= 1;
    EXPECT_FALSE(verify_digest(rsa.get(), DkimAlgorithm::rsa_sha256, digest, flipped));
    EXPECT_FALSE(verify_digest(rsa.get(), DkimAlgorithm::rsa_sha256, digest, rs->substr(1)));
    EXPECT_FALSE(verify_digest(ed.get(), DkimAlgorithm::ed25519_sha256, digest, *es + "x"));
    EXPECT_FALSE(verify_digest(rsa.get(), DkimAlgorithm::rsa_sha256, digest, ""));
    // A key of the other type does nothing.
    EXPECT_FALSE(sign_digest(rsa.get(), DkimAlgorithm::ed25519_sha256, digest));
    EXPECT_FALSE(sign_digest(ed.get(), DkimAlgorithm::rsa_sha256, digest));
    EXPECT_FALSE(verify_digest(ed.get(), DkimAlgorithm::rsa_sha256, digest, *es));
    EXPECT_FALSE(verify_digest(nullptr, DkimAlgorithm::rsa_sha256, digest, *rs));
    EXPECT_FALSE(sign_digest(nullptr, DkimAlgorithm::rsa_sha256, digest));
}

TEST(DkimCrypto, Rfc8032Ed25519PublicKey) {
    // RFC 8032 7.1 test 1 (the key of RFC 8463 A.2): its public key, and a message of 0 octets signed.
    const auto raw = base64_decode("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
    ASSERT_TRUE(raw);
    const PkeyPtr key = ed25519_public_key(*raw);
    ASSERT_TRUE(key);
    // Signature of the empty message (RFC 8032 7.1 TEST 1), given in hex there.
    const std::string hex =
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe2465"
        "5141438e7a100b";
    std::string sig;
    for (std::size_t i = 0; i < hex.size(); i += 2) sig += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
    EXPECT_TRUE(verify_digest(key.get(), DkimAlgorithm::ed25519_sha256, "", sig));
    EXPECT_FALSE(ed25519_public_key(raw->substr(1)));
    EXPECT_FALSE(rsa_public_key(""));
    EXPECT_FALSE(rsa_public_key("garbage"));
}
