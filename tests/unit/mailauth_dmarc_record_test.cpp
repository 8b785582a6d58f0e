#include "mailauth/dmarc_record.hpp"

#include <gtest/gtest.h>

using namespace ferry::mailauth;

TEST(DmarcRecord, MinimalRecordHasTheDefaults) {
    const auto r = parse_dmarc_record("v=DMARC1; p=reject");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->policy, Disposition::reject);
    EXPECT_FALSE(r->subdomain_policy);
    EXPECT_FALSE(r->strict_dkim);
    EXPECT_FALSE(r->strict_spf);
    EXPECT_EQ(r->percent, 100);
    EXPECT_TRUE(r->rua.empty());
    EXPECT_TRUE(r->ruf.empty());
    EXPECT_EQ(r->failure_options, "0");
    EXPECT_EQ(r->report_format, "afrf");
    EXPECT_EQ(r->report_interval, 86400u);
    EXPECT_FALSE(r->assumed_none);
    EXPECT_EQ(r->problem, "");
}

TEST(DmarcRecord, EveryTag) {
    const auto r = parse_dmarc_record(
        "v=DMARC1; p=quarantine; sp=none; adkim=s; aspf=s; pct=25; "
        "rua=mailto:a@example.com, mailto:b@example.net!10m; ruf=mailto:f@example.com; fo=1:d; rf=afrf; ri=3600;");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->policy, Disposition::quarantine);
    ASSERT_TRUE(r->subdomain_policy);
    EXPECT_EQ(*r->subdomain_policy, Disposition::none);
    EXPECT_TRUE(r->strict_dkim);
    EXPECT_TRUE(r->strict_spf);
    EXPECT_EQ(r->percent, 25);
    EXPECT_EQ(r->rua, (std::vector<std::string>{"mailto:a@example.com", "mailto:b@example.net!10m"}));
    EXPECT_EQ(r->ruf, (std::vector<std::string>{"mailto:f@example.com"}));
    EXPECT_EQ(r->failure_options, "1:d");
    EXPECT_EQ(r->report_interval, 3600u);
    EXPECT_EQ(r->problem, "");
}

TEST(DmarcRecord, WhitespaceAndValueCase) {
    const auto r = parse_dmarc_record("v = DMARC1 ;\tp = Reject ; adkim=S ;sp=QUARANTINE");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->policy, Disposition::reject);
    EXPECT_EQ(*r->subdomain_policy, Disposition::quarantine);
    EXPECT_TRUE(r->strict_dkim);
}

TEST(DmarcRecord, VersionMustComeFirstAndMatchExactly) {
    EXPECT_TRUE(is_dmarc_record("v=DMARC1"));
    EXPECT_TRUE(is_dmarc_record("v=DMARC1;p=none"));
    EXPECT_TRUE(is_dmarc_record("v =\tDMARC1 ; p=none"));
    EXPECT_FALSE(is_dmarc_record("v=dmarc1; p=none"));
    EXPECT_FALSE(is_dmarc_record("V=DMARC1; p=none"));
    EXPECT_FALSE(is_dmarc_record("v=DMARC10; p=none"));
    EXPECT_FALSE(is_dmarc_record("v=DMARC1 p=none"));
    EXPECT_FALSE(is_dmarc_record(" v=DMARC1; p=none"));
    EXPECT_FALSE(is_dmarc_record("p=none; v=DMARC1"));
    EXPECT_FALSE(is_dmarc_record("v=spf1 -all"));
    EXPECT_FALSE(is_dmarc_record(""));
    std::string why;
    EXPECT_FALSE(parse_dmarc_record("v=DMARC2; p=none", &why));
    EXPECT_NE(why.find("not a DMARC record"), std::string::npos);
}

TEST(DmarcRecord, PolicyMayComeAfterOtherTags) {
    const auto r = parse_dmarc_record("v=DMARC1; rua=mailto:r@example.com; p=reject");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->policy, Disposition::reject);
    EXPECT_FALSE(r->assumed_none);
}

TEST(DmarcRecord, MissingOrInvalidPolicyWithoutRuaIsNoRecord) {
    std::string why;
    EXPECT_FALSE(parse_dmarc_record("v=DMARC1", &why));
    EXPECT_NE(why.find("no valid p="), std::string::npos);
    EXPECT_FALSE(parse_dmarc_record("v=DMARC1; p=bounce", &why));
    EXPECT_NE(why.find("invalid p=bounce"), std::string::npos);
    EXPECT_FALSE(parse_dmarc_record("v=DMARC1; p=reject; sp=maybe", &why));
    EXPECT_NE(why.find("invalid sp=maybe"), std::string::npos);
    EXPECT_FALSE(parse_dmarc_record("v=DMARC1; p=bogus; rua=not-a-uri", &why));
    EXPECT_FALSE(parse_dmarc_record("v=DMARC1; p=none; p=reject", &why));   // given twice: no valid p
}

TEST(DmarcRecord, InvalidPolicyWithValidRuaActsAsNone) {
    auto r = parse_dmarc_record("v=DMARC1; p=bogus; sp=reject; adkim=s; rua=mailto:d@example.com");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->policy, Disposition::none);
    EXPECT_FALSE(r->subdomain_policy);
    EXPECT_TRUE(r->assumed_none);
    EXPECT_TRUE(r->strict_dkim);   // the other tags are kept
    EXPECT_NE(r->problem.find("acting as p=none"), std::string::npos);

    r = parse_dmarc_record("v=DMARC1; p=reject; sp=nonsense; rua=bad, mailto:d@example.com");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->policy, Disposition::none);
    EXPECT_TRUE(r->assumed_none);
    EXPECT_EQ(r->rua, std::vector<std::string>{"mailto:d@example.com"});

    r = parse_dmarc_record("v=DMARC1; rua=mailto:d@example.com");
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->assumed_none);
}

TEST(DmarcRecord, BadValuesFallBackToDefaults) {
    for (const char* pct : {"150", "-1", "abc", "1000", "", "5.5"}) {
        const auto r = parse_dmarc_record(std::string("v=DMARC1; p=reject; pct=") + pct);
        ASSERT_TRUE(r) << pct;
        EXPECT_EQ(r->percent, 100) << pct;
        EXPECT_NE(r->problem.find("pct="), std::string::npos) << pct;
    }
    EXPECT_EQ(parse_dmarc_record("v=DMARC1; p=reject; pct=050")->percent, 50);
    EXPECT_EQ(parse_dmarc_record("v=DMARC1; p=reject; pct=0")->percent, 0);
    const auto r = parse_dmarc_record("v=DMARC1; p=reject; adkim=x; aspf=strict; fo=2; rf=:; ri=99999999999");
    ASSERT_TRUE(r);
    EXPECT_FALSE(r->strict_dkim);
    EXPECT_FALSE(r->strict_spf);
    EXPECT_EQ(r->failure_options, "0");
    EXPECT_EQ(r->report_format, "afrf");
    EXPECT_EQ(r->report_interval, 86400u);
}

TEST(DmarcRecord, UnknownTagsAndBrokenSpecsAreIgnored) {
    const auto r = parse_dmarc_record("v=DMARC1; p=reject; np=none; psd=n; x=caf\xc3\xa9; 1bad; =; junk");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->policy, Disposition::reject);
    EXPECT_NE(r->problem.find("tag-spec ignored"), std::string::npos);
    EXPECT_TRUE(parse_dmarc_record("v=DMARC1;;; p=none;;"));
}

TEST(DmarcRecord, ReportUris) {
    EXPECT_TRUE(is_dmarc_uri("mailto:dmarc@example.com"));
    EXPECT_TRUE(is_dmarc_uri("mailto:dmarc@example.com!10m"));
    EXPECT_TRUE(is_dmarc_uri("mailto:dmarc@example.com!500"));
    EXPECT_TRUE(is_dmarc_uri("https://example.com/report?x=1"));
    EXPECT_TRUE(is_dmarc_uri("mailto:a%2Cb@example.com"));
    EXPECT_FALSE(is_dmarc_uri("mailto:"));
    EXPECT_FALSE(is_dmarc_uri("dmarc@example.com"));
    EXPECT_FALSE(is_dmarc_uri("1mailto:a@example.com"));
    EXPECT_FALSE(is_dmarc_uri("mailto:a%zz@example.com"));
    EXPECT_FALSE(is_dmarc_uri("mailto:a b@example.com"));
    EXPECT_FALSE(is_dmarc_uri("mailto:a@example.com!"));
    EXPECT_FALSE(is_dmarc_uri("mailto:a@example.com!10x"));
    EXPECT_FALSE(is_dmarc_uri("mailto:a@example.com!1!2"));
    EXPECT_FALSE(is_dmarc_uri(""));
}
