#include "mailauth/dkim_key.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <fstream>
#include <string>

#include "dkim_rfc8463.hpp"
#include "temp_dir_test.hpp"

using namespace ferry;
using namespace ferry::mailauth;

namespace {

// Its public key as RFC 8463 A.2 publishes it.
const std::string kRfc8463RsaRecord =
    "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi"
    "0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3Q"
    "IDAQAB";

std::string pem_of(EVP_PKEY* key, bool traditional, const EVP_CIPHER* cipher = nullptr) {
    BIO* bio = BIO_new(BIO_s_mem());
    if (traditional) PEM_write_bio_PrivateKey_traditional(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
    else if (cipher) PEM_write_bio_PKCS8PrivateKey(bio, key, cipher, nullptr, 0, nullptr, const_cast<char*>("secret"));
    else PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    std::string out(data, static_cast<std::size_t>(n));
    BIO_free(bio);
    return out;
}

class DkimKeyFiles : public ferry::testing::TempDirTest {
protected:
    std::filesystem::path write(const std::string& name, const std::string& text) {
        const auto p = dir_ / name;
        std::ofstream(p, std::ios::binary) << text;
        return p;
    }
};

}  // namespace

TEST(DkimKeyRecord, Defaults) {
    const auto r = parse_key_record("p=AAAA");
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.record.key_type, DkimKeyType::rsa);
    EXPECT_EQ(r.record.public_key, std::string(3, '\0'));
    EXPECT_FALSE(r.record.revoked);
    EXPECT_FALSE(r.record.testing);
    EXPECT_FALSE(r.record.strict_identity);
    EXPECT_TRUE(r.record.allows_sha256());
}

TEST(DkimKeyRecord, Tags) {
    auto r = parse_key_record("v=DKIM1; k=ed25519; h=sha1 : SHA256; s=email:*; t=y:s:x; n=notes here; g=*; p=AA\r\n AA; zz=1;");
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.record.key_type, DkimKeyType::ed25519);
    EXPECT_EQ(r.record.hash_algorithms, (std::vector<std::string>{"sha1", "sha256"}));
    EXPECT_TRUE(r.record.allows_sha256());
    EXPECT_TRUE(r.record.testing);
    EXPECT_TRUE(r.record.strict_identity);
    EXPECT_EQ(r.record.public_key.size(), 3u);   // FWS inside p= is ignored
    r = parse_key_record("k=RSA; h=sha1; p=");
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r.record.revoked);   // empty p=: revoked (3.6.1)
    EXPECT_FALSE(r.record.allows_sha256());
    EXPECT_TRUE(parse_key_record("s=*; p=AAAA").ok());
    EXPECT_TRUE(parse_key_record("s=other:email; p=AAAA").ok());
}

TEST(DkimKeyRecord, Refusals) {
    EXPECT_EQ(parse_key_record("k=rsa; v=DKIM1; p=AAAA").error, "key record syntax: v= is not the first tag");
    EXPECT_EQ(parse_key_record("v=DKIM2; p=AAAA").error, "key record version is not DKIM1");
    EXPECT_EQ(parse_key_record("v=dkim1; p=AAAA").error, "key record version is not DKIM1");
    EXPECT_EQ(parse_key_record("v=DKIM1; k=dsa; p=AAAA").error, "unknown key type k=dsa");
    EXPECT_EQ(parse_key_record("v=DKIM1; k=rsa").error, "key record syntax: p= is missing");
    EXPECT_EQ(parse_key_record("v=DKIM1; p=AAA").error, "key record syntax: p= is not valid base64");
    EXPECT_EQ(parse_key_record("v=DKIM1; p=AA=A").error, "key record syntax: p= is not valid base64");
    EXPECT_EQ(parse_key_record("v=DKIM1; s=web; p=AAAA").error, "key record is not for email (s=)");
    EXPECT_EQ(parse_key_record("v=DKIM1; p=AAAA; p=BBBB").error, "key record syntax: tag given twice");
    EXPECT_FALSE(parse_key_record("this is not a key record").ok());
    EXPECT_FALSE(parse_key_record("").ok());   // no p=
}

TEST(DkimKeyRecord, PublicKeys) {
    // RSA: SubjectPublicKeyInfo (RFC 8463 A.2) and a bare RSAPublicKey (the form RFC 6376 3.6.1 names).
    auto r = parse_key_record(kRfc8463RsaRecord);
    ASSERT_TRUE(r.ok());
    auto key = record_public_key(r.record);
    ASSERT_TRUE(key);
    EXPECT_EQ(key_bits(key.get()), 1024);
    r = parse_key_record(
        "p=MIGJAoGBALVI635dLK4cJJAH3Lx6upo3X/Lm1tQz3mezcWTA3BUBnyIsdnRf57aD5BtNmhPrYYDlWlzw3UgnKisIxktkk5+iMQMlFtAS10JB8L3"
        "YadXNJY+JBcbeSi5TgJe4WFzNgW95FWDAuSTRXSWZfA/8xjflbTLDx0euFZOM7C4T0GwLAgMBAAE=");
    ASSERT_TRUE(r.ok());
    key = record_public_key(r.record);
    ASSERT_TRUE(key);
    EXPECT_EQ(key_bits(key.get()), 1024);
    // Ed25519: 32 raw octets (RFC 8463 4.2), not a SubjectPublicKeyInfo.
    r = parse_key_record("k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(record_public_key(r.record));
    r = parse_key_record("k=ed25519; p=MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
    ASSERT_TRUE(r.ok());
    EXPECT_FALSE(record_public_key(r.record));
    // The wrong type, junk and trailing octets are no key.
    r = parse_key_record("k=rsa; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
    EXPECT_FALSE(record_public_key(r.record));
    r = parse_key_record(kRfc8463RsaRecord.substr(0, kRfc8463RsaRecord.size() - 4) + "AQABAA==");
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_FALSE(record_public_key(r.record));
    r = parse_key_record("k=rsa; p=");
    EXPECT_FALSE(record_public_key(r.record));
}

TEST(DkimKeyGen, RsaDefaultAndEd25519) {
    const GeneratedKey rsa = generate_signing_key(DkimAlgorithm::rsa_sha256);
    EXPECT_TRUE(rsa.private_key_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    ASSERT_TRUE(rsa.txt_record.starts_with("v=DKIM1; k=rsa; p=MII")) << rsa.txt_record;
    std::string error;
    auto key = signing_key_from_pem(rsa.private_key_pem, "example.com", "s1", error);
    ASSERT_TRUE(key) << error;
    EXPECT_EQ(key->bits, 2048);
    EXPECT_EQ(key->algorithm, DkimAlgorithm::rsa_sha256);
    EXPECT_EQ(key->domain, "example.com");
    EXPECT_EQ(key->selector, "s1");
    EXPECT_EQ(public_key_record(key->key.get()), rsa.txt_record);
    auto rec = parse_key_record(rsa.txt_record);
    ASSERT_TRUE(rec.ok());
    EXPECT_EQ(key_bits(record_public_key(rec.record).get()), 2048);

    const GeneratedKey ed = generate_signing_key(DkimAlgorithm::ed25519_sha256);
    ASSERT_TRUE(ed.txt_record.starts_with("v=DKIM1; k=ed25519; p="));
    EXPECT_EQ(ed.txt_record.size(), std::string("v=DKIM1; k=ed25519; p=").size() + 44);   // 32 octets in base64
    key = signing_key_from_pem(ed.private_key_pem, "example.com", "s2", error);
    ASSERT_TRUE(key) << error;
    EXPECT_EQ(key->algorithm, DkimAlgorithm::ed25519_sha256);
    EXPECT_EQ(key->bits, 256);
    EXPECT_EQ(public_key_record(key->key.get()), ed.txt_record);
    rec = parse_key_record(ed.txt_record);
    ASSERT_TRUE(rec.ok());
    EXPECT_TRUE(record_public_key(rec.record));
    // A generated key signs, and its record verifies.
    const std::string digest(32, 'x');
    const auto sig = sign_digest(key->key.get(), key->algorithm, digest);
    ASSERT_TRUE(sig);
    EXPECT_TRUE(verify_digest(record_public_key(rec.record).get(), DkimAlgorithm::ed25519_sha256, digest, *sig));

    const GeneratedKey rsa1024 = generate_signing_key(DkimAlgorithm::rsa_sha256, 1024);
    EXPECT_EQ(signing_key_from_pem(rsa1024.private_key_pem, "d", "s", error)->bits, 1024);
    EXPECT_THROW(generate_signing_key(DkimAlgorithm::rsa_sha256, 512), std::invalid_argument);
    EXPECT_THROW(generate_signing_key(DkimAlgorithm::rsa_sha256, 8192), std::invalid_argument);
}

TEST_F(DkimKeyFiles, LoadsPemKeys) {
    std::string error;
    // Traditional RSA PEM (RFC 8463's own key).
    auto key = load_signing_key(write("rfc.pem", ferry::testing::kRfc8463RsaPem), "football.example.com", "test", error);
    ASSERT_TRUE(key) << error;
    EXPECT_EQ(key->bits, 1024);
    EXPECT_EQ(key->algorithm, DkimAlgorithm::rsa_sha256);
    EXPECT_EQ(public_key_record(key->key.get()), kRfc8463RsaRecord);
    // PKCS#8 RSA and Ed25519.
    EVP_PKEY* rsa = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<std::size_t>(1024));
    key = load_signing_key(write("rsa8.pem", pem_of(rsa, false)), "d", "s", error);
    ASSERT_TRUE(key) << error;
    EXPECT_EQ(key->bits, 1024);
    key = load_signing_key(write("rsatrad.pem", pem_of(rsa, true)), "d", "s", error);
    ASSERT_TRUE(key) << error;
    EVP_PKEY* ed = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
    key = load_signing_key(write("ed.pem", pem_of(ed, false)), "d", "s", error);
    ASSERT_TRUE(key) << error;
    EXPECT_EQ(key->algorithm, DkimAlgorithm::ed25519_sha256);
    // Encrypted keys are refused, without a prompt for the pass phrase.
    error.clear();
    EXPECT_FALSE(load_signing_key(write("enc.pem", pem_of(rsa, false, EVP_aes_256_cbc())), "d", "s", error));
    EXPECT_NE(error.find("not a PEM private key"), std::string::npos) << error;
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ed);
}

TEST_F(DkimKeyFiles, RefusesOtherKeys) {
    std::string error;
    EVP_PKEY* small = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<std::size_t>(768));
    EXPECT_FALSE(load_signing_key(write("small.pem", pem_of(small, false)), "d", "s", error));
    EXPECT_NE(error.find("at least 1024"), std::string::npos) << error;
    EVP_PKEY* ec = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    EXPECT_FALSE(load_signing_key(write("ec.pem", pem_of(ec, false)), "d", "s", error));
    EXPECT_NE(error.find("unsupported key type"), std::string::npos) << error;
    EXPECT_FALSE(load_signing_key(write("junk.pem", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), "d", "s", error));
    EXPECT_FALSE(load_signing_key(dir_ / "missing.pem", "d", "s", error));
    EXPECT_NE(error.find("missing.pem"), std::string::npos) << error;
    EXPECT_FALSE(load_signing_key(write("big.pem", std::string(kMaxKeyFileSize + 1, 'A')), "d", "s", error));
    EXPECT_NE(error.find("too large"), std::string::npos) << error;
    EVP_PKEY_free(small);
    EVP_PKEY_free(ec);
}

TEST(DkimKeyRecord, TxtPresentation) {
    EXPECT_EQ(txt_presentation("v=DKIM1; p=AB"), "\"v=DKIM1; p=AB\"");
    const std::string long_text(600, 'x');
    EXPECT_EQ(txt_presentation(long_text), "\"" + std::string(255, 'x') + "\" \"" + std::string(255, 'x') + "\" \"" +
                                              std::string(90, 'x') + "\"");
    EXPECT_EQ(txt_presentation("a\"b\\"), "\"a\\\"b\\\\\"");
    EXPECT_EQ(txt_presentation(""), "\"\"");
}
