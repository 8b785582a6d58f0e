#include "smtp/content_decoder.hpp"

#include <fmt/format.h>

namespace ferry::smtp {

ContentDecoder::ContentDecoder(Mode mode, std::size_t max_line_length, std::uint64_t max_size)
    : mode_(mode), max_line_(max_line_length), max_size_(max_size) {}

void ContentDecoder::emit(std::string_view bytes, std::string& out) {
    if (!flaws_.nul && bytes.find('\0') != std::string_view::npos) flaws_.nul = true;
    size_ += bytes.size();
    line_length_ += bytes.size();
    if (line_length_ > max_line_) flaws_.line_too_long = true;
    if (size_ > max_size_) {
        flaws_.too_big = true;   // keep counting; stop storing
        return;
    }
    out.append(bytes);
}

void ContentDecoder::end_line() {
    // The limit counts the CRLF (RFC 5321 4.5.3.1.6); line_length_ already includes it here.
    if (line_length_ > max_line_) flaws_.line_too_long = true;
    line_length_ = 0;
}

std::size_t ContentDecoder::feed(std::string_view in, std::string& out) {
    const bool stuffed = mode_ == Mode::dot_stuffed;
    std::size_t i = 0;
    while (i < in.size() && state_ != State::finished) {
        const char c = in[i];
        switch (state_) {
        case State::line_start:
            if (stuffed && c == '.') {
                state_ = State::dot;
                ++i;
                continue;
            }
            state_ = State::middle;
            continue;   // same octet, now mid-line
        case State::dot:
            if (c == '\r') {
                state_ = State::dot_cr;
                ++i;
                continue;
            }
            // A leading dot on any other line is transparency padding (RFC 5321 4.5.2): drop it.
            state_ = State::middle;
            continue;
        case State::dot_cr:
            if (c == '\n') {   // <CRLF>.<CRLF>: the only end of data
                state_ = State::finished;
                ++i;
                continue;
            }
            // ".<CR>x": a bare CR on a line holding a dot. Never an end of data.
            flaws_.bare_cr = true;
            emit(".\r", out);
            state_ = State::middle;
            continue;
        case State::middle: {
            // Fast path: copy the run of ordinary octets in one go.
            std::size_t j = i;
            while (j < in.size() && in[j] != '\r' && in[j] != '\n') ++j;
            if (j > i) emit(in.substr(i, j - i), out);
            i = j;
            if (i == in.size()) break;
            if (in[i] == '\r') {
                state_ = State::cr;
            } else {
                flaws_.bare_lf = true;   // a bare LF never starts a line: "\n.\n" is content, not an end
                emit("\n", out);
            }
            ++i;
            continue;
        }
        case State::cr:
            if (c == '\n') {
                emit("\r\n", out);
                end_line();
                state_ = State::line_start;
                ++i;
                continue;
            }
            flaws_.bare_cr = true;   // "\r.\r" and friends: content, never an end
            emit("\r", out);
            state_ = State::middle;
            continue;
        case State::finished:
            break;
        }
    }
    return i;
}

void ContentDecoder::finish_raw() {
    if (state_ == State::cr) flaws_.bare_cr = true;   // the last chunk ended in a lone CR
}

ContentFlaws content_flaws(std::string_view content, std::size_t max_line_length, std::uint64_t max_size) {
    constexpr std::size_t kPiece = 64 * 1024;
    ContentDecoder decoder(ContentDecoder::Mode::raw, max_line_length, max_size);
    std::string piece;   // the decoded octets of one piece, dropped: only the flaws are wanted
    for (std::size_t at = 0; at < content.size(); at += kPiece) {
        piece.clear();
        decoder.feed(content.substr(at, kPiece), piece);
    }
    decoder.finish_raw();
    return decoder.flaws();
}

std::string describe_flaws(const ContentFlaws& flaws, std::size_t max_line_length, std::uint64_t max_size) {
    if (flaws.too_big) return fmt::format("message larger than the limit of {} octets", max_size);
    if (flaws.bare_lf || flaws.bare_cr) return "bare <LF> or <CR> in message content (RFC 5321 2.3.8)";
    if (flaws.nul) return "NUL octet in message content (RFC 5321 2.3.8; BINARYMIME is not offered)";
    if (flaws.line_too_long)
        return fmt::format("message line longer than {} octets (RFC 5321 4.5.3.1.6)", max_line_length);
    return "";
}

}  // namespace ferry::smtp
