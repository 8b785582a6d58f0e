// Message content as it arrives after DATA (dot-stuffed, RFC 5321 4.5.2) or BDAT (raw, RFC 3030).
// Pure: bytes in, decoded bytes out, plus what was wrong with them. No I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ferry::smtp {

struct ContentFlaws {
    bool bare_lf = false;         // LF not preceded by CR (RFC 5321 2.3.8): SMTP smuggling material
    bool bare_cr = false;         // CR not followed by LF
    // A NUL octet: SMTP text carries none without BINARYMIME (RFC 5321 2.3.8, RFC 3030 3), which Ferry does not
    // offer. A next hop that drops NULs before looking for <CRLF>.<CRLF> would see "<CRLF>NUL.<CRLF>" as an end
    // of data: smuggling material, like a bare LF.
    bool nul = false;
    bool line_too_long = false;   // a line over the text line limit (RFC 5321 4.5.3.1.6)
    bool too_big = false;         // more octets than the message size limit (RFC 1870)
    bool any() const { return bare_lf || bare_cr || nul || line_too_long || too_big; }
};

class ContentDecoder {
public:
    enum class Mode { dot_stuffed, raw };

    ContentDecoder(Mode mode, std::size_t max_line_length, std::uint64_t max_size);

    // Decodes `in`, appending message octets to `out` (until the size limit is passed; after that the content
    // is only scanned for its end). Returns how many octets of `in` belong to the content: in dot-stuffed mode
    // it stops right after the terminating <CRLF>.<CRLF>, and what follows is the client's next command.
    std::size_t feed(std::string_view in, std::string& out);

    // Raw mode: the last chunk has arrived; a CR left hanging at its end is a bare CR.
    void finish_raw();

    bool finished() const { return state_ == State::finished; }   // dot-stuffed: end of data seen
    const ContentFlaws& flaws() const { return flaws_; }
    std::uint64_t size() const { return size_; }                  // decoded octets, including discarded ones

private:
    enum class State { line_start, dot, dot_cr, middle, cr, finished };

    void emit(std::string_view bytes, std::string& out);
    void end_line();

    Mode mode_;
    std::size_t max_line_;
    std::uint64_t max_size_;
    State state_ = State::line_start;
    std::size_t line_length_ = 0;
    std::uint64_t size_ = 0;
    ContentFlaws flaws_;
};

// The same rules for a whole message that comes in by another door than SMTP (the pickup directory): what a
// ContentDecoder in raw mode finds wrong with `content`, scanned in pieces without a copy of it.
ContentFlaws content_flaws(std::string_view content, std::size_t max_line_length, std::uint64_t max_size);

// One line for a log or a user naming the first flaw, in the words of the SMTP replies; "" when there is none.
std::string describe_flaws(const ContentFlaws& flaws, std::size_t max_line_length, std::uint64_t max_size);

}  // namespace ferry::smtp
