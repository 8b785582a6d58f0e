// ContentDecoder in both modes. The input is a 9-octet header followed by the content:
//   [0] bit 0: mode (0 dot-stuffed, 1 raw); bits 1-2: extra cuts (the content is fed in 2-4 pieces)
//   [1] text line limit (0 = the real 1000)   [2] size limit / 8 (0 = 50 MiB)   [3..8] three 16-bit cut points
// Checks: feeding in pieces gives the same result as one feed (output, consumed count, flaws, size), and both
// match a straightforward reference decoder written from RFC 5321 4.5.2 / 2.3.8 / 4.5.3.1.6 (NUL included).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_check.hpp"
#include "smtp/content_decoder.hpp"

using namespace ferry;
using Mode = smtp::ContentDecoder::Mode;

namespace {

constexpr std::size_t kHeader = 9;

struct Result {
    std::string out;
    std::size_t consumed = 0;
    smtp::ContentFlaws flaws;
    bool finished = false;
    std::uint64_t size = 0;
};

Result run(Mode mode, std::size_t max_line, std::uint64_t max_size, std::string_view content,
           const std::vector<std::size_t>& cuts) {
    smtp::ContentDecoder decoder(mode, max_line, max_size);
    Result r;
    std::size_t start = 0;
    for (std::size_t i = 0; i <= cuts.size(); ++i) {
        const std::size_t end = i < cuts.size() ? cuts[i] : content.size();
        const std::string_view piece = content.substr(start, end - start);
        const std::size_t n = decoder.feed(piece, r.out);
        FUZZ_CHECK(n <= piece.size());
        r.consumed += n;
        if (n < piece.size()) {   // only the end of data stops a feed early
            FUZZ_CHECK(mode == Mode::dot_stuffed && decoder.finished());
            break;
        }
        start = end;
    }
    if (decoder.finished()) {   // after the end of data nothing more is taken
        const std::string before = r.out;
        FUZZ_CHECK(decoder.feed(content.substr(r.consumed), r.out) == 0);
        FUZZ_CHECK(r.out == before);
    }
    if (mode == Mode::raw) decoder.finish_raw();
    r.flaws = decoder.flaws();
    r.finished = decoder.finished();
    r.size = decoder.size();
    return r;
}

// What the decoder should emit for `taken` (the consumed octets). Every CRLF in the input ends a line.
struct Reference {
    std::string out;   // decoded octets, ignoring the size limit
    bool bare_lf = false;
    bool bare_cr = false;
};

Reference reference(Mode mode, std::string_view taken, bool finished) {
    Reference ref;
    for (std::size_t i = 0; i < taken.size(); ++i) {
        if (taken[i] == '\n' && (i == 0 || taken[i - 1] != '\r')) ref.bare_lf = true;
        if (taken[i] == '\r' && i + 1 < taken.size() && taken[i + 1] != '\n') ref.bare_cr = true;
    }
    const bool trailing_cr = !taken.empty() && taken.back() == '\r';
    if (mode == Mode::raw) {
        // Raw content is kept as is; a CR at the very end waits for an LF that never comes (a bare CR).
        ref.bare_cr = ref.bare_cr || trailing_cr;
        ref.out = std::string(taken.substr(0, taken.size() - (trailing_cr ? 1 : 0)));
        return ref;
    }
    std::string_view rest = taken;
    if (finished) rest.remove_suffix(3);   // the ".\r\n" of the terminating <CRLF>.<CRLF>
    while (!rest.empty()) {
        const std::size_t crlf = rest.find("\r\n");
        std::string_view line = rest.substr(0, crlf);
        rest = crlf == std::string_view::npos ? std::string_view() : rest.substr(crlf + 2);
        const bool complete = crlf != std::string_view::npos;
        // A leading dot is transparency padding and dropped, except before a bare CR (".<CR>x" is content).
        if (!line.empty() && line.front() == '.') {
            if (line.size() >= 2 && line[1] == '\r') {
                if (!complete && line.size() == 2) break;   // ".<CR>" at the end: undecided yet
            } else {
                line.remove_prefix(1);
            }
        }
        if (!complete && !line.empty() && line.back() == '\r') line.remove_suffix(1);   // CR waiting for its LF
        ref.out += line;
        if (complete) ref.out += "\r\n";
    }
    return ref;
}

// Longest line of decoded output, CRLF included (RFC 5321 4.5.3.1.6 counts it).
std::size_t longest_line(std::string_view out) {
    std::size_t longest = 0;
    while (!out.empty()) {
        const std::size_t crlf = out.find("\r\n");
        const std::size_t len = crlf == std::string_view::npos ? out.size() : crlf + 2;
        longest = std::max(longest, len);
        out.remove_prefix(len);
    }
    return longest;
}

bool same_flaws(const smtp::ContentFlaws& a, const smtp::ContentFlaws& b) {
    return a.bare_lf == b.bare_lf && a.bare_cr == b.bare_cr && a.nul == b.nul && a.line_too_long == b.line_too_long &&
           a.too_big == b.too_big;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < kHeader) return 0;
    const Mode mode = (data[0] & 1) ? Mode::raw : Mode::dot_stuffed;
    const std::size_t pieces = 2 + ((data[0] >> 1) & 3) % 3;
    const std::size_t max_line = data[1] == 0 ? 1000 : data[1];
    const std::uint64_t max_size = data[2] == 0 ? (50ull << 20) : data[2] * 8ull;
    const std::string_view content = fuzz::as_text(data + kHeader, size - kHeader);

    std::vector<std::size_t> cuts;
    for (std::size_t i = 0; i + 1 < pieces; ++i)
        cuts.push_back((data[3 + 2 * i] | (data[4 + 2 * i] << 8)) % (content.size() + 1));
    std::sort(cuts.begin(), cuts.end());

    const Result whole = run(mode, max_line, max_size, content, {});
    const Result split = run(mode, max_line, max_size, content, cuts);

    // Pieces or not, the same answer.
    FUZZ_CHECK(split.consumed == whole.consumed);
    FUZZ_CHECK(split.finished == whole.finished);
    FUZZ_CHECK(same_flaws(split.flaws, whole.flaws));
    FUZZ_CHECK(split.size == whole.size);
    // Past the size limit the message is refused and what was stored is not used: storage stops at a feed
    // boundary, so only the limit itself is promised there.
    if (!whole.flaws.too_big) FUZZ_CHECK(split.out == whole.out);

    const std::string_view taken = content.substr(0, whole.consumed);
    if (mode == Mode::raw) {
        FUZZ_CHECK(whole.consumed == content.size());
        FUZZ_CHECK(!whole.finished);
    } else {
        // Only <CRLF>.<CRLF> ends DATA (the CRLF before it may be the one that ended the DATA command).
        const bool at_start = content.substr(0, 3) == ".\r\n";
        const std::size_t crlf_dot = content.find("\r\n.\r\n");
        const std::size_t end = at_start ? 3 : crlf_dot == std::string_view::npos ? content.size() : crlf_dot + 5;
        FUZZ_CHECK(whole.finished == (at_start || crlf_dot != std::string_view::npos));
        FUZZ_CHECK(whole.consumed == end);
        if (whole.finished)
            FUZZ_CHECK(taken == ".\r\n" || (taken.size() >= 5 && taken.substr(taken.size() - 5) == "\r\n.\r\n"));
    }

    const Reference ref = reference(mode, taken, whole.finished);
    FUZZ_CHECK(whole.flaws.bare_lf == ref.bare_lf);
    FUZZ_CHECK(whole.flaws.bare_cr == ref.bare_cr);
    // A NUL anywhere in the content is a flaw (RFC 5321 2.3.8), wherever the size limit cut storage.
    FUZZ_CHECK(whole.flaws.nul == (ref.out.find('\0') != std::string::npos));
    FUZZ_CHECK(whole.size == ref.out.size());
    FUZZ_CHECK(whole.flaws.too_big == (ref.out.size() > max_size));
    FUZZ_CHECK(whole.flaws.line_too_long == (longest_line(ref.out) > max_line));
    for (const Result* r : {&whole, &split}) {
        if (r->flaws.too_big) {
            FUZZ_CHECK(r->out.size() <= max_size);
            FUZZ_CHECK(std::string_view(ref.out).substr(0, r->out.size()) == r->out);
        } else {
            FUZZ_CHECK(r->out == ref.out);
        }
    }
    return 0;
}
