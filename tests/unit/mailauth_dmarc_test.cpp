#include "mailauth/dmarc.hpp"

#include <gtest/gtest.h>

#include "fake_dns.hpp"

using namespace ferry;
using namespace ferry::mailauth;
using ferry::testing::FakeDns;
using ferry::testing::run_sync;

namespace {

const PublicSuffixList& psl() {
    static const PublicSuffixList list = PublicSuffixList::parse("com\nnet\nuk\nco.uk\n");
    return list;
}

DkimOutcome dkim(DkimResult result, const std::string& d) {
    DkimOutcome o;
    o.result = result;
    o.domain = d;
    o.selector = "s1";
    o.identity = "@" + d;
    return o;
}

SpfOutcome spf(SpfResult result, const std::string& sender) {
    SpfOutcome o;
    o.result = result;
    o.identity = "mailfrom";
    o.sender = sender;
    o.domain = sender.substr(sender.find('@') + 1);
    return o;
}

DmarcInput input(const std::string& from, SpfOutcome s, std::vector<DkimOutcome> d = {}) {
    return DmarcInput{from, std::move(s), std::move(d)};
}

DmarcOutcome check(FakeDns& dns, DmarcInput in, double sample = 0.0) {
    return run_sync(check_dmarc(dns, psl(), std::move(in), sample));
}

const SpfOutcome kSpfFail = spf(SpfResult::fail, "bounce@other.net");

}  // namespace

TEST(Dmarc, PassByDkimRelaxedAlignment) {
    FakeDns dns;
    dns.txt("_dmarc.example.com", "v=DMARC1; p=reject");
    const auto o = check(dns, input("news.example.com", kSpfFail, {dkim(DkimResult::pass, "mail.example.com")}));
    EXPECT_EQ(o.result, DmarcResult::pass);
    EXPECT_EQ(o.from_domain, "news.example.com");
    EXPECT_EQ(o.policy_domain, "example.com");
    EXPECT_EQ(o.policy, Disposition::reject);
    EXPECT_EQ(o.disposition, Disposition::none);
    EXPECT_TRUE(o.dkim_aligned);
    EXPECT_FALSE(o.spf_aligned);
    EXPECT_NE(o.reason.find("DKIM d=mail.example.com aligned"), std::string::npos) << o.reason;
    // The From domain first, then its organizational domain.
    ASSERT_EQ(dns.asked.size(), 2u);
    EXPECT_EQ(dns.asked[0], std::make_pair(std::string("_dmarc.news.example.com"), dns::kTypeTxt));
    EXPECT_EQ(dns.asked[1], std::make_pair(std::string("_dmarc.example.com"), dns::kTypeTxt));
}

TEST(Dmarc, StrictDkimAlignmentNeedsTheSameName) {
    FakeDns dns;
    dns.txt("_dmarc.example.com", "v=DMARC1; p=reject; adkim=s");
    auto o = check(dns, input("news.example.com", kSpfFail, {dkim(DkimResult::pass, "example.com")}));
    EXPECT_EQ(o.result, DmarcResult::fail);
    EXPECT_FALSE(o.dkim_aligned);
    EXPECT_EQ(o.disposition, Disposition::reject);
    EXPECT_NE(o.reason.find("adkim=s"), std::string::npos) << o.reason;

    o = check(dns, input("news.example.com", kSpfFail,
                         {dkim(DkimResult::pass, "example.com"), dkim(DkimResult::pass, "News.Example.com")}));
    EXPECT_EQ(o.result, DmarcResult::pass);
    EXPECT_TRUE(o.dkim_aligned);
}

TEST(Dmarc, OnlyPassingSignaturesAlign) {
    FakeDns dns;
    dns.txt("_dmarc.example.com", "v=DMARC1; p=quarantine");
    const auto o = check(dns, input("example.com", kSpfFail,
                                    {dkim(DkimResult::fail, "example.com"), dkim(DkimResult::temperror, "example.com"),
                                     dkim(DkimResult::policy, "example.com"), dkim(DkimResult::pass, "other.net")}));
    EXPECT_EQ(o.result, DmarcResult::fail);
    EXPECT_FALSE(o.dkim_aligned);
    EXPECT_EQ(o.disposition, Disposition::quarantine);
    EXPECT_NE(o.reason.find("DKIM pass d=other.net not aligned"), std::string::npos) << o.reason;
}

TEST(Dmarc, PassBySpf) {
    FakeDns dns;
    dns.txt("_dmarc.example.com", "v=DMARC1; p=reject");
    auto o = check(dns, input("example.com", spf(SpfResult::pass, "bounce@mail.example.com")));
    EXPECT_EQ(o.result, DmarcResult::pass);
    EXPECT_TRUE(o.spf_aligned);
    EXPECT_FALSE(o.dkim_aligned);
    EXPECT_EQ(o.disposition, Disposition::none);

    // A null reverse-path: SPF checked postmaster@<helo>, so the HELO name is what aligns.
    o = check(dns, input("example.com", spf(SpfResult::pass, "postmaster@mx1.example.com")));
    EXPECT_EQ(o.result, DmarcResult::pass);
    EXPECT_TRUE(o.spf_aligned);

    // softfail, neutral and the rest are not a pass.
    o = check(dns, input("example.com", spf(SpfResult::softfail, "bounce@example.com")));
    EXPECT_EQ(o.result, DmarcResult::fail);
    EXPECT_FALSE(o.spf_aligned);
    EXPECT_NE(o.reason.find("SPF softfail"), std::string::npos) << o.reason;
}

TEST(Dmarc, StrictSpfAlignment) {
    FakeDns dns;
    dns.txt("_dmarc.example.com", "v=DMARC1; p=reject; aspf=s");
    auto o = check(dns, input("example.com", spf(SpfResult::pass, "bounce@mail.example.com")));
    EXPECT_EQ(o.result, DmarcResult::fail);
    EXPECT_FALSE(o.spf_aligned);
    o = check(dns, input("example.com", spf(SpfResult::pass, "bounce@EXAMPLE.com")));
    EXPECT_EQ(o.result, DmarcResult::pass);
    EXPECT_TRUE(o.spf_aligned);
}

TEST(Dmarc, FailGetsThePolicy) {
    for (const auto& [p, d] : {std::pair{"reject", Disposition::reject}, std::pair{"quarantine", Disposition::quarantine},
                               std::pair{"none", Disposition::none}}) {
        FakeDns dns;
        dns.txt("_dmarc.example.co.uk", std::string("v=DMARC1; p=") + p);
        const auto o = check(dns, input("example.co.uk", spf(SpfResult::pass, "x@other.co.uk"),
                                        {dkim(DkimResult::pass, "co.uk")}));
        EXPECT_EQ(o.result, DmarcResult::fail) << p;
        EXPECT_EQ(o.policy, d) << p;
        EXPECT_EQ(o.disposition, d) << p;
        EXPECT_FALSE(o.spf_aligned);
        EXPECT_FALSE(o.dkim_aligned);   // co.uk is a public suffix: not the organizational domain example.co.uk
    }
}

TEST(Dmarc, SubdomainPolicy) {
    FakeDns dns;
    dns.txt("_dmarc.example.com", "v=DMARC1; p=reject; sp=quarantine");
    auto o = check(dns, input("a.b.example.com", kSpfFail));
    EXPECT_EQ(o.result, DmarcResult::fail);
    EXPECT_EQ(o.policy_domain, "example.com");
    EXPECT_EQ(o.policy, Disposition::quarantine);
    EXPECT_EQ(o.disposition, Disposition::quarantine);

    o = check(dns, input("example.com", kSpfFail));   // the organizational domain itself: p=
    EXPECT_EQ(o.policy, Disposition::reject);
    EXPECT_EQ(o.disposition, Disposition::reject);

    // A record at the From domain itself: its p= applies, its sp= does not.
    dns.txt("_dmarc.b.example.com", "v=DMARC1; p=none; sp=reject");
    o = check(dns, input("b.example.com", kSpfFail));
    EXPECT_EQ(o.policy_domain, "b.example.com");
    EXPECT_EQ(o.policy, Disposition::none);
    EXPECT_EQ(o.disposition, Disposition::none);
}

TEST(Dmarc, OrganizationalDomainFallback) {
    FakeDns dns;
    dns.txt("_dmarc.mail.example.net", "some other TXT record");   // no DMARC record at the From domain
    dns.txt("_dmarc.example.net", "v=DMARC1; p=quarantine");
    const auto o = check(dns, input("mail.example.net", kSpfFail));
    EXPECT_EQ(o.result, DmarcResult::fail);
    EXPECT_EQ(o.policy_domain, "example.net");
    EXPECT_EQ(o.disposition, Disposition::quarantine);
    EXPECT_EQ(dns.asked.size(), 2u);
}

TEST(Dmarc, NoRecord) {
    FakeDns dns;
    dns.exists("_dmarc.mail.example.com");   // NODATA, then NXDOMAIN
    auto o = check(dns, input("mail.example.com", spf(SpfResult::pass, "b@example.com")));
    EXPECT_EQ(o.result, DmarcResult::none);
    EXPECT_EQ(o.policy_domain, "");
    EXPECT_EQ(o.disposition, Disposition::none);
    EXPECT_TRUE(o.spf_aligned);   // filled in with relaxed alignment even without a record
    EXPECT_EQ(o.reason, "no DMARC record at _dmarc.mail.example.com or _dmarc.example.com");

    o = check(dns, input("example.com", kSpfFail));   // already the organizational domain: one question
    EXPECT_EQ(o.reason, "no DMARC record at _dmarc.example.com");
    EXPECT_EQ(dns.asked.size(), 3u);

    o = check(dns, input("", kSpfFail));
    EXPECT_EQ(o.result, DmarcResult::none);
    EXPECT_EQ(o.reason, "no RFC5322.From domain");
    o = check(dns, input("a..example.com", kSpfFail));
    EXPECT_EQ(o.result, DmarcResult::none);
    EXPECT_EQ(o.reason, "From domain is not a DNS name");
    o = check(dns, input(std::string(250, 'a') + ".com", kSpfFail));
    EXPECT_EQ(o.reason, "From domain is not a DNS name");
    o = check(dns, input(std::string(60, 'a') + "." + std::string(60, 'b') + "." + std::string(60, 'c') + "." +
                             std::string(60, 'd') + ".com", kSpfFail));
    EXPECT_EQ(o.reason, "From domain too long for a DMARC lookup");
    EXPECT_EQ(dns.asked.size(), 3u);   // none of these reached DNS
}

TEST(Dmarc, PercentSampling) {
    FakeDns dns;
    dns.txt("_dmarc.example.com", "v=DMARC1; p=reject; pct=50");
    auto o = check(dns, input("example.com", kSpfFail), 0.25);   // 25 < 50: the policy applies
    EXPECT_EQ(o.policy, Disposition::reject);
    EXPECT_EQ(o.disposition, Disposition::reject);
    o = check(dns, input("example.com", kSpfFail), 0.5);   // 50 >= 50: one step lower
    EXPECT_EQ(o.policy, Disposition::reject);
    EXPECT_EQ(o.disposition, Disposition::quarantine);
    EXPECT_NE(o.reason.find("pct=50 sampled out: quarantine instead of reject"), std::string::npos) << o.reason;
    o = check(dns, input("example.com", kSpfFail), 0.99);
    EXPECT_EQ(o.disposition, Disposition::quarantine);

    FakeDns q;
    q.txt("_dmarc.example.com", "v=DMARC1; p=quarantine; pct=0");
    o = check(q, input("example.com", kSpfFail), 0.0);
    EXPECT_EQ(o.policy, Disposition::quarantine);
    EXPECT_EQ(o.disposition, Disposition::none);

    FakeDns full;
    full.txt("_dmarc.example.com", "v=DMARC1; p=reject");
    o = check(full, input("example.com", kSpfFail), 0.999);
    EXPECT_EQ(o.disposition, Disposition::reject);
}

TEST(Dmarc, TemporaryDnsFailure) {
    FakeDns dns;
    dns.temporary("_dmarc.example.com");
    auto o = check(dns, input("example.com", kSpfFail));
    EXPECT_EQ(o.result, DmarcResult::temperror);
    EXPECT_EQ(o.disposition, Disposition::none);
    EXPECT_EQ(o.reason, "_dmarc.example.com: SERVFAIL");

    // At the organizational domain, after nothing at the From domain.
    o = check(dns, input("www.example.com", kSpfFail));
    EXPECT_EQ(o.result, DmarcResult::temperror);

    // A failure at the From domain does not fall back: the record there may exist.
    FakeDns sub;
    sub.temporary("_dmarc.www.example.com");
    sub.txt("_dmarc.example.com", "v=DMARC1; p=reject");
    o = check(sub, input("www.example.com", kSpfFail));
    EXPECT_EQ(o.result, DmarcResult::temperror);
    EXPECT_EQ(sub.asked.size(), 1u);
}

TEST(Dmarc, MultipleRecordsMeanNoPolicy) {
    FakeDns dns;
    dns.txt("_dmarc.www.example.com", "v=DMARC1; p=reject");
    dns.txt("_dmarc.www.example.com", "v=DMARC1; p=none");
    dns.txt("_dmarc.example.com", "v=DMARC1; p=reject");
    const auto o = check(dns, input("www.example.com", kSpfFail));
    EXPECT_EQ(o.result, DmarcResult::none);
    EXPECT_EQ(o.disposition, Disposition::none);
    EXPECT_EQ(o.reason, "2 DMARC records at _dmarc.www.example.com: none applies");
    EXPECT_EQ(dns.asked.size(), 1u);   // RFC 7489 6.6.3 step 5: discovery ends here

    // Other TXT records beside the one DMARC record are not counted.
    FakeDns one;
    one.txt("_dmarc.example.com", "v=spf1 -all");
    one.txt("_dmarc.example.com", "v=DMARC1; p=quarantine");
    one.txt("_dmarc.example.com", "v=dmarc1; p=none");
    EXPECT_EQ(check(one, input("example.com", kSpfFail)).disposition, Disposition::quarantine);
}

TEST(Dmarc, InvalidPolicy) {
    FakeDns with_rua;
    with_rua.txt("_dmarc.example.com", "v=DMARC1; p=bogus; rua=mailto:dmarc@example.com");
    auto o = check(with_rua, input("example.com", kSpfFail));
    EXPECT_EQ(o.result, DmarcResult::fail);   // evaluated as p=none
    EXPECT_EQ(o.policy, Disposition::none);
    EXPECT_EQ(o.disposition, Disposition::none);
    EXPECT_NE(o.reason.find("acting as p=none"), std::string::npos) << o.reason;

    FakeDns without;
    without.txt("_dmarc.example.com", "v=DMARC1; p=bogus");
    o = check(without, input("example.com", kSpfFail));
    EXPECT_EQ(o.result, DmarcResult::permerror);
    EXPECT_EQ(o.policy_domain, "example.com");
    EXPECT_EQ(o.disposition, Disposition::none);
    EXPECT_NE(o.reason.find("invalid p=bogus"), std::string::npos) << o.reason;
}

TEST(Dmarc, RecordSplitOverSeveralStrings) {
    FakeDns dns;
    dns.txt("_dmarc.example.com", "v=DMARC1; p=reject; rua=mailto:" + std::string(300, 'a') + "@example.com");
    EXPECT_EQ(check(dns, input("example.com", kSpfFail)).disposition, Disposition::reject);
}

TEST(Dmarc, NamesAreNormalized) {
    FakeDns dns;
    dns.txt("_dmarc.example.com", "v=DMARC1; p=reject");
    auto o = check(dns, input("Example.COM.", spf(SpfResult::pass, "b@EXAMPLE.com")));
    EXPECT_EQ(o.from_domain, "example.com");
    EXPECT_EQ(o.result, DmarcResult::pass);

    // U-labels are asked in A-label form.
    FakeDns idn;
    idn.txt("_dmarc.xn--bcher-kva.example", "v=DMARC1; p=quarantine");
    o = check(idn, input("bücher.example", kSpfFail, {dkim(DkimResult::pass, "xn--bcher-kva.example")}));
    EXPECT_EQ(o.from_domain, "xn--bcher-kva.example");
    EXPECT_EQ(o.result, DmarcResult::pass);
    EXPECT_TRUE(o.dkim_aligned);
}

TEST(Dmarc, Alignment) {
    EXPECT_TRUE(aligned(psl(), "example.com", "example.com", true));
    EXPECT_FALSE(aligned(psl(), "a.example.com", "example.com", true));
    EXPECT_TRUE(aligned(psl(), "a.example.com", "b.example.com", false));
    EXPECT_FALSE(aligned(psl(), "example.co.uk", "other.co.uk", false));
    EXPECT_FALSE(aligned(psl(), "", "", false));
}
