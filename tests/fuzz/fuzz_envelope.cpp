// spool::parse_envelope on arbitrary spool-file heads, and the round trip serialize -> parse of what it returns;
// spool::parse_trailer on the input's last bytes, which must print back to exactly what it parsed; and
// spool::parse_addendum on the input as an addendum block, which must print back the same.
#include <cstddef>
#include <cstdint>

#include "fuzz_check.hpp"
#include "spool/addendum.hpp"
#include "spool/envelope.hpp"
#include "spool/trailer.hpp"

using namespace ferry;

namespace {

bool same(const spool::Envelope& a, const spool::Envelope& b) {
    return a.queue_id == b.queue_id && a.arrival == b.arrival && a.client == b.client && a.sender == b.sender &&
           a.recipients == b.recipients && a.smtputf8 == b.smtputf8 && a.body_8bit == b.body_8bit && a.ret == b.ret &&
           a.envid == b.envid && a.recipient_dsn == b.recipient_dsn && a.addendum == b.addendum;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view head = fuzz::as_text(data, size);
    if (head.size() >= spool::kTrailerSize) {
        const std::string_view tail = head.substr(head.size() - spool::kTrailerSize);
        if (const auto trailer = spool::parse_trailer(tail)) FUZZ_CHECK(spool::make_trailer(*trailer) == tail);
    }
    if (const auto addendum = spool::parse_addendum(head)) FUZZ_CHECK(spool::serialize_addendum(*addendum) == head);
    const auto parsed = spool::parse_envelope(head);
    if (!parsed) return 0;
    const spool::Envelope& env = parsed->envelope;
    FUZZ_CHECK(parsed->content_offset <= head.size());
    FUZZ_CHECK(parsed->content_offset >= 2 && head.substr(parsed->content_offset - 2, 2) == "\n\n");
    FUZZ_CHECK(!env.queue_id.empty() && !env.recipients.empty());
    FUZZ_CHECK(env.recipient_dsn.size() == env.recipients.size());

    const std::string text = spool::serialize_envelope(env);
    const auto again = spool::parse_envelope(text + std::string(head.substr(parsed->content_offset)));
    FUZZ_CHECK(again.has_value());
    FUZZ_CHECK(again->content_offset == text.size());
    FUZZ_CHECK(same(again->envelope, env));
    FUZZ_CHECK(spool::serialize_envelope(again->envelope) == text);
    return 0;
}
