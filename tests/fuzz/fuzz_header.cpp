// mime::header_section, header_field and address_list on arbitrary message starts (the From: check of
// authenticated mail reads these from the client's content).
#include <cstddef>
#include <cstdint>

#include "fuzz_check.hpp"
#include "mime/header.hpp"
#include "mime/header_splitter.hpp"
#include "mime/hop_counter.hpp"

using namespace ferry;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view message = fuzz::as_text(data, size);
    const std::string_view header = mime::header_section(message);
    FUZZ_CHECK(message.substr(0, header.size()) == header);
    for (const char* name : {"From", "Sender", "To"}) {
        const auto value = mime::header_field(header, name);
        if (!value) continue;
        FUZZ_CHECK(value->size() <= header.size());
        FUZZ_CHECK(value->empty() || (value->front() != ' ' && value->back() != ' '));
        if (const auto list = mime::address_list(*value))
            for (const auto& a : *list) FUZZ_CHECK(!a.empty() && a.size() <= value->size());
    }
    if (const auto list = mime::address_list(message))
        for (const auto& a : *list) FUZZ_CHECK(!a.empty());
    // The hop count does not depend on how the content is split into blocks.
    mime::HopCounter whole, split;
    whole.feed(message);
    const std::size_t cut = size ? data[0] % (size + 1) : 0;
    split.feed(message.substr(0, cut));
    split.feed(message.substr(cut));
    FUZZ_CHECK(whole.hops() == split.hops() && whole.header_ended() == split.header_ended());
    FUZZ_CHECK(whole.hops() <= size / 9);

    // The header/body split does not depend on the pieces either, and header + empty line + body is the input.
    constexpr std::size_t kLimit = 512;
    mime::HeaderSplitter one(kLimit), pieces(kLimit);
    std::string body_one(one.feed(message)), body_pieces;
    one.finish();
    const std::size_t step = size > 1 ? 1 + data[1] % 16 : 1;
    for (std::size_t at = 0; at < size; at += step) body_pieces += pieces.feed(message.substr(at, step));
    pieces.finish();
    FUZZ_CHECK(one.state() == pieces.state() && one.header() == pieces.header() && body_one == body_pieces);
    if (one.state() == mime::HeaderSplitter::State::body) {
        FUZZ_CHECK(one.header().size() <= kLimit);
        FUZZ_CHECK(one.header() + (one.has_body() ? "\r\n" : "") + body_one == message);
        for (const auto& f : mime::header_fields(one.header())) FUZZ_CHECK(!f.raw.empty());
    } else {
        FUZZ_CHECK(one.state() == mime::HeaderSplitter::State::too_large && body_one.empty());
    }
    return 0;
}
