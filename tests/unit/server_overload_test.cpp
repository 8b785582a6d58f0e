// The descriptor budget of a configuration, and the back-off and log throttle of a listener out of descriptors.
#include <gtest/gtest.h>

#include "config/config.hpp"
#include "server/accept_shedder.hpp"
#include "server/descriptor_budget.hpp"

namespace {

using namespace std::chrono_literals;
using ferry::server::AcceptBackoff;
using ferry::server::OverloadReport;

ferry::config::Config parse(const std::string& text) {
    return ferry::config::parse_config(text, std::filesystem::temp_directory_path() / "ferry-budget.toml");
}

const std::string kTwoListeners = R"([[listen]]
address = "127.0.0.1:25"
connections = 300
[[listen]]
address = "127.0.0.1:587"
role = "submission"
[limits]
connections = 500
[outbound]
max_connections = 40
)";

TEST(DescriptorBudget, SumsEachListenersLimitTheOutboundConnectionsAndTheReserve) {
    const auto c = parse(kTwoListeners);
    const auto b = ferry::server::descriptor_budget(c);
    EXPECT_EQ(b.sessions, 800u);
    EXPECT_EQ(b.outbound, 40u);
    EXPECT_EQ(b.total(), 800u + 40u + ferry::server::kDescriptorReserve);
}

TEST(DescriptorBudget, ShortfallNamesTheKeysTheSumAndTheLimit) {
    const auto c = parse(kTwoListeners);
    const std::size_t need = 840 + ferry::server::kDescriptorReserve;
    EXPECT_EQ(ferry::server::descriptor_shortfall(c, need), "");
    const std::string why = ferry::server::descriptor_shortfall(c, need - 1);
    EXPECT_NE(why.find("ferry-budget.toml: listen[0].connections (300) + limits.connections for listen[1] (500) + "
                       "outbound.max_connections (40) + 128 reserved need 968 file descriptors, but RLIMIT_NOFILE "
                       "allows 967"),
              std::string::npos)
        << why;
}

TEST(DescriptorBudget, CountsEachSessionsMilterConnectionsAndRspamdsPool) {
    const auto c = parse(std::string(kTwoListeners) + R"(
[rspamd]
url = "http://127.0.0.1:11333"
max_connections = 16
[[milter]]
address = "inet:127.0.0.1:8891"
[[milter]]
address = "unix:/run/milter.sock"
)");
    const auto b = ferry::server::descriptor_budget(c);
    EXPECT_EQ(b.filters, 800u * 2 + 16u);
    const std::size_t need = 800 + 40 + 1616 + ferry::server::kDescriptorReserve;
    EXPECT_EQ(ferry::server::descriptor_shortfall(c, need), "");
    const std::string why = ferry::server::descriptor_shortfall(c, need - 1);
    EXPECT_NE(why.find("(listen[0].connections (300) + limits.connections for listen[1] (500)) x (1 + 2 milter "
                       "connections each) + rspamd.max_connections (16) + outbound.max_connections (40)"),
              std::string::npos)
        << why;
}

TEST(AcceptBackoff, DoublesFrom100MsTo1SAndStartsOverAfterASuccess) {
    AcceptBackoff b;
    EXPECT_EQ(b.failed(), 100ms);
    EXPECT_EQ(b.failed(), 200ms);
    EXPECT_EQ(b.failed(), 400ms);
    EXPECT_EQ(b.failed(), 800ms);
    EXPECT_EQ(b.failed(), 1000ms);
    EXPECT_EQ(b.failed(), 1000ms);
    b.succeeded();
    EXPECT_EQ(b.failed(), 100ms);
}

TEST(OverloadReport, OneLinePerIntervalWithTheCountsSinceTheLastOne) {
    OverloadReport r;
    OverloadReport::Counts out;
    const auto t0 = OverloadReport::Clock::now();
    ASSERT_TRUE(r.failed(t0, 3, out));   // the first failure is reported at once
    EXPECT_EQ(out.failures, 1u);
    EXPECT_EQ(out.shed, 3u);
    for (int i = 1; i <= 50; ++i) EXPECT_FALSE(r.failed(t0 + i * 100ms, 2, out));
    ASSERT_TRUE(r.failed(t0 + 10s, 1, out));
    EXPECT_EQ(out.failures, 51u);
    EXPECT_EQ(out.shed, 101u);
    EXPECT_FALSE(r.failed(t0 + 19s, 0, out));
}

}  // namespace
