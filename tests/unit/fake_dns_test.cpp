// The test double itself: other tests trust its NXDOMAIN / NODATA / temporary distinctions.
#include "fake_dns.hpp"

#include <gtest/gtest.h>

#include "dns/wire.hpp"

using ferry::dns::Answer;
using ferry::testing::FakeDns;
using ferry::testing::run_sync;

TEST(FakeDns, AnswersFromItsTable) {
    FakeDns dns;
    dns.txt("example.org", std::string(300, 'x')).a("example.org", "192.0.2.1").exists("empty.org").temporary("down.org");
    const Answer txt = run_sync(dns.query("example.org", ferry::dns::kTypeTxt));
    ASSERT_EQ(txt.status, Answer::Status::data);
    EXPECT_EQ(ferry::dns::parse_txt(txt.rdata.at(0)), std::string(300, 'x'));
    EXPECT_EQ(ferry::dns::parse_a(run_sync(dns.query("example.org", ferry::dns::kTypeA)).rdata.at(0)), "192.0.2.1");
    EXPECT_EQ(run_sync(dns.query("example.org", ferry::dns::kTypeMx)).status, Answer::Status::no_data);
    EXPECT_EQ(run_sync(dns.query("empty.org", ferry::dns::kTypeA)).status, Answer::Status::no_data);
    EXPECT_EQ(run_sync(dns.query("nowhere.org", ferry::dns::kTypeA)).status, Answer::Status::nxdomain);
    EXPECT_EQ(run_sync(dns.query("down.org", ferry::dns::kTypeA)).status, Answer::Status::temporary);
    EXPECT_EQ(dns.asked.size(), 6u);
}
