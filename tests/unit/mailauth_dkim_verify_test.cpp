#include "mailauth/dkim_verify.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "fake_dns.hpp"
#include "mailauth/dkim_key.hpp"
#include "mailauth/dkim_sign.hpp"
#include "mime/header.hpp"

using namespace ferry;
using namespace ferry::mailauth;
using ferry::testing::FakeDns;
using ferry::testing::run_sync;

namespace {

std::string crlf(std::vector<std::string> lines) {
    std::string out;
    for (const auto& l : lines) out += l + "\r\n";
    return out;
}

// Verifies a whole message (header, empty line, body), feeding the body in pieces of `piece` octets.
std::vector<DkimOutcome> verify_message(const std::string& message, dns::Lookup& dns, std::time_t now,
                                        std::size_t piece = 4096) {
    const std::string_view header = mime::header_section(message);
    std::string_view body = std::string_view(message).substr(header.size());
    if (body.starts_with("\r\n")) body.remove_prefix(2);
    DkimVerifier v(header);
    for (std::size_t at = 0; at < body.size(); at += piece) v.feed_body(body.substr(at, piece));
    return run_sync(v.verify(dns, now));
}

// RFC 8463 Appendix A: the message of RFC 6376 Appendix A.1 signed with both algorithms (A.3), the keys of A.2.
const std::string kRfc8463Message = crlf({
    "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;",
    " d=football.example.com; i=@football.example.com;",
    " q=dns/txt; s=brisbane; t=1528637909; h=from : to :",
    " subject : date : message-id : from : subject : date;",
    " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;",
    " b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus",
    " Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==",
    "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;",
    " d=football.example.com; i=@football.example.com;",
    " q=dns/txt; s=test; t=1528637909; h=from : to : subject :",
    " date : message-id : from : subject : date;",
    " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;",
    " b=F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3",
    " DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz",
    " dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=",
    "From: Joe SixPack <joe@football.example.com>",
    "To: Suzie Q <suzie@shopping.example.net>",
    "Subject: Is dinner ready?",
    "Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)",
    "Message-ID: <20030712040037.46341.5F8J@football.example.com>",
    "",
    "Hi.",
    "",
    "We lost the game.  Are you hungry yet?",
    "",
    "Joe.",
});
// The TXT records of RFC 8463 A.2, their strings joined (3.6.2.2).
const std::string kRfc8463Ed25519Record = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
const std::string kRfc8463RsaRecord =
    "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWR"
    "iGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutAC"
    "DfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3"
    "Ip3G+2kryOTIKT+l/K4w3QIDAQAB";
constexpr std::time_t kRfc8463Now = 1528637909 + 60;

FakeDns rfc8463_dns() {
    FakeDns dns;
    dns.txt("brisbane._domainkey.football.example.com", kRfc8463Ed25519Record);
    dns.txt("test._domainkey.football.example.com", kRfc8463RsaRecord);
    return dns;
}

// RFC 6376 Appendix A.2: the signed message as printed.
const std::string kRfc6376Message = crlf({
    "DKIM-Signature: v=1; a=rsa-sha256; s=brisbane; d=example.com;",
    "      c=simple/simple; q=dns/txt; i=joe@football.example.com;",
    "      h=Received : From : To : Subject : Date : Message-ID;",
    "      bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;",
    "      b=AuUoFEfDxTDkHlLXSZEpZj79LICEps6eda7W3deTVFOk4yAUoqOB",
    "        4nujc7YopdG5dWLSdNg6xNAZpOPr+kHxt1IrE+NahM6L/LbvaHut",
    "        KVdkLLkpVaVVQPzeRDI009SO2Il5Lu7rDNH6mZckBdrIx0orEtZV",
    "        4bmp/YzhwvcubU4=;",
    "Received: from client1.football.example.com  [192.0.2.1]",
    "      by submitserver.example.com with SUBMISSION;",
    "      Fri, 11 Jul 2003 21:01:54 -0700 (PDT)",
    "From: Joe SixPack <joe@football.example.com>",
    "To: Suzie Q <suzie@shopping.example.net>",
    "Subject: Is dinner ready?",
    "Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)",
    "Message-ID: <20030712040037.46341.5F8J@football.example.com>",
    "",
    "Hi.",
    "",
    "We lost the game. Are you hungry yet?",
    "",
    "Joe.",
});
// The key record as RFC 6376 A.3 prints it: an RSAPublicKey that does not belong to the private key of
// Appendix C, which made the signature (errata)...
const std::string kRfc6376RecordA3 =
    "v=DKIM1; p=MIGJAoGBALVI635dLK4cJJAH3Lx6upo3X/Lm1tQz3mezcWTA3BUBnyIsdnRf57aD5BtNmhPrYYDlWlzw3UgnKisIxktkk5+iMQMlFt"
    "AS10JB8L3YadXNJY+JBcbeSi5TgJe4WFzNgW95FWDAuSTRXSWZfA/8xjflbTLDx0euFZOM7C4T0GwLAgMBAAE=";
// ...and the public key of Appendix C, which the A.2 signature was made with.
const std::string kRfc6376RecordC =
    "v=DKIM1; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDwIRP/UC3SBsEmGqZ9ZJW3/DkMoGeLnQg1fWn7/zYtIxN2SnFCjxOCKG9v3b4jYfc"
    "TNh5ijSsq631uBItLa7od+v/RtdC2UzJ1lWT947qR+Rcac2gbto/NMqJ0fzfVjH4OuKhitdY9tf6mcwGjaNBcWToIMmPSPDdQPNUYckcQ2QIDAQAB";

}  // namespace

TEST(DkimVerify, Rfc8463AppendixABothSignaturesPass) {
    FakeDns dns = rfc8463_dns();
    const auto out = verify_message(kRfc8463Message, dns, kRfc8463Now);
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(out[0].result, DkimResult::pass) << out[0].reason;
    EXPECT_EQ(out[0].algorithm, "ed25519-sha256");
    EXPECT_EQ(out[0].domain, "football.example.com");
    EXPECT_EQ(out[0].selector, "brisbane");
    EXPECT_EQ(out[0].identity, "@football.example.com");
    EXPECT_EQ(out[0].signature_b, "/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11BusFa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==");
    EXPECT_FALSE(out[0].testing);
    EXPECT_EQ(out[0].reason, "");
    EXPECT_EQ(out[1].result, DkimResult::pass) << out[1].reason;
    EXPECT_EQ(out[1].algorithm, "rsa-sha256");
    EXPECT_EQ(out[1].selector, "test");
    // Both keys were asked for, once each, as TXT.
    ASSERT_EQ(dns.asked.size(), 2u);
    EXPECT_EQ(dns.asked[0], std::make_pair(std::string("brisbane._domainkey.football.example.com"), dns::kTypeTxt));
    EXPECT_EQ(dns.asked[1], std::make_pair(std::string("test._domainkey.football.example.com"), dns::kTypeTxt));
}

TEST(DkimVerify, Rfc8463ResultDoesNotDependOnBodyPieces) {
    for (std::size_t piece : {1u, 2u, 3u, 7u, 64u}) {
        FakeDns dns = rfc8463_dns();
        const auto out = verify_message(kRfc8463Message, dns, kRfc8463Now, piece);
        ASSERT_EQ(out.size(), 2u);
        EXPECT_EQ(out[0].result, DkimResult::pass) << piece;
        EXPECT_EQ(out[1].result, DkimResult::pass) << piece;
    }
}

TEST(DkimVerify, Rfc8463TamperedHeaderAndBodyFail) {
    {
        std::string m = kRfc8463Message;
        m.replace(m.find("Is dinner ready?"), 16, "Is dinner ready!");
        FakeDns dns = rfc8463_dns();
        const auto out = verify_message(m, dns, kRfc8463Now);
        ASSERT_EQ(out.size(), 2u);
        EXPECT_EQ(out[0].result, DkimResult::fail);
        EXPECT_EQ(out[0].reason, "signature did not verify");
        EXPECT_EQ(out[1].result, DkimResult::fail);
        EXPECT_EQ(out[1].reason, "signature did not verify");
    }
    {
        std::string m = kRfc8463Message;
        m.replace(m.find("We lost"), 7, "We won!");
        FakeDns dns = rfc8463_dns();
        const auto out = verify_message(m, dns, kRfc8463Now);
        ASSERT_EQ(out.size(), 2u);
        EXPECT_EQ(out[0].result, DkimResult::fail);
        EXPECT_EQ(out[0].reason, "body hash did not verify");
        EXPECT_EQ(out[1].reason, "body hash did not verify");
    }
    {
        // Relaxed canonicalization: whitespace changes inside lines and trailing empty lines do not matter.
        std::string m = kRfc8463Message;
        m.replace(m.find("game.  Are"), 10, "game.\t Are");
        m.replace(m.find("Subject: Is"), 11, "subject:   Is");
        m += "\r\n\r\n";
        FakeDns dns = rfc8463_dns();
        const auto out = verify_message(m, dns, kRfc8463Now);
        ASSERT_EQ(out.size(), 2u);
        EXPECT_EQ(out[0].result, DkimResult::pass) << out[0].reason;
        EXPECT_EQ(out[1].result, DkimResult::pass) << out[1].reason;
    }
}

TEST(DkimVerify, Rfc8463OversignedFromAndAddedField) {
    // h= names From twice: a second From added above the first breaks the signature...
    FakeDns dns = rfc8463_dns();
    std::string m = kRfc8463Message;
    m.insert(m.find("From: Joe"), "From: Mallory <m@evil.example>\r\n");
    auto out = verify_message(m, dns, kRfc8463Now);
    EXPECT_EQ(out[0].result, DkimResult::fail);
    EXPECT_EQ(out[1].result, DkimResult::fail);
    // ...while a field not named in h= does not.
    m = kRfc8463Message;
    m.insert(m.find("From: Joe"), "X-Mailer: something\r\nReceived: by relay.example\r\n");
    out = verify_message(m, dns, kRfc8463Now);
    EXPECT_EQ(out[0].result, DkimResult::pass);
    EXPECT_EQ(out[1].result, DkimResult::pass);
}

TEST(DkimVerify, Rfc6376AppendixA) {
    // The A.2 signature does not verify with the key record printed in A.3 (it is another key; see the RFC's
    // errata)...
    FakeDns printed;
    printed.txt("brisbane._domainkey.example.com", kRfc6376RecordA3);
    auto out = verify_message(kRfc6376Message, printed, 1700000000);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].result, DkimResult::fail);
    EXPECT_EQ(out[0].reason, "signature did not verify");
    EXPECT_EQ(out[0].identity, "joe@football.example.com");   // i= a subdomain of d=
    // ...but does with the public key of Appendix C. The body hash (simple) matches the printed body either way.
    FakeDns c;
    c.txt("brisbane._domainkey.example.com", kRfc6376RecordC);
    out = verify_message(kRfc6376Message, c, 1700000000);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].result, DkimResult::pass) << out[0].reason;
    EXPECT_EQ(out[0].domain, "example.com");
    // Received is signed: changing it breaks the signature.
    std::string m = kRfc6376Message;
    m.replace(m.find("[192.0.2.1]"), 11, "[192.0.2.9]");
    out = verify_message(m, c, 1700000000);
    EXPECT_EQ(out[0].result, DkimResult::fail);
}

TEST(DkimVerify, UnsignedMessage) {
    FakeDns dns;
    DkimVerifier v(crlf({"From: a@example.com", "Subject: hi"}));
    v.feed_body("hello\r\n");
    EXPECT_FALSE(v.signed_message());
    EXPECT_TRUE(run_sync(v.verify(dns, 1700000000)).empty());
    EXPECT_TRUE(dns.asked.empty());
}

TEST(DkimVerify, KeyLookupFailures) {
    auto verify_with = [](FakeDns& dns) {
        const auto out = verify_message(kRfc8463Message, dns, kRfc8463Now);
        EXPECT_EQ(out.size(), 2u);
        return out;
    };
    {
        FakeDns dns;   // nothing: NXDOMAIN
        const auto out = verify_with(dns);
        EXPECT_EQ(out[0].result, DkimResult::permerror);
        EXPECT_EQ(out[0].reason, "no key for signature");
        EXPECT_EQ(out[0].domain, "football.example.com");
    }
    {
        FakeDns dns;
        dns.exists("brisbane._domainkey.football.example.com");   // NODATA
        dns.temporary("test._domainkey.football.example.com");
        const auto out = verify_with(dns);
        EXPECT_EQ(out[0].result, DkimResult::permerror);
        EXPECT_EQ(out[0].reason, "no key for signature");
        EXPECT_EQ(out[1].result, DkimResult::temperror);
        EXPECT_NE(out[1].reason.find("SERVFAIL"), std::string::npos) << out[1].reason;
    }
    {
        FakeDns dns;
        dns.txt("brisbane._domainkey.football.example.com", "v=DKIM1; k=ed25519; p=");   // revoked
        dns.txt("test._domainkey.football.example.com", "v=DKIM1; k=rsa; p=not*base64");
        const auto out = verify_with(dns);
        EXPECT_EQ(out[0].result, DkimResult::permerror);
        EXPECT_EQ(out[0].reason, "key revoked");
        EXPECT_EQ(out[1].result, DkimResult::permerror);
        EXPECT_EQ(out[1].reason, "key record syntax: p= is not valid base64");
    }
    {
        // Key types crossed over: each a= meets the other k=.
        FakeDns dns;
        dns.txt("brisbane._domainkey.football.example.com", kRfc8463RsaRecord);
        dns.txt("test._domainkey.football.example.com", kRfc8463Ed25519Record);
        const auto out = verify_with(dns);
        EXPECT_EQ(out[0].result, DkimResult::permerror);
        EXPECT_EQ(out[0].reason, "key type k=rsa does not match a=ed25519-sha256");
        EXPECT_EQ(out[1].result, DkimResult::permerror);
        EXPECT_EQ(out[1].reason, "key type k=ed25519 does not match a=rsa-sha256");
    }
    {
        // k=rsa is the default; h= and s= must allow sha256 and email; a wrong-length Ed25519 key is a syntax error.
        FakeDns dns;
        dns.txt("brisbane._domainkey.football.example.com", "v=DKIM1; k=ed25519; p=AAAA");
        dns.txt("test._domainkey.football.example.com",
                "v=DKIM1; h=sha1; p=" + kRfc8463RsaRecord.substr(kRfc8463RsaRecord.find("p=") + 2));
        const auto out = verify_with(dns);
        EXPECT_EQ(out[0].result, DkimResult::permerror);
        EXPECT_EQ(out[0].reason, "key record syntax: p= is not an Ed25519 key");
        EXPECT_EQ(out[1].result, DkimResult::permerror);
        EXPECT_EQ(out[1].reason, "key record h= does not allow sha256");
    }
    {
        FakeDns dns;
        dns.txt("brisbane._domainkey.football.example.com", kRfc8463Ed25519Record + "; s=other");
        dns.txt("test._domainkey.football.example.com", "k=rsa; v=DKIM1; p=AAAA");
        const auto out = verify_with(dns);
        EXPECT_EQ(out[0].reason, "key record is not for email (s=)");
        EXPECT_EQ(out[1].result, DkimResult::permerror);
        EXPECT_EQ(out[1].reason, "key record syntax: v= is not the first tag");
    }
    {
        // Testing flag recorded; s=email and h=sha256 accepted; unknown tags and flags ignored.
        FakeDns dns;
        dns.txt("brisbane._domainkey.football.example.com", kRfc8463Ed25519Record + "; t=y:z; s=email; h=sha256:sha1; n=x; zz=1");
        dns.txt("test._domainkey.football.example.com", kRfc8463RsaRecord + "; t=s");
        const auto out = verify_with(dns);
        EXPECT_EQ(out[0].result, DkimResult::pass) << out[0].reason;
        EXPECT_TRUE(out[0].testing);
        // t=s: i=@football.example.com has exactly d=, so it passes.
        EXPECT_EQ(out[1].result, DkimResult::pass) << out[1].reason;
        EXPECT_FALSE(out[1].testing);
    }
    {
        // Several TXT records at the name: the one that reads as a key record is used.
        FakeDns dns;
        dns.txt("brisbane._domainkey.football.example.com", "some unrelated text");
        dns.txt("brisbane._domainkey.football.example.com", kRfc8463Ed25519Record);
        dns.txt("test._domainkey.football.example.com", kRfc8463RsaRecord);
        const auto out = verify_with(dns);
        EXPECT_EQ(out[0].result, DkimResult::pass) << out[0].reason;
    }
}

// RFC 6376 3.6.2.2 leaves several records at one selector undefined; a domain rotating keys or adding Ed25519
// (RFC 8463) publishes an RSA and an Ed25519 record side by side. Each signature takes the one whose k= fits its a=.
TEST(DkimVerify, KeyRecordOfTheSignaturesAlgorithmIsChosenAmongSeveral) {
    auto verify_with = [](FakeDns& dns) {
        const auto out = verify_message(kRfc8463Message, dns, kRfc8463Now);
        EXPECT_EQ(out.size(), 2u);
        return out;
    };
    {
        // Both records at both selectors, the one that does not fit first each time.
        FakeDns dns;
        dns.txt("brisbane._domainkey.football.example.com", kRfc8463RsaRecord);
        dns.txt("brisbane._domainkey.football.example.com", kRfc8463Ed25519Record);
        dns.txt("test._domainkey.football.example.com", kRfc8463Ed25519Record);
        dns.txt("test._domainkey.football.example.com", kRfc8463RsaRecord);
        const auto out = verify_with(dns);
        EXPECT_EQ(out[0].algorithm, "ed25519-sha256");
        EXPECT_EQ(out[0].result, DkimResult::pass) << out[0].reason;
        EXPECT_EQ(out[1].algorithm, "rsa-sha256");
        EXPECT_EQ(out[1].result, DkimResult::pass) << out[1].reason;
    }
    {
        // Records that are no key record are skipped, before and after the one that fits.
        FakeDns dns;
        dns.txt("brisbane._domainkey.football.example.com", "v=DKIM1; k=ed25519; p=not*base64");
        dns.txt("brisbane._domainkey.football.example.com", kRfc8463RsaRecord);
        dns.txt("brisbane._domainkey.football.example.com", kRfc8463Ed25519Record);
        dns.txt("brisbane._domainkey.football.example.com", "google-site-verification=abc");
        dns.txt("test._domainkey.football.example.com", "v=DKIM1; k=dsa; p=AAAA");
        dns.txt("test._domainkey.football.example.com", kRfc8463RsaRecord);
        const auto out = verify_with(dns);
        EXPECT_EQ(out[0].result, DkimResult::pass) << out[0].reason;
        EXPECT_EQ(out[1].result, DkimResult::pass) << out[1].reason;
    }
    {
        // None fits: the mismatch of the first key record, as with one record; unparsable ones do not hide it.
        FakeDns dns;
        dns.txt("brisbane._domainkey.football.example.com", "v=DKIM1; k=ed25519; p=not*base64");
        dns.txt("brisbane._domainkey.football.example.com", kRfc8463RsaRecord);
        dns.txt("brisbane._domainkey.football.example.com", kRfc8463RsaRecord);
        dns.txt("test._domainkey.football.example.com", "v=DKIM1; k=rsa; p=not*base64");
        const auto out = verify_with(dns);
        EXPECT_EQ(out[0].result, DkimResult::permerror);
        EXPECT_EQ(out[0].reason, "key type k=rsa does not match a=ed25519-sha256");
        EXPECT_EQ(out[1].result, DkimResult::permerror);
        EXPECT_EQ(out[1].reason, "key record syntax: p= is not valid base64");
    }
}

TEST(DkimVerify, MalformedSignaturesArePermerrorWithoutDns) {
    FakeDns dns = rfc8463_dns();
    const std::string body = "Hi.\r\n";
    auto one = [&](const std::string& sig_value) {
        DkimVerifier v("DKIM-Signature: " + sig_value + "\r\nFrom: a@football.example.com\r\n");
        v.feed_body(body);
        EXPECT_TRUE(v.signed_message());
        auto out = run_sync(v.verify(dns, kRfc8463Now));
        EXPECT_EQ(out.size(), 1u);
        return out.empty() ? DkimOutcome{} : out[0];
    };
    const std::string ok_tags = "v=1; d=football.example.com; s=brisbane; h=from; bh=AAAA; b=AAAA";
    auto o = one("v=1; a=rsa-sha1; d=football.example.com; s=test; h=from; bh=AAAA; b=AAAA");
    EXPECT_EQ(o.result, DkimResult::permerror);
    EXPECT_EQ(o.reason, "rsa-sha1 is no longer accepted (RFC 8301)");
    EXPECT_EQ(o.domain, "football.example.com");
    EXPECT_EQ(o.selector, "test");
    EXPECT_EQ(o.algorithm, "rsa-sha1");
    o = one("a=ed25519-sha256; b=A A\r\n AA; d=football.example.com; s=brisbane; h=from; bh=AAAA");
    EXPECT_EQ(o.reason, "v= is missing");
    EXPECT_EQ(o.signature_b, "AAAA");
    EXPECT_EQ(one("v=2; a=ed25519-sha256; d=football.example.com; s=brisbane; h=from; bh=AAAA; b=AAAA").reason,
              "unsupported version v=2");
    EXPECT_EQ(one("v=1; a=ed25519-sha256; d=football.example.com; s=brisbane; h=to; bh=AAAA; b=AAAA").reason,
              "h= does not include From");
    EXPECT_EQ(one("v=1; a=ed25519-sha256; d=football.example.com; s=brisbane; h=from; bh=AAAA; b=AA*A").reason,
              "b= is not valid base64");
    EXPECT_EQ(one("v=1; a=ed25519-sha256; d=football.example.com; h=from; bh=AAAA; b=AAAA").reason, "s= is missing");
    EXPECT_EQ(one("v=1; a=ed25519-sha256; i=@example.net; " + ok_tags.substr(5)).reason,
              "i= domain is not d= or a subdomain of it");
    EXPECT_EQ(one("v=1; a=ed25519-sha256; q=http/well-known; " + ok_tags.substr(5)).reason,
              "q= offers no supported query method (only dns/txt)");
    EXPECT_EQ(one("v=1; a=ed25519-sha256; t=200; x=100; " + ok_tags.substr(5)).reason, "x= is not after t=");
    EXPECT_EQ(one("v=1; a=ed25519-sha256; a=rsa-sha256; " + ok_tags.substr(5)).reason,
              "malformed tag list: tag given twice");
    EXPECT_TRUE(dns.asked.empty());
}

TEST(DkimVerify, TooManySignatures) {
    // Twelve copies of a valid signature: the first ten are verified, the rest are not (and ask no DNS).
    const std::string header = mime::header_section(kRfc8463Message).data();
    const auto fields = mime::header_fields(mime::header_section(kRfc8463Message));
    std::string rsa_sig(fields[1].raw);
    std::string rest;
    for (std::size_t i = 2; i < fields.size(); ++i) rest += fields[i].raw;
    std::string junk = "DKIM-Signature: v=1; a=rsa-sha1\r\n";   // invalid: does not count toward the limit
    std::string h = junk;
    for (int i = 0; i < 12; ++i) h += rsa_sig;
    FakeDns dns = rfc8463_dns();
    DkimVerifier v(h + rest);
    v.feed_body("Hi.\r\n\r\nWe lost the game.  Are you hungry yet?\r\n\r\nJoe.\r\n");
    const auto out = run_sync(v.verify(dns, kRfc8463Now));
    ASSERT_EQ(out.size(), 13u);
    EXPECT_EQ(out[0].result, DkimResult::permerror);
    for (std::size_t i = 1; i <= 10; ++i) EXPECT_EQ(out[i].result, DkimResult::pass) << i;
    for (std::size_t i = 11; i <= 12; ++i) {
        EXPECT_EQ(out[i].result, DkimResult::permerror);
        EXPECT_EQ(out[i].reason, "not verified: more than 10 signatures");
        EXPECT_EQ(out[i].selector, "test");
    }
    EXPECT_EQ(dns.asked.size(), 1u);   // one name, asked once
}
