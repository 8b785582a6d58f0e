// Replies from remote SMTP servers (the outbound client reads them): parse_server_reply on the stream, and
// parse_capabilities on whatever it yields.
#include <cstddef>
#include <cstdint>

#include "fuzz_check.hpp"
#include "smtp/server_reply.hpp"

using namespace ferry;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view input = fuzz::as_text(data, size);
    for (int i = 0; i < 64 && !input.empty(); ++i) {
        const auto p = smtp::parse_server_reply(input);
        if (p.status != smtp::ServerReplyParse::Status::reply) {
            FUZZ_CHECK(p.status == smtp::ServerReplyParse::Status::incomplete || !p.error.empty());
            break;
        }
        FUZZ_CHECK(p.consumed > 0 && p.consumed <= input.size());
        FUZZ_CHECK(p.reply.code >= 200 && p.reply.code <= 599);
        FUZZ_CHECK(!p.reply.lines.empty() && p.reply.lines.size() <= smtp::kMaxServerReplyLines);
        FUZZ_CHECK(p.reply.enhanced.empty() || p.reply.enhanced[0] == static_cast<char>('0' + p.reply.code / 100));
        for (const auto& l : p.reply.lines) FUZZ_CHECK(l.size() <= smtp::kMaxServerReplyLine);
        const auto caps = smtp::parse_capabilities(p.reply);
        FUZZ_CHECK(!caps.size || *caps.size > 0);
        for (const auto& m : caps.auth) FUZZ_CHECK(!m.empty() && m.find(' ') == std::string::npos);
        input.remove_prefix(p.consumed);
    }
    return 0;
}
