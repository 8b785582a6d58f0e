// RspamdClient against a scripted HTTP peer on a loopback socket: what it sends, keep-alive reuse, the retry of a
// kept connection rspamd closed under us, and every failure (bad JSON, HTTP 500, a close mid-reply, a slow peer, a
// refused connection) turned into on_error's verdict. The real rspamd is driven by the integration tests (and by
// RspamdClientLive below when FERRY_RSPAMD_URL names a running one).
#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <chrono>
#include <cstdlib>
#include <deque>
#include <string>
#include <vector>

#include "filter/rspamd_client.hpp"
#include "filter/rspamd_reply.hpp"

// Steps are written with designated initializers naming only what differs from the defaults.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

using namespace ferry;
using filter::ContentVerdict;
using filter::Decision;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

constexpr const char* kRejectReply =
    R"({"is_skipped":true,"score":15.0,"required_score":15.0,"action":"reject","symbols":{"GTUBE":{"name":"GTUBE","score":0.0,"metric_score":0.0}},"messages":{"smtp_message":"Gtube pattern"}})";
constexpr const char* kNoActionReply = R"({"score":1.0,"required_score":15.0,"action":"no action","milter":{"remove_headers":{"X-Spam":0}}})";

const std::string kMessage =
    "Received: from client.example.org by mx.example.test; Mon, 07 Dec 2026 12:00:00 +0000\r\n"
    "From: <alice@sender.example>\r\nTo: <bob@example.test>\r\nSubject: test\r\n\r\nHello.\r\n";

// What the peer does with one request, in the order requests arrive (over every connection).
struct Step {
    enum class Kind {
        reply,           // an HTTP reply (status, body, keep_alive, after `delay`), then the connection stays open
                         // unless !keep_alive or close_after
        raw_then_close,  // `raw` octets, then close
        close,           // close without a reply
    };
    Kind kind = Kind::reply;
    unsigned status = 200;
    std::string body = kNoActionReply;
    bool keep_alive = true;
    bool close_after = false;
    std::chrono::milliseconds delay{0};
    std::string raw;
};

class ScriptedPeer {
public:
    explicit ScriptedPeer(asio::io_context& io) : io_(io), acceptor_(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
        asio::co_spawn(io_, accept_loop(), asio::detached);
    }
    std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
    void script(std::vector<Step> steps) { steps_.assign(steps.begin(), steps.end()); }

    int connections = 0;
    std::vector<http::request<http::string_body>> requests;

private:
    asio::awaitable<void> accept_loop() {
        for (;;) {
            auto [ec, socket] = co_await acceptor_.async_accept(use_tuple);
            if (ec) co_return;
            ++connections;
            asio::co_spawn(io_, serve(std::move(socket)), asio::detached);
        }
    }

    asio::awaitable<void> serve(tcp::socket socket) {
        beast::flat_buffer buffer;
        for (;;) {
            http::request<http::string_body> request;
            auto [ec, n] = co_await http::async_read(socket, buffer, request, use_tuple);
            if (ec) co_return;
            requests.push_back(request);
            Step step = steps_.empty() ? Step{} : steps_.front();
            if (!steps_.empty()) steps_.pop_front();
            if (step.kind == Step::Kind::close) co_return;
            if (step.kind == Step::Kind::raw_then_close) {
                co_await asio::async_write(socket, asio::buffer(step.raw), use_tuple);
                co_return;
            }
            if (step.delay.count() > 0) {
                asio::steady_timer t(io_, step.delay);
                co_await t.async_wait(use_tuple);
            }
            http::response<http::string_body> reply{static_cast<http::status>(step.status), 11};
            reply.set(http::field::content_type, "application/json");
            reply.keep_alive(step.keep_alive);
            reply.body() = step.body;
            reply.prepare_payload();
            auto [wec, w] = co_await http::async_write(socket, reply, use_tuple);
            if (wec || !step.keep_alive || step.close_after) co_return;
        }
    }

    asio::io_context& io_;
    tcp::acceptor acceptor_;
    std::deque<Step> steps_;
};

class RspamdClientTest : public ::testing::Test {
protected:
    RspamdClientTest() : peer(io) {
        settings.url = "http://127.0.0.1";
        settings.host = "127.0.0.1";
        settings.port = peer.port();
        settings.timeout = 2000ms;
    }

    filter::ConnectionFacts connection{"192.0.2.1", 40000, "client.example.org", "mx.example.test", "mx", true};
    filter::SessionFacts session{"client.example.org", "", "", 0, "", ""};
    filter::MessageFacts message{"4F3A2B1C", "alice@sender.example", {}, {"bob@example.test", "carol@example.test"}};

    // Runs `count` checks one after another (`pause` between them) on one client; returns their verdicts.
    std::vector<ContentVerdict> checks(filter::RspamdClient& client, int count, std::chrono::milliseconds pause = 0ms) {
        std::vector<ContentVerdict> out;
        asio::co_spawn(io, [&]() -> asio::awaitable<void> {
            for (int i = 0; i < count; ++i) {
                if (i && pause.count()) {
                    asio::steady_timer t(io, pause);
                    co_await t.async_wait(use_tuple);
                }
                out.push_back(co_await client.check(connection, session, message, kMessage));
            }
            io.stop();
        }, asio::detached);
        io.restart();
        io.run_for(10s);
        return out;
    }

    ContentVerdict check_once() {
        filter::RspamdClient client(io.get_executor(), settings);
        auto v = checks(client, 1);
        return v.empty() ? ContentVerdict{} : v[0];
    }

    static void expect_tempfail(const ContentVerdict& v, const std::string& reason_part) {
        EXPECT_EQ(v.decision.action, Decision::Action::tempfail);
        ASSERT_TRUE(v.decision.reply);
        EXPECT_EQ(v.decision.reply->render(), "451 4.7.1 Spam filter unavailable, try again later\r\n");
        EXPECT_NE(v.decision.reason.find(reason_part), std::string::npos) << v.decision.reason;
        EXPECT_TRUE(v.header_edits.empty());
    }

    asio::io_context io;
    ScriptedPeer peer;
    config::RspamdSettings settings;
};

}  // namespace

TEST_F(RspamdClientTest, SendsTheMessageWithItsFactsAndReadsTheVerdict) {
    peer.script({Step{.body = kRejectReply}});
    const auto v = check_once();
    EXPECT_EQ(v.decision.action, Decision::Action::reject);
    ASSERT_TRUE(v.decision.reply);
    EXPECT_EQ(v.decision.reply->render(), "550 5.7.1 Gtube pattern\r\n");
    ASSERT_EQ(peer.requests.size(), 1u);
    const auto& r = peer.requests[0];
    EXPECT_EQ(r.method(), http::verb::post);
    EXPECT_EQ(r.target(), "/checkv2");
    EXPECT_EQ(r.body(), kMessage);   // the stored bytes, as they are
    EXPECT_EQ(r[http::field::content_length], std::to_string(kMessage.size()));
    EXPECT_EQ(r["IP"], "192.0.2.1");
    EXPECT_EQ(r["From"], "alice@sender.example");
    EXPECT_EQ(r["Queue-Id"], "4F3A2B1C");
    std::vector<std::string> rcpts;
    for (auto it = r.find("Rcpt"); it != r.end() && it->name_string() == "Rcpt"; ++it) rcpts.emplace_back(it->value());
    EXPECT_EQ(rcpts, (std::vector<std::string>{"bob@example.test", "carol@example.test"}));
}

TEST_F(RspamdClientTest, KeepsTheConnectionForTheNextRequest) {
    peer.script({Step{}, Step{}});
    filter::RspamdClient client(io.get_executor(), settings);
    const auto v = checks(client, 2);
    ASSERT_EQ(v.size(), 2u);
    for (const auto& x : v) EXPECT_EQ(x.decision.action, Decision::Action::proceed) << x.summary;
    EXPECT_EQ(peer.requests.size(), 2u);
    EXPECT_EQ(peer.connections, 1);
}

TEST_F(RspamdClientTest, ConnectionCloseFromRspamdIsHonoured) {
    // rspamd 3.4's normal worker answers "Connection: close" to every request.
    peer.script({Step{.keep_alive = false}, Step{.keep_alive = false}});
    filter::RspamdClient client(io.get_executor(), settings);
    const auto v = checks(client, 2);
    ASSERT_EQ(v.size(), 2u);
    for (const auto& x : v) EXPECT_EQ(x.decision.action, Decision::Action::proceed) << x.summary;
    EXPECT_EQ(peer.connections, 2);
}

TEST_F(RspamdClientTest, KeptConnectionClosedWhileIdleIsNotUsed) {
    // rspamd's keep-alive timeout closed the connection while it sat in the pool.
    peer.script({Step{.close_after = true}, Step{}});
    filter::RspamdClient client(io.get_executor(), settings);
    const auto v = checks(client, 2, 100ms);
    ASSERT_EQ(v.size(), 2u);
    for (const auto& x : v) EXPECT_EQ(x.decision.action, Decision::Action::proceed) << x.summary;
    EXPECT_EQ(peer.connections, 2);
}

TEST_F(RspamdClientTest, KeptConnectionClosedUnderTheRequestIsRetriedOnce) {
    // The connection was open when the request went out, and rspamd closed it without an answer: sent again on a
    // fresh connection, and answered there.
    peer.script({Step{}, Step{.kind = Step::Kind::close}, Step{.body = kRejectReply}});
    filter::RspamdClient client(io.get_executor(), settings);
    const auto v = checks(client, 2);
    ASSERT_EQ(v.size(), 2u);
    EXPECT_EQ(v[1].decision.action, Decision::Action::reject) << v[1].summary;
    EXPECT_EQ(peer.requests.size(), 3u);
    EXPECT_EQ(peer.connections, 2);
}

TEST_F(RspamdClientTest, FreshConnectionClosedWithoutAnAnswerIsNotRetried) {
    peer.script({Step{.kind = Step::Kind::close}, Step{}});
    const auto v = check_once();
    expect_tempfail(v, "connection closed before the reply was complete");
    EXPECT_EQ(peer.requests.size(), 1u);
}

TEST_F(RspamdClientTest, CloseMidReplyIsAnErrorAndNotRetried) {
    // Part of the reply arrived: rspamd did see the request, so it is not sent again.
    peer.script({Step{}, Step{.kind = Step::Kind::raw_then_close,
                              .raw = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"action\":"}});
    filter::RspamdClient client(io.get_executor(), settings);
    const auto v = checks(client, 2);
    ASSERT_EQ(v.size(), 2u);
    expect_tempfail(v[1], "connection closed before the reply was complete");
    EXPECT_EQ(peer.requests.size(), 2u);
}

TEST_F(RspamdClientTest, GarbageJsonIsAnError) {
    peer.script({Step{.body = "<html>not json</html>"}});
    expect_tempfail(check_once(), "reply is not JSON");
}

TEST_F(RspamdClientTest, HttpErrorStatusIsAnError) {
    peer.script({Step{.status = 500, .body = R"({"error":"invalid command"})"}});
    expect_tempfail(check_once(), "HTTP status 500");
}

TEST_F(RspamdClientTest, OversizedReplyIsAnError) {
    peer.script({Step{.body = std::string(filter::kMaxRspamdReply + 1, ' ')}});
    expect_tempfail(check_once(), "reply larger than");
}

TEST_F(RspamdClientTest, SlowReplyHitsTheDeadline) {
    settings.timeout = 300ms;
    peer.script({Step{.delay = 3000ms}});
    const auto start = std::chrono::steady_clock::now();
    const auto v = check_once();
    const auto took = std::chrono::steady_clock::now() - start;
    expect_tempfail(v, "timeout after 300ms");
    EXPECT_LT(took, 2000ms);
}

TEST_F(RspamdClientTest, RefusedConnectionIsAnError) {
    // A port nobody listens on: bound, then closed.
    tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    settings.port = a.local_endpoint().port();
    a.close();
    expect_tempfail(check_once(), "cannot connect to 127.0.0.1:");
}

TEST_F(RspamdClientTest, OnErrorAcceptDeliversWithTheUnscannedHeader) {
    settings.on_error = config::FilterFailure::accept;
    peer.script({Step{.status = 500, .body = "{}"}});
    const auto v = check_once();
    EXPECT_EQ(v.decision.action, Decision::Action::proceed);
    EXPECT_FALSE(v.decision.reply);
    ASSERT_EQ(v.header_edits.size(), 1u);
    EXPECT_EQ(v.header_edits[0].kind, filter::HeaderEdit::Kind::insert);
    EXPECT_EQ(v.header_edits[0].index, 0);
    EXPECT_EQ(v.header_edits[0].name, "X-Spam-Unscanned");
    EXPECT_EQ(v.header_edits[0].value, "rspamd unavailable (HTTP status 500)");
}

TEST_F(RspamdClientTest, IdleConnectionsAreCappedAtMaxConnections) {
    settings.max_connections = 1;
    peer.script({Step{.delay = 50ms}, Step{.delay = 50ms}, Step{}});
    filter::RspamdClient client(io.get_executor(), settings);
    // Two checks at once take two connections; only one is kept, so the third check reuses it.
    int done = 0;
    for (int i = 0; i < 2; ++i) {
        asio::co_spawn(io, [&]() -> asio::awaitable<void> {
            const auto v = co_await client.check(connection, session, message, kMessage);
            EXPECT_EQ(v.decision.action, Decision::Action::proceed) << v.summary;
            if (++done == 2) io.stop();
        }, asio::detached);
    }
    io.run_for(10s);
    ASSERT_EQ(done, 2);
    EXPECT_EQ(peer.connections, 2);
    const auto v = checks(client, 1);
    ASSERT_EQ(v.size(), 1u);
    EXPECT_EQ(v[0].decision.action, Decision::Action::proceed);
    EXPECT_EQ(peer.connections, 2);
    EXPECT_EQ(peer.requests.size(), 3u);
}

TEST_F(RspamdClientTest, CloseDropsTheIdleConnections) {
    peer.script({Step{}, Step{}});
    filter::RspamdClient client(io.get_executor(), settings);
    ASSERT_EQ(checks(client, 1).size(), 1u);
    client.close();
    ASSERT_EQ(checks(client, 1).size(), 1u);
    EXPECT_EQ(peer.connections, 2);
}

// By hand against a running rspamd (tests/integration/rspamdtest.py starts one):
//   FERRY_RSPAMD_URL=http://127.0.0.1:PORT build/ferry_unit_tests --gtest_filter='RspamdClientLive*'
TEST(RspamdClientLive, GtubeIsRejectedByARealRspamd) {
    const char* url = std::getenv("FERRY_RSPAMD_URL");
    if (url == nullptr) GTEST_SKIP() << "FERRY_RSPAMD_URL is not set";
    const std::string u = url;
    const auto colon = u.rfind(':');
    config::RspamdSettings s;
    s.url = u;
    s.host = u.substr(u.find("//") + 2, colon - u.find("//") - 2);
    s.port = static_cast<std::uint16_t>(std::stoi(u.substr(colon + 1)));
    asio::io_context io;
    filter::RspamdClient client(io.get_executor(), s);
    const filter::ConnectionFacts c{"192.0.2.1", 40000, "", "mx.example.test", "mx", true};
    const filter::SessionFacts se{"client.example.org", "", "", 0, "", ""};
    const filter::MessageFacts m{"LIVE1", "", {}, {"bob@example.test"}};
    const std::string gtube = "From: <a@sender.example>\r\nTo: <bob@example.test>\r\nSubject: live\r\n\r\n"
                              "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n";
    const std::string add = "From: <a@sender.example>\r\nTo: <bob@example.test>\r\nSubject: live\r\n\r\n"
                            "YJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n";
    std::vector<ContentVerdict> v;
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
        v.push_back(co_await client.check(c, se, m, gtube));
        v.push_back(co_await client.check(c, se, m, add));
    }, asio::detached);
    io.run_for(30s);
    ASSERT_EQ(v.size(), 2u);
    EXPECT_EQ(v[0].decision.action, Decision::Action::reject) << v[0].summary;
    EXPECT_EQ(v[0].decision.reply->render(), "550 5.7.1 Gtube pattern\r\n");
    EXPECT_EQ(v[1].decision.action, Decision::Action::proceed) << v[1].summary;
    EXPECT_TRUE(v[1].junk) << v[1].summary;
    std::printf("live: %s\nlive: %s\n", v[0].summary.c_str(), v[1].summary.c_str());
}

// By hand, for the report of what a scan costs: sequential checks of a plain 1 KiB message against a real rspamd.
//   FERRY_RSPAMD_URL=http://127.0.0.1:PORT build/ferry_unit_tests --gtest_filter='RspamdClientLive*'
TEST(RspamdClientLive, SequentialScansOfAPlainMessage) {
    const char* url = std::getenv("FERRY_RSPAMD_URL");
    if (url == nullptr) GTEST_SKIP() << "FERRY_RSPAMD_URL is not set";
    const std::string u = url;
    const auto colon = u.rfind(':');
    config::RspamdSettings s;
    s.url = u;
    s.host = u.substr(u.find("//") + 2, colon - u.find("//") - 2);
    s.port = static_cast<std::uint16_t>(std::stoi(u.substr(colon + 1)));
    asio::io_context io;
    filter::RspamdClient client(io.get_executor(), s);
    const filter::ConnectionFacts c{"192.0.2.1", 40000, "", "mx.example.test", "mx", true};
    const filter::SessionFacts se{"client.example.org", "", "", 0, "", ""};
    const filter::MessageFacts m{"LIVE2", "a@sender.example", {}, {"bob@example.test"}};
    std::string text = "From: <a@sender.example>\r\nTo: <bob@example.test>\r\nSubject: plain\r\n"
                       "Date: Mon, 07 Dec 2026 12:00:00 +0000\r\nMessage-ID: <live2@sender.example>\r\n\r\n";
    while (text.size() < 1024) text += "The quick brown fox jumps over the lazy dog.\r\n";
    constexpr int kScans = 200;
    int proceed = 0;
    const auto start = std::chrono::steady_clock::now();
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
        for (int i = 0; i < kScans; ++i)
            if ((co_await client.check(c, se, m, text)).decision.action == Decision::Action::proceed) ++proceed;
    }, asio::detached);
    io.run_for(120s);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(proceed, kScans);
    std::printf("live: %d scans of %zu octets in %.2fs: %.2f ms each\n", kScans, text.size(), seconds,
                seconds * 1000 / kScans);
}
