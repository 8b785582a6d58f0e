// Microbenchmarks of the hot pure code: the command parser and the DATA content decoder.
// Built on demand (`cmake --build build --target ferry_micro`), run by `make bench`.
#include <benchmark/benchmark.h>

#include <string>

#include "smtp/command.hpp"
#include "smtp/content_decoder.hpp"
#include "smtp/session.hpp"

namespace {

using namespace ferry::smtp;

void BM_ParseCommandMail(benchmark::State& state) {
    const std::string line = "MAIL FROM:<someone.with.a.long.name@sub.example.test> SIZE=1048576 BODY=8BITMIME";
    for (auto _ : state) {
        const Command c = parse_command(line);
        MailArguments m = parse_mail_arguments(c.argument);
        benchmark::DoNotOptimize(m);
    }
}
BENCHMARK(BM_ParseCommandMail);

void BM_ParseCommandRcptQuoted(benchmark::State& state) {
    const std::string line = "RCPT TO:<\"john q. public\"@example.test>";
    for (auto _ : state) {
        const Command c = parse_command(line);
        MailArguments m = parse_rcpt_arguments(c.argument);
        benchmark::DoNotOptimize(m);
    }
}
BENCHMARK(BM_ParseCommandRcptQuoted);

struct AcceptAll : MailPolicy {
    RecipientVerdict check_recipient(const Mailbox&, const std::string&) override { return RecipientVerdict::accept; }
    bool sender_allowed(const Path&, const std::string&) override { return true; }
};

// One whole transaction through the state machine: what a session costs besides I/O.
void BM_SessionTransaction(benchmark::State& state) {
    AcceptAll policy;
    Session session(SessionSettings{"mx.example.test"}, policy);
    session.on_command("EHLO client.example.test");
    for (auto _ : state) {
        benchmark::DoNotOptimize(session.on_command("MAIL FROM:<a@example.test> SIZE=1024"));
        benchmark::DoNotOptimize(session.on_command("RCPT TO:<u@example.test>"));
        benchmark::DoNotOptimize(session.on_command("DATA"));
        benchmark::DoNotOptimize(session.on_data_end(ContentFlaws{}));
        benchmark::DoNotOptimize(session.on_committed("1J0TT776IJT0000"));
    }
}
BENCHMARK(BM_SessionTransaction);

std::string make_body(std::size_t size, bool dots) {
    std::string body;
    const std::string line = std::string(dots ? "." : "") + std::string(76, 'x') + "\r\n";
    while (body.size() < size) body += line;
    return body + ".\r\n";
}

void decode(benchmark::State& state, bool dots) {
    const std::string body = make_body(static_cast<std::size_t>(state.range(0)), dots);
    std::string out;
    out.reserve(body.size());
    for (auto _ : state) {
        ContentDecoder decoder(ContentDecoder::Mode::dot_stuffed, 1000, 50u << 20);
        out.clear();
        benchmark::DoNotOptimize(decoder.feed(body, out));
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(body.size()));
}

void BM_DecodeData(benchmark::State& state) { decode(state, false); }
void BM_DecodeDataDotStuffed(benchmark::State& state) { decode(state, true); }
BENCHMARK(BM_DecodeData)->Arg(1024)->Arg(100 * 1024);
BENCHMARK(BM_DecodeDataDotStuffed)->Arg(100 * 1024);

}  // namespace

BENCHMARK_MAIN();
