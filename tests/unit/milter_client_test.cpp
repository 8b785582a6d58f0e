// The milter driver against a scripted milter on a loopback socket: the peer reads the frames the driver
// sends and answers with recorded replies, so each test sees exactly what goes over the wire (negotiation,
// macros, skipped stages, no-reply stages, progress, timeouts, a peer that closes or sends garbage).
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <string>

#include "filter/milter_client.hpp"
#include "filter/milter_codec.hpp"

using namespace ferry;
using namespace ferry::filter;
using namespace std::string_literals;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

std::string be32(std::uint32_t v) {
    return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

// A frame written out by hand (independent of the codec under test).
std::string frame(char command, const std::string& data = {}) { return be32(data.size() + 1) + command + data; }

std::string optneg_reply(std::uint32_t actions, std::uint32_t protocol, const std::string& extra = {}) {
    return frame('O', be32(6) + be32(actions) + be32(protocol) + extra);
}

struct Frame {
    char command = 0;
    std::string data;
};

// name -> value of a SMFIC_MACRO frame's data (after the stage octet).
std::map<std::string, std::string> macros_of(const Frame& f) {
    std::map<std::string, std::string> out;
    std::size_t at = 1;
    while (at < f.data.size()) {
        const auto n = f.data.find('\0', at);
        const auto v = f.data.find('\0', n + 1);
        out[f.data.substr(at, n - at)] = f.data.substr(n + 1, v - n - 1);
        at = v + 1;
    }
    return out;
}

[[noreturn]] void unexpected(char want, char got) {
    throw std::runtime_error(std::string("expected '") + want + "', got '" + got + "'");
}

// The frames with `command`, in order.
std::vector<Frame> frames_of(const std::vector<Frame>& seen, char command) {
    std::vector<Frame> out;
    for (const auto& f : seen)
        if (f.command == command) out.push_back(f);
    return out;
}

std::string commands_of(const std::vector<Frame>& seen) {
    std::string out;
    for (const auto& f : seen)
        if (f.command != 'D') out += f.command;
    return out;
}

// One milter connection as the test scripts it. (No gtest assertions inside coroutines: GCC 12 miscompiles
// string literals there; scripts only talk, and the tests check `seen` afterwards.)
template <class Socket>
struct PeerConn {
    Socket socket;
    std::vector<Frame> seen;   // every frame the driver sent, in order

    asio::awaitable<Frame> read() {
        char head[4];
        co_await asio::async_read(socket, asio::buffer(head), asio::use_awaitable);
        const std::uint32_t n = (static_cast<std::uint32_t>(static_cast<unsigned char>(head[0])) << 24) |
                                (static_cast<std::uint32_t>(static_cast<unsigned char>(head[1])) << 16) |
                                (static_cast<std::uint32_t>(static_cast<unsigned char>(head[2])) << 8) |
                                static_cast<unsigned char>(head[3]);
        std::string body(n, '\0');
        co_await asio::async_read(socket, asio::buffer(body), asio::use_awaitable);
        Frame f{body[0], body.substr(1)};
        seen.push_back(f);
        co_return f;
    }
    // Reads frames until one with `command` (macro frames on the way are kept in `seen`).
    asio::awaitable<Frame> expect(char command) {
        for (;;) {
            Frame f = co_await read();
            if (f.command == command) co_return f;
            if (f.command != 'D') unexpected(command, f.command);
        }
    }
    // Reads frames until one with `command`, whatever comes before it.
    asio::awaitable<Frame> skip_to(char command) {
        for (;;) {
            Frame f = co_await read();
            if (f.command == command) co_return f;
        }
    }
    asio::awaitable<void> send(const std::string& bytes) {
        co_await asio::async_write(socket, asio::buffer(bytes), asio::use_awaitable);
    }
    asio::awaitable<void> pause(std::chrono::milliseconds d) {
        asio::steady_timer t(socket.get_executor(), d);
        co_await t.async_wait(asio::use_awaitable);
    }
    std::vector<char> commands() const {
        std::vector<char> out;
        for (const auto& f : seen) out.push_back(f.command);
        return out;
    }
    const Frame* macros_for(char stage) const {
        const Frame* last = nullptr;
        for (const auto& f : seen)
            if (f.command == 'D' && !f.data.empty() && f.data[0] == stage) last = &f;
        return last;
    }
};

using TcpPeer = PeerConn<tcp::socket>;

struct Harness {
    asio::io_context io;
    tcp::acceptor acceptor{io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
    config::MilterSettings settings;
    bool peer_done = false, client_done = false;

    Harness() {
        settings.name = "test-milter";
        settings.address = "inet:127.0.0.1:" + std::to_string(acceptor.local_endpoint().port());
        settings.host = "127.0.0.1";
        settings.port = acceptor.local_endpoint().port();
        settings.command_timeout = 2000ms;
        settings.content_timeout = 2000ms;
        settings.connect_timeout = 2000ms;
    }

    // Runs the peer's script on the next connection and the client's at the same time, to the end of both.
    void run(std::function<asio::awaitable<void>(TcpPeer&)> peer_script,
             std::function<asio::awaitable<void>(MilterClient&)> client_script) {
        auto peer = std::make_shared<std::optional<TcpPeer>>();
        if (peer_script) {
            asio::co_spawn(
                io,
                [&, peer, peer_script]() -> asio::awaitable<void> {
                    tcp::socket s = co_await acceptor.async_accept(asio::use_awaitable);
                    peer->emplace(TcpPeer{std::move(s), {}});
                    co_await peer_script(**peer);
                },
                [&](std::exception_ptr e) {
                    peer_done = true;
                    if (e) {
                        try {
                            std::rethrow_exception(e);
                        } catch (const std::exception& x) {
                            peer_error = x.what();
                        }
                    }
                });
        } else {
            peer_done = true;
        }
        auto client = std::make_shared<MilterClient>(io.get_executor(), settings);
        asio::co_spawn(io, [client, client_script]() { return client_script(*client); },
                       [&](std::exception_ptr e) {
                           client_done = true;
                           if (e) ADD_FAILURE() << "client coroutine threw";
                       });
        io.run_for(15s);
        EXPECT_TRUE(client_done) << "client script did not finish";
        EXPECT_TRUE(peer_done) << "peer script did not finish";
        if (peer && *peer) seen = (*peer)->seen;
    }
    std::string peer_error;
    std::vector<Frame> seen;
};

ConnectionFacts connection_facts() {
    ConnectionFacts c;
    c.client_ip = "192.0.2.7";
    c.client_port = 40000;
    c.client_name = "client.example";
    c.hostname = "mx.ferry.test";
    c.listener = "mx";
    return c;
}

MessageFacts message_facts() {
    MessageFacts m;
    m.queue_id = "Q123";
    m.sender = "alice@example.org";
    m.sender_args = {"SIZE=100"};
    m.recipients = {"bob@ferry.test"};
    return m;
}

SessionFacts session_facts() {
    SessionFacts s;
    s.helo = "client.example";
    return s;
}

std::vector<std::string> notify_never() { return {"NOTIFY=NEVER"}; }

const std::string kMessage =
    "Received: from client.example by mx.ferry.test\r\n\tid Q123\r\n"
    "From: Alice <alice@example.org>\r\n"
    "Subject: hello\r\n  folded\r\n"
    "X-Tab:\tvalue\r\n"
    "\r\n"
    "Body line 1\r\nBody line 2\r\n";

using Action = Decision::Action;

}  // namespace

TEST(MilterClient, NegotiatesThenRunsEveryStageWithPostfixMacros) {
    Harness h;
    std::vector<Decision> decisions;
    ContentVerdict verdict;
    h.run(
        [](TcpPeer& p) -> asio::awaitable<void> {
            co_await p.expect('O');
            co_await p.send(optneg_reply(0x1ff & ~milter::SMFIF_SETSYMLIST, 0));
            const std::string stages = "CHMRTLLLNB";
            for (char stage : stages) {
                co_await p.expect(stage);
                co_await p.send(frame('c'));
            }
            co_await p.expect('E');
            co_await p.send(frame('p') + frame('h', "X-Milter\0yes\0"s) +
                            frame('m', be32(2) + "Received\0\0"s) + frame('e', "<new@example.org>\0"s) +
                            frame('+', "<carol@ferry.test>\0"s) + frame('-', "<bob@ferry.test>\0"s) +
                            frame('b', "new body\n") + frame('c'));
            co_await p.expect('Q');
        },
        [&](MilterClient& c) -> asio::awaitable<void> {
            decisions.push_back(co_await c.connect(connection_facts()));
            decisions.push_back(co_await c.helo(session_facts()));
            MessageFacts m = message_facts();
            decisions.push_back(co_await c.mail(session_facts(), m));
            const std::vector<std::string> rcpt_args = notify_never();
            decisions.push_back(co_await c.rcpt(session_facts(), m, rcpt_args));
            decisions.push_back(co_await c.data(session_facts(), m));
            verdict = co_await c.content(session_facts(), m, kMessage);
            co_await c.quit();
        });
    EXPECT_EQ(h.peer_error, "");
    EXPECT_EQ(commands_of(h.seen), "OCHMRTLLLNBEQ");
    const Frame o = frames_of(h.seen, 'O').at(0);
    EXPECT_EQ(o.data.substr(0, 4), be32(6));
    EXPECT_EQ(o.data.substr(4, 4), be32(0x1ff));   // every SMFIF_* we know
    EXPECT_EQ(frames_of(h.seen, 'C').at(0).data, "client.example\0" "4" "\x9c\x40" "192.0.2.7\0"s);
    EXPECT_EQ(frames_of(h.seen, 'H').at(0).data, "client.example\0"s);
    EXPECT_EQ(frames_of(h.seen, 'M').at(0).data, "<alice@example.org>\0SIZE=100\0"s);
    EXPECT_EQ(frames_of(h.seen, 'R').at(0).data, "<bob@ferry.test>\0NOTIFY=NEVER\0"s);
    // Our own Received: is not shown; the rest one SMFIC_HEADER each, folds as LF, one space after the colon
    // eaten (not a tab).
    const auto headers = frames_of(h.seen, 'L');
    ASSERT_EQ(headers.size(), 3u);
    EXPECT_EQ(headers[0].data, "From\0Alice <alice@example.org>\0"s);
    EXPECT_EQ(headers[1].data, "Subject\0hello\n  folded\0"s);
    EXPECT_EQ(headers[2].data, "X-Tab\0\tvalue\0"s);
    EXPECT_EQ(frames_of(h.seen, 'B').at(0).data, "Body line 1\r\nBody line 2\r\n");
    ASSERT_EQ(decisions.size(), 5u);
    for (const auto& d : decisions) EXPECT_EQ(d.action, Action::proceed) << d.reason;
    EXPECT_EQ(verdict.decision.action, Action::proceed) << verdict.decision.reason;
    ASSERT_EQ(verdict.header_edits.size(), 2u);
    EXPECT_EQ(verdict.header_edits[0].name, "X-Milter");
    EXPECT_EQ(verdict.header_edits[1].kind, HeaderEdit::Kind::change);
    EXPECT_EQ(verdict.header_edits[1].index, 3);   // the milter's 2nd Received: is the 3rd counting ours
    EXPECT_EQ(verdict.new_sender, "new@example.org");
    EXPECT_EQ(verdict.add_recipients, std::vector<std::string>{"carol@ferry.test"});
    EXPECT_EQ(verdict.delete_recipients, std::vector<std::string>{"bob@ferry.test"});
    EXPECT_EQ(verdict.new_body, "new body\r\n");

    // The macros, as Postfix sends them by default.
    TcpPeer view{tcp::socket(h.io), h.seen};
    const Frame* cm = view.macros_for('C');
    ASSERT_TRUE(cm);
    auto connect_macros = macros_of(*cm);
    EXPECT_EQ(connect_macros["j"], "mx.ferry.test");
    EXPECT_EQ(connect_macros["{daemon_name}"], "mx");
    EXPECT_EQ(connect_macros["{client_addr}"], "192.0.2.7");
    EXPECT_EQ(connect_macros["{client_port}"], "40000");
    EXPECT_EQ(connect_macros["{client_name}"], "client.example");
    EXPECT_EQ(connect_macros["_"], "client.example [192.0.2.7]");
    const Frame* mm = view.macros_for('M');
    ASSERT_TRUE(mm);
    EXPECT_EQ(macros_of(*mm)["{mail_addr}"], "alice@example.org");
    EXPECT_EQ(macros_of(*mm)["{mail_host}"], "example.org");
    EXPECT_EQ(macros_of(*mm)["i"], "Q123");
    const Frame* rm = view.macros_for('R');
    ASSERT_TRUE(rm);
    EXPECT_EQ(macros_of(*rm)["{rcpt_addr}"], "bob@ferry.test");
    EXPECT_EQ(macros_of(*rm)["{rcpt_host}"], "ferry.test");
    ASSERT_TRUE(view.macros_for('T'));
    EXPECT_EQ(macros_of(*view.macros_for('T'))["i"], "Q123");
    ASSERT_TRUE(view.macros_for('E'));
    EXPECT_EQ(macros_of(*view.macros_for('E'))["i"], "Q123");
}

TEST(MilterClient, SkippedStagesAreNotSentAndNoReplyStagesAreNotWaitedFor) {
    using namespace milter;
    Harness h;
    std::vector<Decision> decisions;
    ContentVerdict verdict;
    h.run(
        [](TcpPeer& p) -> asio::awaitable<void> {
            co_await p.expect('O');
            co_await p.send(optneg_reply(SMFIF_ADDHDRS, SMFIP_NR_CONN | SMFIP_NOHELO | SMFIP_NR_MAIL | SMFIP_NORCPT |
                                                           SMFIP_NODATA | SMFIP_NR_HDR | SMFIP_NOEOH | SMFIP_NOBODY));
            // No reply to anything until the end of message; the driver must not wait for one.
            co_await p.skip_to('E');
            co_await p.send(frame('h', "X-Seen\0yes\0"s) + frame('a'));
            co_await p.expect('Q');
        },
        [&](MilterClient& c) -> asio::awaitable<void> {
            MessageFacts m = message_facts();
            decisions.push_back(co_await c.connect(connection_facts()));
            decisions.push_back(co_await c.helo(session_facts()));
            decisions.push_back(co_await c.mail(session_facts(), m));
            decisions.push_back(co_await c.rcpt(session_facts(), m, {}));
            decisions.push_back(co_await c.data(session_facts(), m));
            verdict = co_await c.content(session_facts(), m, kMessage);
            co_await c.quit();
        });
    EXPECT_EQ(h.peer_error, "");
    for (const auto& d : decisions) EXPECT_EQ(d.action, Action::proceed) << d.reason;
    EXPECT_EQ(verdict.decision.action, Action::accept);
    ASSERT_EQ(verdict.header_edits.size(), 1u);
    // What went over the wire: no HELO, RCPT, DATA, EOH or BODY frames; the headers without replies.
    std::string commands;
    for (const auto& f : h.seen)
        if (f.command != 'D') commands += f.command;
    EXPECT_EQ(commands, "OCMLLLEQ");
}

TEST(MilterClient, LeadingSpaceKeptWhenAskedAndTlsAndAuthMacros) {
    using namespace milter;
    Harness h;
    ContentVerdict v;
    h.run(
        [](TcpPeer& p) -> asio::awaitable<void> {
            co_await p.expect('O');
            co_await p.send(optneg_reply(0, SMFIP_NOCONNECT | SMFIP_NR_HELO | SMFIP_NR_MAIL | SMFIP_HDR_LEADSPC |
                                                SMFIP_NR_HDR | SMFIP_NR_EOH | SMFIP_NR_BODY));
            co_await p.skip_to('E');
            co_await p.send(frame('c'));
            co_await p.expect('Q');
        },
        [&](MilterClient& c) -> asio::awaitable<void> {
            SessionFacts s = session_facts();
            s.tls_version = "TLSv1.3";
            s.tls_cipher = "TLS_AES_256_GCM_SHA384";
            s.tls_cipher_bits = 256;
            s.auth_user = "alice";
            s.auth_mechanism = "PLAIN";
            co_await c.connect(connection_facts());
            co_await c.helo(s);
            co_await c.mail(s, message_facts());
            v = co_await c.content(s, message_facts(), kMessage);
            co_await c.quit();
        });
    EXPECT_EQ(h.peer_error, "");
    EXPECT_EQ(commands_of(h.seen), "OHMLLLNBEQ");
    EXPECT_EQ(v.decision.action, Action::proceed);
    const auto headers = frames_of(h.seen, 'L');
    ASSERT_EQ(headers.size(), 3u);
    EXPECT_EQ(headers[0].data, "From\0 Alice <alice@example.org>\0"s);
    EXPECT_EQ(headers[1].data, "Subject\0 hello\n  folded\0"s);
    TcpPeer view{tcp::socket(h.io), h.seen};
    ASSERT_TRUE(view.macros_for('C'));   // the skipped connect stage's macros still go out
    ASSERT_TRUE(view.macros_for('H'));
    auto helo = macros_of(*view.macros_for('H'));
    EXPECT_EQ(helo["{tls_version}"], "TLSv1.3");
    EXPECT_EQ(helo["{cipher}"], "TLS_AES_256_GCM_SHA384");
    EXPECT_EQ(helo["{cipher_bits}"], "256");
    auto mail = macros_of(*view.macros_for('M'));
    EXPECT_EQ(mail["{auth_type}"], "PLAIN");
    EXPECT_EQ(mail["{auth_authen}"], "alice");
}

TEST(MilterClient, ProgressRestartsTheWait) {
    Harness h;
    h.settings.command_timeout = 300ms;
    Decision d;
    h.run(
        [](TcpPeer& p) -> asio::awaitable<void> {
            co_await p.expect('O');
            co_await p.send(optneg_reply(0, 0));
            co_await p.expect('C');
            for (int i = 0; i < 4; ++i) {   // 800 ms in all, never 300 ms without a frame
                co_await p.pause(200ms);
                co_await p.send(frame('p'));
            }
            co_await p.send(frame('y', "550 5.7.1 Go away\0"s));
            co_await p.expect('Q');
        },
        [&](MilterClient& c) -> asio::awaitable<void> {
            d = co_await c.connect(connection_facts());
            co_await c.quit();
        });
    EXPECT_EQ(h.peer_error, "");
    EXPECT_EQ(d.action, Action::reject) << d.reason;
    ASSERT_TRUE(d.reply);
    EXPECT_EQ(d.reply->render(), "550 5.7.1 Go away\r\n");
}

TEST(MilterClient, TheMessageHasTheContentTimeoutNotTheCommandTimeout) {
    Harness h;
    h.settings.command_timeout = 100ms;
    h.settings.content_timeout = 3000ms;
    ContentVerdict v;
    h.run(
        [](TcpPeer& p) -> asio::awaitable<void> {
            co_await p.expect('O');
            co_await p.send(optneg_reply(0, milter::SMFIP_NOCONNECT));
            for (char stage : std::string("LLLNB")) {
                co_await p.skip_to(stage);
                co_await p.pause(150ms);   // slower than a command may be
                co_await p.send(frame('c'));
            }
            co_await p.skip_to('E');
            co_await p.pause(300ms);
            co_await p.send(frame('t'));
        },
        [&](MilterClient& c) -> asio::awaitable<void> {
            co_await c.connect(connection_facts());
            v = co_await c.content(session_facts(), message_facts(), kMessage);
        });
    EXPECT_EQ(h.peer_error, "");
    EXPECT_EQ(v.decision.action, Action::tempfail);
    EXPECT_EQ(v.decision.reason.find("timeout"), std::string::npos) << v.decision.reason;   // the milter's own 't'
    EXPECT_NE(v.decision.reason.find("tempfail"), std::string::npos) << v.decision.reason;
}

TEST(MilterClient, RejectAtConnectOrHeloHoldsForTheSession) {
    Harness h;
    Decision helo, mail;
    h.run(
        [](TcpPeer& p) -> asio::awaitable<void> {
            co_await p.expect('O');
            co_await p.send(optneg_reply(0, 0));
            co_await p.expect('C');
            co_await p.send(frame('c'));
            co_await p.expect('H');
            co_await p.send(frame('t'));
            co_await p.expect('Q');
        },
        [&](MilterClient& c) -> asio::awaitable<void> {
            co_await c.connect(connection_facts());
            helo = co_await c.helo(session_facts());
            mail = co_await c.mail(session_facts(), message_facts());   // not sent
            co_await c.quit();
        });
    EXPECT_EQ(helo.action, Action::tempfail);
    EXPECT_FALSE(helo.reply);
    EXPECT_EQ(mail.action, Action::tempfail);
    std::string commands;
    for (const auto& f : h.seen)
        if (f.command != 'D') commands += f.command;
    EXPECT_EQ(commands, "OCHQ");
}

TEST(MilterClient, AcceptAtMailSkipsTheRestOfTheMessageOnly) {
    Harness h;
    Decision rcpt, mail2;
    ContentVerdict v;
    h.run(
        [](TcpPeer& p) -> asio::awaitable<void> {
            co_await p.expect('O');
            co_await p.send(optneg_reply(0, 0));
            co_await p.expect('C');
            co_await p.send(frame('c'));
            co_await p.expect('M');
            co_await p.send(frame('a'));
            // RCPT, DATA and the content are not sent; the next message starts with MAIL.
            co_await p.expect('M');
            co_await p.send(frame('y', "452 4.3.1 Full\0"s));
            co_await p.expect('A');
            co_await p.expect('Q');
        },
        [&](MilterClient& c) -> asio::awaitable<void> {
            MessageFacts m = message_facts();
            co_await c.connect(connection_facts());
            co_await c.mail(session_facts(), m);
            rcpt = co_await c.rcpt(session_facts(), m, {});
            co_await c.data(session_facts(), m);
            v = co_await c.content(session_facts(), m, kMessage);
            mail2 = co_await c.mail(session_facts(), m);
            co_await c.abort();
            co_await c.quit();
        });
    EXPECT_EQ(h.peer_error, "");
    EXPECT_EQ(rcpt.action, Action::proceed);
    EXPECT_EQ(v.decision.action, Action::proceed);
    EXPECT_EQ(mail2.action, Action::tempfail);
    ASSERT_TRUE(mail2.reply);
    EXPECT_EQ(mail2.reply->code, 452);
}

TEST(MilterClient, DiscardAtRcptHoldsForTheMessage) {
    Harness h;
    Decision rcpt;
    ContentVerdict v;
    h.run(
        [](TcpPeer& p) -> asio::awaitable<void> {
            co_await p.expect('O');
            co_await p.send(optneg_reply(0, milter::SMFIP_NOCONNECT));
            co_await p.skip_to('M');
            co_await p.send(frame('c'));
            co_await p.skip_to('R');
            co_await p.send(frame('d'));
            co_await p.expect('Q');   // nothing more about this message
        },
        [&](MilterClient& c) -> asio::awaitable<void> {
            MessageFacts m = message_facts();
            co_await c.connect(connection_facts());
            co_await c.mail(session_facts(), m);
            rcpt = co_await c.rcpt(session_facts(), m, {});
            co_await c.data(session_facts(), m);
            v = co_await c.content(session_facts(), m, kMessage);
            co_await c.quit();
        });
    EXPECT_EQ(h.peer_error, "");
    EXPECT_EQ(commands_of(h.seen), "OMRQ");
    EXPECT_EQ(rcpt.action, Action::discard);
    EXPECT_EQ(v.decision.action, Action::discard);
}

TEST(MilterClient, TimeoutGivesTempfailForTheRestOfTheSession) {
    Harness h;
    h.settings.command_timeout = 200ms;
    Decision first, later;
    std::chrono::steady_clock::duration took{};
    bool active = false;
    h.run(
        [](TcpPeer& p) -> asio::awaitable<void> {
            co_await p.expect('O');
            co_await p.send(optneg_reply(0, 0));
            co_await p.expect('C');
            co_await p.pause(600ms);   // says nothing
        },
        [&](MilterClient& c) -> asio::awaitable<void> {
            const auto start = std::chrono::steady_clock::now();
            first = co_await c.connect(connection_facts());
            took = std::chrono::steady_clock::now() - start;
            later = co_await c.helo(session_facts());
            active = c.active();
            co_await c.quit();
        });
    EXPECT_LT(took, 550ms);
    EXPECT_TRUE(active);   // still asked, and still says 4xx
    EXPECT_EQ(first.action, Action::tempfail);
    EXPECT_NE(first.reason.find("timeout"), std::string::npos) << first.reason;
    EXPECT_EQ(later.action, Action::tempfail);
}

TEST(MilterClient, DefaultActionAcceptTakesTheMilterOutOfTheSession) {
    Harness h;
    h.settings.default_action = config::FilterFailure::accept;
    Decision first, later;
    ContentVerdict v;
    bool active = true;
    h.run(
        [](TcpPeer& p) -> asio::awaitable<void> {
            co_await p.expect('O');
            co_await p.send("\x7f\xff\xff\xff" "c"s);   // an absurd frame length
        },
        [&](MilterClient& c) -> asio::awaitable<void> {
            first = co_await c.connect(connection_facts());
            active = c.active();
            later = co_await c.mail(session_facts(), message_facts());
            v = co_await c.content(session_facts(), message_facts(), kMessage);
            co_await c.quit();
        });
    EXPECT_EQ(first.action, Action::proceed);
    EXPECT_NE(first.reason.find("malformed"), std::string::npos) << first.reason;
    EXPECT_FALSE(active);
    EXPECT_EQ(later.action, Action::proceed);
    EXPECT_EQ(v.decision.action, Action::proceed);
}

TEST(MilterClient, CloseMidMessageIsATempfail) {
    Harness h;
    ContentVerdict v;
    h.run(
        [](TcpPeer& p) -> asio::awaitable<void> {
            co_await p.expect('O');
            co_await p.send(optneg_reply(0, milter::SMFIP_NOHDRS));
            co_await p.expect('C');
            co_await p.send(frame('c'));
            co_await p.expect('N');
            p.socket.close();
        },
        [&](MilterClient& c) -> asio::awaitable<void> {
            co_await c.connect(connection_facts());
            v = co_await c.content(session_facts(), message_facts(), kMessage);
        });
    EXPECT_EQ(v.decision.action, Action::tempfail);
    EXPECT_FALSE(v.decision.reason.empty());
}

TEST(MilterClient, ModificationNotNegotiatedIsAFailure) {
    Harness h;
    ContentVerdict v;
    h.run(
        [](TcpPeer& p) -> asio::awaitable<void> {
            co_await p.expect('O');
            co_await p.send(optneg_reply(milter::SMFIF_ADDHDRS, milter::SMFIP_NOHDRS | milter::SMFIP_NOEOH |
                                                                  milter::SMFIP_NOBODY | milter::SMFIP_NOCONNECT));
            co_await p.expect('E');
            co_await p.send(frame('b', "replaced") + frame('c'));
        },
        [&](MilterClient& c) -> asio::awaitable<void> {
            co_await c.connect(connection_facts());
            v = co_await c.content(session_facts(), message_facts(), kMessage);
        });
    EXPECT_EQ(v.decision.action, Action::tempfail);
    EXPECT_FALSE(v.new_body);
}

TEST(MilterClient, SkipDuringTheBodyStopsTheBody) {
    Harness h;
    ContentVerdict v;
    const std::string big = "Subject: x\r\n\r\n" + std::string(200000, 'a');
    h.run(
        [](TcpPeer& p) -> asio::awaitable<void> {
            co_await p.expect('O');
            co_await p.send(optneg_reply(0, milter::SMFIP_SKIP | milter::SMFIP_NOCONNECT | milter::SMFIP_NOHDRS |
                                                milter::SMFIP_NOEOH));
            co_await p.expect('B');
            co_await p.send(frame('s'));
            co_await p.expect('E');   // no further body chunks
            co_await p.send(frame('y', "554-5.7.1 two\r\n554 5.7.1 lines\0"s));
        },
        [&](MilterClient& c) -> asio::awaitable<void> {
            co_await c.connect(connection_facts());
            v = co_await c.content(session_facts(), message_facts(), big);
        });
    EXPECT_EQ(h.peer_error, "");
    EXPECT_EQ(commands_of(h.seen), "OBE");
    EXPECT_EQ(frames_of(h.seen, 'B').at(0).data.size(), 65535u);
    EXPECT_EQ(v.decision.action, Action::reject);
    ASSERT_TRUE(v.decision.reply);
    EXPECT_EQ(v.decision.reply->render(), "554-5.7.1 two\r\n554 5.7.1 lines\r\n");
}

TEST(MilterClient, SetsymlistChoosesTheMacros) {
    using namespace milter;
    Harness h;
    h.run(
        [](TcpPeer& p) -> asio::awaitable<void> {
            co_await p.expect('O');
            co_await p.send(optneg_reply(SMFIF_SETSYMLIST, SMFIP_NR_MAIL | SMFIP_NOCONNECT,
                                         be32(SMFIM_ENVFROM) + "{mail_addr}\0"s));
            co_await p.skip_to('M');
            co_await p.expect('Q');
        },
        [&](MilterClient& c) -> asio::awaitable<void> {
            co_await c.connect(connection_facts());
            co_await c.mail(session_facts(), message_facts());
            co_await c.quit();
        });
    TcpPeer view{tcp::socket(h.io), h.seen};
    const Frame* mm = view.macros_for('M');
    ASSERT_TRUE(mm);
    EXPECT_EQ(mm->data, "M{mail_addr}\0alice@example.org\0"s);
}

TEST(MilterClient, NobodyListeningIsAFailureOfTheDefaultAction) {
    Harness h;
    h.settings.port = 1;   // nothing listens on 127.0.0.1:1
    h.settings.address = "inet:127.0.0.1:1";
    Decision d;
    h.run(nullptr, [&](MilterClient& c) -> asio::awaitable<void> { d = co_await c.connect(connection_facts()); });
    EXPECT_EQ(d.action, Action::tempfail);
    EXPECT_NE(d.reason.find("connect"), std::string::npos) << d.reason;
}

TEST(MilterClient, TalksOverAUnixSocket) {
    asio::io_context io;
    const auto path = std::filesystem::temp_directory_path() / ("ferry-milter-test-" + std::to_string(::getpid()));
    std::filesystem::remove(path);
    asio::local::stream_protocol::acceptor acceptor(io, asio::local::stream_protocol::endpoint(path.string()));
    config::MilterSettings settings;
    settings.address = "unix:" + path.string();
    settings.unix_socket = true;
    settings.path = path;
    Decision d;
    bool peer_done = false;
    std::string peer_error;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            asio::local::stream_protocol::socket accepted = co_await acceptor.async_accept(asio::use_awaitable);
            PeerConn<asio::local::stream_protocol::socket> p{std::move(accepted), {}};
            co_await p.expect('O');
            co_await p.send(optneg_reply(0, 0));
            co_await p.expect('C');
            co_await p.send(frame('d'));   // discard is not allowed at connect: ignored
            co_await p.expect('Q');
            peer_done = true;
        },
        [&](std::exception_ptr e) {
            if (!e) return;
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& x) {
                peer_error = x.what();
            }
        });
    MilterClient client(io.get_executor(), settings);
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            d = co_await client.connect(connection_facts());
            co_await client.quit();
        },
        asio::detached);
    io.run_for(10s);
    std::filesystem::remove(path);
    EXPECT_TRUE(peer_done) << peer_error;
    EXPECT_EQ(client.name(), settings.address);
    EXPECT_EQ(d.action, Action::proceed) << d.reason;
}
