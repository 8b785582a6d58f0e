// Frames from a milter (the MTA reads them): the incremental decoder on the stream cut at a point the input
// chooses, every decoded reply mapped to a Decision, and the end-of-message modifications gathered into a
// ContentVerdict. Malformed input must be an error value, never a crash.
#include <cstddef>
#include <cstdint>

#include "filter/milter_codec.hpp"
#include "fuzz_check.hpp"

using namespace ferry;
using namespace ferry::filter::milter;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view input = fuzz::as_text(data, size);
    if (input.empty()) return 0;
    // The first octet picks where the stream is split, so frames cut across reads are covered too.
    const std::size_t cut = static_cast<unsigned char>(input[0]);
    input.remove_prefix(1);
    const std::string_view parts[2] = {input.substr(0, std::min(cut, input.size())),
                                       input.substr(std::min(cut, input.size()))};
    ReplyDecoder decoder;
    VerdictBuilder builder(0x1ff, "Received");
    int replies = 0;
    for (std::string_view part : parts) {
        decoder.feed(part);
        for (;;) {
            Decoded d = decoder.next();
            if (d.status == Decoded::Status::incomplete) break;
            if (d.status == Decoded::Status::error) {
                FUZZ_CHECK(!d.error.empty());
                FUZZ_CHECK(decoder.next().status == Decoded::Status::error);
                return 0;
            }
            ++replies;
            FUZZ_CHECK(replies <= static_cast<int>(size));
            const Reply& r = d.reply;
            if (r.kind == Reply::Kind::replycode) {
                FUZZ_CHECK(r.reply.code >= 400 && r.reply.code <= 599);
                FUZZ_CHECK(!r.reply.enhanced.empty() && r.reply.enhanced[0] == static_cast<char>('0' + r.reply.code / 100));
                FUZZ_CHECK(!r.reply.lines.empty());
            }
            const filter::Decision decision = decision_of(r);
            FUZZ_CHECK(!decision.reason.empty());
            if (is_modification(r.kind) || r.kind == Reply::Kind::quarantine) {
                (void)builder.add(r);
            } else if (is_final(r.kind)) {
                const filter::ContentVerdict v = builder.finish(r);
                if (v.new_body) {
                    for (std::size_t i = 0; i < v.new_body->size(); ++i)
                        if ((*v.new_body)[i] == '\n') FUZZ_CHECK(i > 0 && (*v.new_body)[i - 1] == '\r');
                }
                for (const auto& e : v.header_edits) FUZZ_CHECK(!e.name.empty() && e.index >= 0);
            }
        }
    }
    FUZZ_CHECK(decoder.buffered() <= size);
    return 0;
}
