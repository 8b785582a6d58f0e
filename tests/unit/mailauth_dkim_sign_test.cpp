#include "mailauth/dkim_sign.hpp"

#include <gtest/gtest.h>

#include "dkim_rfc8463.hpp"
#include <openssl/evp.h>

#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "fake_dns.hpp"
#include "mailauth/dkim_signature.hpp"
#include "mailauth/dkim_verify.hpp"

using namespace ferry;
using namespace ferry::mailauth;
using ferry::testing::FakeDns;
using ferry::testing::run_sync;

namespace {

constexpr std::time_t kNow = 1700000000;

const std::string kHeader =
    "Received: from client.example.com by mx.example.com; Tue, 14 Nov 2023 22:13:20 +0000\r\n"
    "From: Alice <alice@example.com>\r\n"
    "To: Bob <bob@example.net>,\r\n"
    "  Carol <carol@example.net>\r\n"
    "Subject: Lunch  on\tFriday?\r\n"
    "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
    "Message-ID: <1@example.com>\r\n"
    "X-Mailer: test\r\n";
const std::string kBody = "Hi Bob,\r\n\r\nlunch  at noon?  \r\n\r\n-- \r\nAlice\r\n\r\n\r\n";

struct Keys {
    DkimSigningKey rsa, ed;
    FakeDns dns;
};

DkimSigningKey key_from(const GeneratedKey& g, const std::string& selector) {
    std::string error;
    auto k = signing_key_from_pem(g.private_key_pem, "example.com", selector, error);
    EXPECT_TRUE(k) << error;
    return *k;
}

// One RSA (2048 bits, the default) and one Ed25519 key for the whole file: RSA generation takes a while.
const Keys& keys() {
    static const Keys k = [] {
        Keys keys;
        const GeneratedKey rsa = generate_signing_key(DkimAlgorithm::rsa_sha256);
        const GeneratedKey ed = generate_signing_key(DkimAlgorithm::ed25519_sha256);
        keys.rsa = key_from(rsa, "rsa");
        keys.ed = key_from(ed, "ed");
        keys.dns.txt("rsa._domainkey.example.com", rsa.txt_record);
        keys.dns.txt("ed._domainkey.example.com", ed.txt_record);
        return keys;
    }();
    return k;
}

std::string sign(const DkimSigningKey& key, DkimSignOptions options, const std::string& header,
                 const std::string& body, std::size_t piece = 1000) {
    DkimSigner s(key, std::move(options), header);
    for (std::size_t at = 0; at < body.size(); at += piece) s.feed_body(std::string_view(body).substr(at, piece));
    return s.finish(kNow);
}

std::vector<DkimOutcome> verify(const std::string& header, const std::string& body, std::time_t now = kNow) {
    FakeDns dns = keys().dns;
    DkimVerifier v(header);
    v.feed_body(body);
    return run_sync(v.verify(dns, now));
}

// A signature made by hand, for the tags DkimSigner never writes (l=, x=, i=, c= forms, unknown tags): `tags`
// is everything before bh= and b=; `names` is its h= list.
std::string hand_signed(const DkimSigningKey& key, const std::string& tags, const std::vector<std::string>& names,
                        DkimCanon header_canon, DkimCanon body_canon, std::optional<std::uint64_t> l,
                        const std::string& header, const std::string& body) {
    BodyHasher bh(body_canon, l);
    bh.feed(body);
    bh.finish();
    std::string field = "DKIM-Signature: " + tags + "; bh=" + base64_encode(bh.digest()) + ";\r\n b=";
    const auto data = signed_header_data(header_canon, mime::header_fields(header), names, field);
    const auto sig = sign_digest(key.key.get(), key.algorithm, sha256(data));
    EXPECT_TRUE(sig);
    return field + base64_encode(*sig) + "\r\n";
}

std::string tags_for(const DkimSigningKey& key, const std::string& more) {
    return "v=1; a=" + std::string(to_string(key.algorithm)) + "; d=example.com; s=" + key.selector +
           "; h=from:subject; " + more;
}

}  // namespace

TEST(DkimSign, RoundTripsForBothAlgorithmsAndCanonicalizations) {
    for (const DkimSigningKey* key : {&keys().rsa, &keys().ed}) {
        for (const auto hc : {DkimCanon::simple, DkimCanon::relaxed}) {
            for (const auto bc : {DkimCanon::simple, DkimCanon::relaxed}) {
                SCOPED_TRACE(std::string(to_string(key->algorithm)) + " " + std::string(to_string(hc)) + "/" +
                             std::string(to_string(bc)));
                const std::string field = sign(*key, {hc, bc, {}}, kHeader, kBody);
                ASSERT_FALSE(field.empty());
                auto out = verify(field + kHeader, kBody);
                ASSERT_EQ(out.size(), 1u);
                EXPECT_EQ(out[0].result, DkimResult::pass) << out[0].reason;
                EXPECT_EQ(out[0].domain, "example.com");
                EXPECT_EQ(out[0].selector, key->selector);
                EXPECT_EQ(out[0].identity, "@example.com");
                EXPECT_EQ(out[0].algorithm, to_string(key->algorithm));
                // Tampering: a signed header, the body, an added From.
                std::string h = kHeader;
                h.replace(h.find("Lunch"), 5, "Lynch");
                EXPECT_EQ(verify(field + h, kBody)[0].reason, "signature did not verify");
                EXPECT_EQ(verify(field + kHeader, kBody + "P.S.\r\n")[0].reason, "body hash did not verify");
                EXPECT_EQ(verify(field + kHeader + "From: mallory@evil.example\r\n", kBody)[0].result, DkimResult::fail);
                EXPECT_EQ(verify(field + "From: mallory@evil.example\r\n" + kHeader, kBody)[0].result, DkimResult::fail);
                // An unsigned field added (Received, X-*) does not matter.
                EXPECT_EQ(verify(field + "Received: by relay\r\n" + kHeader + "X-Spam: no\r\n", kBody)[0].result,
                          DkimResult::pass);
                // Expiry: none by default, so a verification years later still passes.
                EXPECT_EQ(verify(field + kHeader, kBody, kNow + 10 * 365 * 86400)[0].result, DkimResult::pass);
            }
        }
    }
}

TEST(DkimSign, OneSignerForSeveralKeysSignsWithEachInOrder) {
    for (const DkimCanon canon : {DkimCanon::simple, DkimCanon::relaxed}) {
        DkimSigner both({keys().rsa, keys().ed}, {canon, canon, {}}, kHeader);
        for (std::size_t at = 0; at < kBody.size(); at += 7) both.feed_body(std::string_view(kBody).substr(at, 7));
        const std::string fields = both.finish(kNow);
        const std::size_t second = fields.find("DKIM-Signature:", 1);
        ASSERT_NE(second, std::string::npos) << fields;
        // The same fields one key at a time make (RSA PKCS#1 v1.5 and Ed25519 are deterministic).
        EXPECT_EQ(fields.substr(0, second), sign(keys().rsa, {canon, canon, {}}, kHeader, kBody));
        EXPECT_EQ(fields.substr(second), sign(keys().ed, {canon, canon, {}}, kHeader, kBody));
        const auto out = verify(fields + kHeader, kBody);
        ASSERT_EQ(out.size(), 2u);
        EXPECT_EQ(out[0].result, DkimResult::pass) << out[0].reason;
        EXPECT_EQ(out[0].selector, "rsa");
        EXPECT_EQ(out[1].result, DkimResult::pass) << out[1].reason;
        EXPECT_EQ(out[1].selector, "ed");
    }
}

TEST(DkimSign, FieldFormat) {
    const std::string field = sign(keys().rsa, {}, kHeader, kBody);
    EXPECT_TRUE(field.starts_with("DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com; s=rsa;"))
        << field;
    EXPECT_TRUE(field.ends_with("\r\n"));
    std::istringstream lines(field);
    std::string line;
    int count = 0;
    while (std::getline(lines, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        EXPECT_LE(line.size(), kMaxSignatureLine) << line;
        if (count++ > 0) {
            EXPECT_TRUE(line.starts_with(" ")) << line;
        }
    }
    EXPECT_GE(count, 5);   // a 2048-bit signature alone is 344 base64 octets
    const auto parsed = parse_dkim_signature(field.substr(field.find(':') + 1));
    ASSERT_TRUE(parsed.ok()) << parsed.error;
    const auto& s = parsed.signature;
    EXPECT_EQ(s.timestamp, kNow);
    EXPECT_FALSE(s.expiration);
    EXPECT_FALSE(s.body_length);
    EXPECT_EQ(s.header_canon, DkimCanon::relaxed);
    EXPECT_EQ(s.body_canon, DkimCanon::relaxed);
    EXPECT_EQ(s.identity, "@example.com");   // no i=
    EXPECT_EQ(s.signature.size(), 256u);
    // From oversigned, each present field of the default list once per occurrence, Received and X-Mailer not.
    EXPECT_EQ(s.signed_headers, (std::vector<std::string>{"from", "from", "to", "subject", "date", "message-id"}));
    for (const char* absent : {"i=", "l=", "x=", "q="}) EXPECT_EQ(field.find(std::string(" ") + absent), std::string::npos);
    // Ed25519: 64-octet signatures.
    const std::string ed = sign(keys().ed, {DkimCanon::simple, DkimCanon::simple, {}}, kHeader, kBody);
    EXPECT_TRUE(ed.starts_with("DKIM-Signature: v=1; a=ed25519-sha256; c=simple/simple; d=example.com; s=ed;"));
    const auto ped = parse_dkim_signature(ed.substr(ed.find(':') + 1));
    ASSERT_TRUE(ped.ok());
    EXPECT_EQ(ped.signature.signature.size(), 64u);
}

TEST(DkimSign, SameSignatureWhateverTheBodyPieces) {
    // Both algorithms are deterministic (PKCS#1 v1.5, Ed25519), so the whole field must be identical.
    for (const DkimSigningKey* key : {&keys().rsa, &keys().ed}) {
        const std::string whole = sign(*key, {}, kHeader, kBody, kBody.size());
        for (std::size_t piece : {1u, 2u, 5u, 13u}) EXPECT_EQ(sign(*key, {}, kHeader, kBody, piece), whole);
    }
}

TEST(DkimSign, SignedHeaderSelection) {
    const std::string header = "From: a@example.com\r\nFrom: b@example.com\r\nTo: x\r\nCc: y\r\nTo: z\r\n"
                               "Return-Path: <a@example.com>\r\nDKIM-Signature: v=1\r\nList-Id: <l.example.com>\r\n";
    const auto fields = mime::header_fields(header);
    EXPECT_EQ(signed_header_names(fields, default_signed_headers()),
              (std::vector<std::string>{"from", "from", "from", "to", "to", "cc", "list-id"}));
    // A caller's list: duplicates count once, never-signed names dropped, From added when missing.
    EXPECT_EQ(signed_header_names(fields, {"Subject", "TO", "to", "Received", "Authentication-Results",
                                           "DKIM-Signature", "Return-Path", "X-Absent"}),
              (std::vector<std::string>{"from", "from", "from", "to", "to"}));
    // No From in the message: still signed once (hashed as null), so none can be added.
    EXPECT_EQ(signed_header_names(mime::header_fields("Subject: s\r\n"), default_signed_headers()),
              (std::vector<std::string>{"from", "subject"}));
    // The option reaches the field.
    const std::string field = sign(keys().ed, {DkimCanon::relaxed, DkimCanon::relaxed, {"subject", "x-mailer"}}, kHeader, kBody);
    const auto parsed = parse_dkim_signature(field.substr(field.find(':') + 1));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(parsed.signature.signed_headers, (std::vector<std::string>{"from", "from", "subject", "x-mailer"}));
    EXPECT_EQ(verify(field + kHeader, kBody)[0].result, DkimResult::pass);
}

TEST(DkimSign, EmptyBody) {
    for (const auto bc : {DkimCanon::simple, DkimCanon::relaxed}) {
        const std::string field = sign(keys().ed, {DkimCanon::relaxed, bc, {}}, kHeader, "");
        EXPECT_EQ(verify(field + kHeader, "")[0].result, DkimResult::pass);
        // An empty body and one of only empty lines canonicalize alike.
        EXPECT_EQ(verify(field + kHeader, "\r\n\r\n")[0].result, DkimResult::pass);
        EXPECT_EQ(verify(field + kHeader, "x\r\n")[0].reason, "body hash did not verify");
    }
}

TEST(DkimSign, MultipleSignaturesVerifiedIndependently) {
    const std::string rsa = sign(keys().rsa, {DkimCanon::relaxed, DkimCanon::relaxed, {}}, kHeader, kBody);
    const std::string ed = sign(keys().ed, {DkimCanon::simple, DkimCanon::simple, {}}, kHeader, kBody);
    const std::string ed2 = sign(keys().ed, {DkimCanon::relaxed, DkimCanon::relaxed, {}}, kHeader, kBody);
    auto out = verify(ed + rsa + ed2 + kHeader, kBody);
    ASSERT_EQ(out.size(), 3u);
    for (const auto& o : out) EXPECT_EQ(o.result, DkimResult::pass) << o.reason;
    // A body change that relaxed forgives and simple does not.
    std::string body = kBody;
    body.replace(body.find("lunch  at"), 9, "lunch \t at");
    out = verify(ed + rsa + ed2 + kHeader, body);
    EXPECT_EQ(out[0].reason, "body hash did not verify");
    EXPECT_EQ(out[1].result, DkimResult::pass);
    EXPECT_EQ(out[2].result, DkimResult::pass);
    // One broken signature (an unknown selector) leaves the others alone.
    std::string broken = rsa;
    broken.replace(broken.find("s=rsa;"), 6, "s=zzz;");
    out = verify(broken + ed + kHeader, kBody);
    EXPECT_EQ(out[0].result, DkimResult::permerror);
    EXPECT_EQ(out[0].reason, "no key for signature");
    EXPECT_EQ(out[1].result, DkimResult::pass);
}

TEST(DkimSign, BodyLengthTag) {
    const auto& key = keys().ed;
    const std::uint64_t len = canonicalize_body(DkimCanon::simple, kBody).size();
    const std::string field = hand_signed(key, tags_for(key, "c=simple/simple; l=" + std::to_string(len)),
                                          {"from", "subject"}, DkimCanon::simple, DkimCanon::simple, len, kHeader, kBody);
    EXPECT_EQ(verify(field + kHeader, kBody)[0].result, DkimResult::pass);
    // Content appended after l= octets is not hashed...
    EXPECT_EQ(verify(field + kHeader, kBody + "Buy now!\r\n")[0].result, DkimResult::pass);
    // ...a change inside them is...
    std::string body = kBody;
    body[0] = 'h';
    EXPECT_EQ(verify(field + kHeader, body)[0].reason, "body hash did not verify");
    // ...and a body shorter than l= fails.
    EXPECT_EQ(verify(field + kHeader, "Hi Bob,\r\n")[0].reason, "body shorter than l=");
    // l=0 with relaxed: nothing of the body is covered.
    const std::string zero = hand_signed(key, tags_for(key, "c=relaxed/relaxed; l=0"), {"from", "subject"},
                                         DkimCanon::relaxed, DkimCanon::relaxed, 0, kHeader, kBody);
    EXPECT_EQ(verify(zero + kHeader, "anything\r\n")[0].result, DkimResult::pass);
}

TEST(DkimSign, SignaturesDifferingOnlyInLengthShareAPassYetEachGetsItsOwnHash) {
    const auto& key = keys().ed;
    std::string fields;
    for (const std::uint64_t l : {std::uint64_t{0}, std::uint64_t{9}, std::uint64_t{20}})
        fields += hand_signed(key, tags_for(key, "c=relaxed/relaxed; l=" + std::to_string(l)), {"from", "subject"},
                              DkimCanon::relaxed, DkimCanon::relaxed, l, kHeader, kBody);
    fields += sign(key, {}, kHeader, kBody);   // relaxed too, no l=
    std::string changed = kBody;
    changed[12] = 'X';   // past 9 canonical octets, within 20
    const auto out = verify(fields + kHeader, changed);
    ASSERT_EQ(out.size(), 4u);
    EXPECT_EQ(out[0].result, DkimResult::pass);
    EXPECT_EQ(out[1].result, DkimResult::pass);
    EXPECT_EQ(out[2].reason, "body hash did not verify");
    EXPECT_EQ(out[3].reason, "body hash did not verify");
    for (const auto& o : verify(fields + kHeader, kBody)) EXPECT_EQ(o.result, DkimResult::pass) << o.reason;
}

TEST(DkimSign, CanonicalizationDefaults) {
    const auto& key = keys().rsa;
    // No c=: simple/simple.
    std::string f = hand_signed(key, tags_for(key, "t=1"), {"from", "subject"}, DkimCanon::simple, DkimCanon::simple,
                                std::nullopt, kHeader, kBody);
    EXPECT_EQ(verify(f + kHeader, kBody)[0].result, DkimResult::pass);
    // "c=relaxed" alone: relaxed header, simple body.
    f = hand_signed(key, tags_for(key, "c=relaxed"), {"from", "subject"}, DkimCanon::relaxed, DkimCanon::simple,
                    std::nullopt, kHeader, kBody);
    EXPECT_EQ(verify(f + kHeader, kBody)[0].result, DkimResult::pass);
    std::string body = kBody;
    body.replace(body.find("noon?  "), 7, "noon?");   // trailing WSP: only relaxed bodies forgive it
    EXPECT_EQ(verify(f + kHeader, body)[0].reason, "body hash did not verify");
    // "c=simple/relaxed".
    f = hand_signed(key, tags_for(key, "c=simple/relaxed"), {"from", "subject"}, DkimCanon::simple, DkimCanon::relaxed,
                    std::nullopt, kHeader, kBody);
    EXPECT_EQ(verify(f + kHeader, body)[0].result, DkimResult::pass);
    std::string header = kHeader;
    header.replace(header.find("Subject: "), 9, "Subject:  ");
    EXPECT_EQ(verify(f + header, kBody)[0].reason, "signature did not verify");
}

TEST(DkimSign, TimestampsAndExpiry) {
    const auto& key = keys().ed;
    auto with = [&](const std::string& more) {
        return hand_signed(key, tags_for(key, more), {"from", "subject"}, DkimCanon::simple, DkimCanon::simple,
                           std::nullopt, kHeader, kBody);
    };
    auto result = [&](const std::string& field) { return verify(field + kHeader, kBody)[0]; };
    const std::string now = std::to_string(kNow);
    EXPECT_EQ(result(with("t=" + now + "; x=" + std::to_string(kNow + 60))).result, DkimResult::pass);
    EXPECT_EQ(result(with("t=" + std::to_string(kNow - 120) + "; x=" + std::to_string(kNow - 1))).reason,
              "signature expired");
    EXPECT_EQ(result(with("x=" + std::to_string(kNow - 1))).result, DkimResult::fail);
    EXPECT_EQ(result(with("t=" + now + "; x=" + now)).reason, "x= is not after t=");
    EXPECT_EQ(result(with("t=" + now + "; x=" + std::to_string(kNow - 10))).result, DkimResult::permerror);
    // A t= a little ahead of our clock is accepted; far ahead is not.
    EXPECT_EQ(result(with("t=" + std::to_string(kNow + kMaxClockSkew))).result, DkimResult::pass);
    EXPECT_EQ(result(with("t=" + std::to_string(kNow + kMaxClockSkew + 1))).reason,
              "signature timestamp t= is in the future");
}

TEST(DkimSign, IdentityQueryAndUnknownTags) {
    const auto& key = keys().ed;
    auto with = [&](const std::string& more) {
        return verify(hand_signed(key, tags_for(key, more), {"from", "subject"}, DkimCanon::relaxed, DkimCanon::simple,
                                  std::nullopt, kHeader, kBody) +
                          kHeader,
                      kBody)[0];
    };
    auto o = with("c=relaxed; i=alice@mail.example.com; q=dns/txt; zz=future-tag; z=From:x");
    EXPECT_EQ(o.result, DkimResult::pass) << o.reason;
    EXPECT_EQ(o.identity, "alice@mail.example.com");
    EXPECT_EQ(with("c=relaxed; i=@EXAMPLE.COM").result, DkimResult::pass);
    EXPECT_EQ(with("c=relaxed; i=@notexample.com").reason, "i= domain is not d= or a subdomain of it");
    // t=s in the key record: the subdomain identity is refused, the exact one accepted.
    FakeDns dns;
    dns.txt("ed._domainkey.example.com", public_key_record(key.key.get()) + "; t=s");
    for (const auto& [i, expect] : std::vector<std::pair<std::string, DkimResult>>{
             {"i=@mail.example.com", DkimResult::permerror}, {"i=a@example.com", DkimResult::pass}}) {
        const std::string f = hand_signed(key, tags_for(key, i), {"from", "subject"}, DkimCanon::simple,
                                          DkimCanon::simple, std::nullopt, kHeader, kBody);
        DkimVerifier v(f + kHeader);
        v.feed_body(kBody);
        const auto out = run_sync(v.verify(dns, kNow));
        EXPECT_EQ(out[0].result, expect) << i << ": " << out[0].reason;
    }
}

TEST(DkimSign, SignatureNamingDkimSignatureInH) {
    // h= names DKIM-Signature: at signing there was none, so it was hashed as null; the verifier must not take
    // the signature being verified for it. A DKIM-Signature added later, above or below, breaks it, as h=
    // promised.
    const auto& key = keys().ed;
    const std::string f = hand_signed(
        key, "v=1; a=ed25519-sha256; c=relaxed/relaxed; d=example.com; s=ed; h=from:dkim-signature:subject",
        {"from", "dkim-signature", "subject"}, DkimCanon::relaxed, DkimCanon::relaxed, std::nullopt, kHeader, kBody);
    auto out = verify(f + kHeader, kBody);
    EXPECT_EQ(out[0].result, DkimResult::pass) << out[0].reason;
    const std::string other = sign(keys().rsa, {}, f + kHeader, kBody);
    out = verify(other + f + kHeader, kBody);
    EXPECT_EQ(out[0].result, DkimResult::pass) << out[0].reason;
    EXPECT_EQ(out[1].reason, "signature did not verify");
    out = verify(f + other + kHeader, kBody);
    EXPECT_EQ(out[0].reason, "signature did not verify");
}

TEST(DkimSign, SmallRsaKeysRefused) {
    EVP_PKEY* raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<std::size_t>(768));
    ASSERT_NE(raw, nullptr);
    DkimSigningKey small;
    small.domain = "example.com";
    small.selector = "small";
    small.algorithm = DkimAlgorithm::rsa_sha256;
    small.key = PkeyPtr(raw, EVP_PKEY_free);
    small.bits = 768;
    // The signer signs with what it is given (load_signing_key refuses such a key); the verifier refuses it.
    const std::string field = sign(small, {}, kHeader, kBody);
    ASSERT_FALSE(field.empty());
    FakeDns dns;
    dns.txt("small._domainkey.example.com", public_key_record(raw));
    DkimVerifier v(field + kHeader);
    v.feed_body(kBody);
    const auto out = run_sync(v.verify(dns, kNow));
    EXPECT_EQ(out[0].result, DkimResult::permerror);
    EXPECT_EQ(out[0].reason, "RSA key under 1024 bits, RFC 8301");
}

// RFC 8463 Appendix A: signing the example with the private keys of A.1 gives exactly the b= values of A.3
// (PKCS#1 v1.5 and Ed25519 are deterministic), which checks the signing input and both algorithms.
TEST(DkimSign, Rfc8463SignaturesReproduced) {
    const std::string header =
        "From: Joe SixPack <joe@football.example.com>\r\n"
        "To: Suzie Q <suzie@shopping.example.net>\r\n"
        "Subject: Is dinner ready?\r\n"
        "Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
        "Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n";
    const std::vector<std::string> names = {"from", "to", "subject", "date", "message-id", "from", "subject", "date"};
    const auto fields = mime::header_fields(header);
    const auto seed = base64_decode("nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=");
    ASSERT_TRUE(seed);
    const PkeyPtr ed(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr,
                                                  reinterpret_cast<const unsigned char*>(seed->data()), seed->size()),
                     EVP_PKEY_free);
    ASSERT_TRUE(ed);
    const std::string ed_field =
        "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n"
        " d=football.example.com; i=@football.example.com;\r\n"
        " q=dns/txt; s=brisbane; t=1528637909; h=from : to :\r\n"
        " subject : date : message-id : from : subject : date;\r\n"
        " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
        " b=";
    auto sig = sign_digest(ed.get(), DkimAlgorithm::ed25519_sha256,
                           sha256(signed_header_data(DkimCanon::relaxed, fields, names, ed_field)));
    ASSERT_TRUE(sig);
    EXPECT_EQ(base64_encode(*sig), "/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11BusFa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==");

    std::string error;
    const auto rsa = signing_key_from_pem(ferry::testing::kRfc8463RsaPem, "football.example.com", "test", error);
    ASSERT_TRUE(rsa) << error;
    const std::string rsa_field =
        "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n"
        " d=football.example.com; i=@football.example.com;\r\n"
        " q=dns/txt; s=test; t=1528637909; h=from : to : subject :\r\n"
        " date : message-id : from : subject : date;\r\n"
        " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
        " b=";
    sig = sign_digest(rsa->key.get(), DkimAlgorithm::rsa_sha256,
                      sha256(signed_header_data(DkimCanon::relaxed, fields, names, rsa_field)));
    ASSERT_TRUE(sig);
    EXPECT_EQ(base64_encode(*sig),
              "F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeef"
              "Osk2JzdA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=");
}
