// InboundCheck over FakeDns: what mx adds to a message and decides about it, from the parts' results; and the
// removal of Authentication-Results fields that claim our name.
#include "mailauth/inbound_check.hpp"

#include <gtest/gtest.h>

#include "fake_dns.hpp"
#include "mailauth/dkim_key.hpp"
#include "mailauth/dkim_sign.hpp"

using namespace ferry::mailauth;
using ferry::testing::FakeDns;
using ferry::testing::run_sync;

namespace {

const std::string kHeader = "From: Alice <alice@example.org>\r\nTo: bob@example.test\r\nSubject: hi\r\n";
const std::string kBody = "Hello.\r\n";

InboundVerdict check(FakeDns& dns, const std::string& header, const std::string& body, const std::string& ip,
                     const std::string& sender, double sample = 0.5, bool enforce = true) {
    const PublicSuffixList psl = PublicSuffixList::parse("org\nco.uk\n");
    InboundCheck c(InboundFacts{ip, "mail.example.org", sender}, header);
    c.feed_body(body);
    return run_sync(c.finish(dns, InboundSettings{"mx.example.test", &psl, enforce}, sample, 1800000000));
}

// A DKIM-Signature by our own signer for example.org, its key published in `dns`.
std::string signed_header(FakeDns& dns, const std::string& header, const std::string& body) {
    const GeneratedKey generated = generate_signing_key(DkimAlgorithm::ed25519_sha256);
    std::string error;
    const auto key = signing_key_from_pem(generated.private_key_pem, "example.org", "s1", error);
    EXPECT_TRUE(key) << error;
    dns.txt("s1._domainkey.example.org", generated.txt_record);
    DkimSigner signer(*key, DkimSignOptions{}, header);
    signer.feed_body(body);
    return signer.finish(1800000000) + header;
}

}  // namespace

TEST(InboundCheck, AllPassAndTheFieldSaysSo) {
    FakeDns dns;
    dns.txt("example.org", "v=spf1 ip4:192.0.2.0/24 -all").txt("_dmarc.example.org", "v=DMARC1; p=reject");
    dns.exists("mail.example.org");
    const std::string header = signed_header(dns, kHeader, kBody);
    const InboundVerdict v = check(dns, header, kBody, "192.0.2.7", "alice@example.org");
    EXPECT_EQ(v.spf_mail_from.result, SpfResult::pass);
    EXPECT_EQ(v.spf_helo.result, SpfResult::none);
    ASSERT_EQ(v.dkim.size(), 1u);
    EXPECT_EQ(v.dkim[0].result, DkimResult::pass);
    EXPECT_EQ(v.dmarc.result, DmarcResult::pass);
    EXPECT_EQ(v.dmarc.disposition, Disposition::none);
    EXPECT_TRUE(v.field.starts_with("Authentication-Results: mx.example.test;")) << v.field;
    EXPECT_NE(v.field.find("spf=pass"), std::string::npos) << v.field;
    EXPECT_NE(v.field.find("dkim=pass"), std::string::npos) << v.field;
    EXPECT_NE(v.field.find("dmarc=pass"), std::string::npos) << v.field;
    EXPECT_TRUE(v.field.ends_with("\r\n"));
    EXPECT_EQ(v.summary, "spf=pass spf_helo=none dkim=pass dmarc=pass dis=none");
}

TEST(InboundCheck, DmarcRejectWhenNothingAligns) {
    FakeDns dns;
    dns.txt("example.org", "v=spf1 ip4:192.0.2.0/24 -all").txt("_dmarc.example.org", "v=DMARC1; p=reject");
    const InboundVerdict v = check(dns, kHeader, kBody, "198.51.100.1", "alice@example.org");
    EXPECT_EQ(v.spf_mail_from.result, SpfResult::fail);
    EXPECT_TRUE(v.dkim.empty());
    EXPECT_EQ(v.dmarc.result, DmarcResult::fail);
    EXPECT_EQ(v.dmarc.disposition, Disposition::reject);
    EXPECT_EQ(v.dmarc.policy_domain, "example.org");
}

TEST(InboundCheck, WithoutEnforcementTheDispositionIsNone) {
    FakeDns dns;
    dns.txt("example.org", "v=spf1 -all").txt("_dmarc.example.org", "v=DMARC1; p=reject");
    const InboundVerdict v = check(dns, kHeader, kBody, "198.51.100.1", "alice@example.org", 0.5, false);
    EXPECT_EQ(v.dmarc.result, DmarcResult::fail);
    EXPECT_EQ(v.dmarc.policy, Disposition::reject);
    EXPECT_EQ(v.dmarc.disposition, Disposition::none);
    EXPECT_NE(v.field.find("(p=reject dis=none)"), std::string::npos) << v.field;
}

TEST(InboundCheck, SeveralFromDomainsGetTheStrictestOutcome) {
    FakeDns dns;
    dns.txt("example.org", "v=spf1 -all").txt("_dmarc.example.org", "v=DMARC1; p=reject");
    dns.txt("example.net", "v=spf1 ip4:198.51.100.1 -all").txt("_dmarc.example.net", "v=DMARC1; p=none");
    // The envelope aligns with example.net, which passes; example.org in the same From: still rejects.
    for (const std::string from : {"From: a@example.net, b@example.org\r\n", "From: b@example.org, a@example.net\r\n",
                                   "From: a@example.net\r\nFrom: b@example.org\r\n"}) {
        const InboundVerdict v = check(dns, from + "Subject: x\r\n", kBody, "198.51.100.1", "a@example.net");
        EXPECT_EQ(v.dmarc.result, DmarcResult::fail) << from;
        EXPECT_EQ(v.dmarc.disposition, Disposition::reject) << from;
        EXPECT_EQ(v.dmarc.from_domain, "example.org") << from;
        EXPECT_EQ(v.dmarc.reason.rfind("2 From domains, the strictest: ", 0), 0u) << v.dmarc.reason;
    }
    std::string many = "From: ";
    for (int i = 0; i <= static_cast<int>(kMaxFromDomains); ++i) many += (i ? ", a@d" : "a@d") + std::to_string(i) + ".example";
    const InboundVerdict v = check(dns, many + "\r\n", kBody, "198.51.100.1", "a@example.net");
    EXPECT_EQ(v.dmarc.result, DmarcResult::permerror);
    EXPECT_EQ(v.dmarc.disposition, Disposition::quarantine);
    for (const auto& [name, type] : dns.asked) EXPECT_EQ(name.find("_dmarc.d"), std::string::npos) << name;
}

TEST(InboundCheck, NoFromFieldIsADmarcPermerror) {
    FakeDns dns;
    const InboundVerdict v = check(dns, "Subject: no author\r\n", kBody, "192.0.2.7", "");
    EXPECT_EQ(v.dmarc.result, DmarcResult::permerror);
    EXPECT_EQ(v.dmarc.disposition, Disposition::none);
    EXPECT_EQ(v.spf_mail_from.sender, "postmaster@mail.example.org");   // the null sender: RFC 7208 2.4
}

TEST(InboundCheck, TemporaryDnsFailuresRefuseNothing) {
    FakeDns dns;
    dns.temporary("example.org").temporary("_dmarc.example.org");
    const InboundVerdict v = check(dns, kHeader, kBody, "192.0.2.7", "alice@example.org");
    EXPECT_EQ(v.spf_mail_from.result, SpfResult::temperror);
    EXPECT_EQ(v.dmarc.result, DmarcResult::temperror);
    EXPECT_EQ(v.dmarc.disposition, Disposition::none);
}

TEST(RemoveClaimedResults, OnlyOursGoAndEverythingElseIsByteExact) {
    const std::string header =
        "Received: from x\r\n"
        "Authentication-Results: MX.Example.Test; dkim=pass\r\n"
        "Authentication-Results: (forged) mx.example.test 1;\r\n\tspf=pass\r\n"
        "Authentication-Results: mx.example.test junk; dmarc=pass\r\n"
        "Authentication-Results: other.example; dkim=fail\r\n"
        "authentication-results:mx.example.test;none\r\n"
        "X-Note: Authentication-Results: mx.example.test; dkim=pass\r\n"
        "Authentication-Results: mx.example.test.evil; dkim=pass\r\n";
    std::size_t removed = 0;
    const std::string kept = remove_claimed_results(header, "mx.example.test", removed);
    EXPECT_EQ(removed, 4u);
    EXPECT_EQ(kept,
              "Received: from x\r\n"
              "Authentication-Results: other.example; dkim=fail\r\n"
              "X-Note: Authentication-Results: mx.example.test; dkim=pass\r\n"
              "Authentication-Results: mx.example.test.evil; dkim=pass\r\n");
    EXPECT_EQ(remove_claimed_results("", "mx.example.test", removed), "");
    EXPECT_EQ(removed, 0u);
}
