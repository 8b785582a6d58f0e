// rspamd_request_headers: the facts Ferry gives rspamd with a message (rspamd's protocol, "HTTP headers").
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "filter/rspamd_request.hpp"

using namespace ferry::filter;

namespace {

std::vector<std::pair<std::string, std::string>> pairs(const std::vector<RspamdRequestHeader>& h) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& x : h) out.emplace_back(x.name, x.value);
    return out;
}

using Pairs = std::vector<std::pair<std::string, std::string>>;

}  // namespace

TEST(RspamdRequest, EverythingKnownAboutATlsAuthenticatedSession) {
    ConnectionFacts c{"2001:db8::7", 40000, "client.example.org", "mx.example.test", "submission", false};
    SessionFacts s{"client.example.org", "TLSv1.3", "TLS_AES_256_GCM_SHA384", 256, "alice@example.test", "PLAIN"};
    MessageFacts m{"4F3A2B1C", "alice@example.test", {"SIZE=100"}, {"bob@example.org", "carol@example.net"}};
    EXPECT_EQ(pairs(rspamd_request_headers(c, s, m)),
              (Pairs{{"IP", "2001:db8::7"},
                     {"Helo", "client.example.org"},
                     {"Hostname", "client.example.org"},
                     {"From", "alice@example.test"},
                     {"Rcpt", "bob@example.org"},
                     {"Rcpt", "carol@example.net"},
                     {"Queue-Id", "4F3A2B1C"},
                     {"User", "alice@example.test"},
                     {"TLS-Version", "TLSv1.3"},
                     {"TLS-Cipher", "TLS_AES_256_GCM_SHA384"},
                     {"MTA-Name", "mx.example.test"}}));
}

TEST(RspamdRequest, UnknownFactsAreLeftOutAndTheNullSenderIsAngleBrackets) {
    // No PTR name, no TLS, no login: rspamd takes a missing Hostname as "unknown" and a missing User as
    // unauthenticated; an empty From would be no sender at all, "<>" is a bounce.
    ConnectionFacts c{"192.0.2.1", 40000, "", "mx.example.test", "mx", true};
    SessionFacts s{};
    s.helo = "[192.0.2.1]";
    MessageFacts m{"4F3A2B1D", "", {}, {"bob@example.test"}};
    EXPECT_EQ(pairs(rspamd_request_headers(c, s, m)),
              (Pairs{{"IP", "192.0.2.1"},
                     {"Helo", "[192.0.2.1]"},
                     {"From", "<>"},
                     {"Rcpt", "bob@example.test"},
                     {"Queue-Id", "4F3A2B1D"},
                     {"MTA-Name", "mx.example.test"}}));
}

TEST(RspamdRequest, ClientDataCannotAddRequestFields) {
    ConnectionFacts c{"192.0.2.1", 1, "", "mx.example.test", "mx", true};
    SessionFacts s{};
    s.helo = "evil\r\nSettings-Id: bypass";
    MessageFacts m{"Q1", "a\nb@example.org", {}, {std::string(5000, 'r') + "@example.test"}};
    const auto h = rspamd_request_headers(c, s, m);
    EXPECT_EQ(h.at(1).value, "evil  Settings-Id: bypass");
    EXPECT_EQ(h.at(2).value, "a b@example.org");
    EXPECT_EQ(h.at(3).value.size(), kMaxRspamdHeaderValueOut);
}
