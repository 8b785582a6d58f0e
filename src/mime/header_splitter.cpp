#include "mime/header_splitter.hpp"

namespace ferry::mime {

std::string_view HeaderSplitter::feed(std::string_view piece) {
    if (state_ == State::body) return piece;
    if (state_ == State::too_large) return {};
    // Where the header section ends, counted in the content so far (kept octets, then `piece`): the position of
    // the empty line's CRLF. Found without appending the piece first, so a body that arrives in the same piece
    // (a whole message, from pickup or ferry check) is never copied.
    const std::size_t old = header_.size();
    const auto at = [&](std::size_t i) { return i < old ? header_[i] : piece[i - old]; };
    const std::size_t total = old + piece.size();
    std::size_t end = std::string::npos;
    if (total >= 2 && old < 2 && at(0) == '\r' && at(1) == '\n') {
        end = 0;   // content that starts with the empty line has an empty header section
    } else {
        // The "\r\n\r\n" may straddle the kept octets and the piece: try the three starts before the piece.
        for (std::size_t i = old < 3 ? 0 : old - 3; i < old && end == std::string::npos; ++i)
            if (i + 4 <= total && at(i) == '\r' && at(i + 1) == '\n' && at(i + 2) == '\r' && at(i + 3) == '\n')
                end = i + 2;
        if (end == std::string::npos)
            if (const auto in_piece = piece.find("\r\n\r\n"); in_piece != std::string_view::npos)
                end = old + in_piece + 2;
    }
    // Without an end yet, more than limit + 3 octets means any end still to come lies past the limit (the
    // test must not depend on where the pieces were cut).
    if (end == std::string::npos ? total >= limit_ + 4 : end > limit_) {
        state_ = State::too_large;
        header_.clear();
        header_.shrink_to_fit();
        return {};
    }
    if (end == std::string::npos) {
        header_.append(piece);
        return {};
    }
    // The body starts after the empty line, always inside `piece` (an end wholly among the kept octets would
    // have been found by the call that kept them).
    if (end >= old) header_.append(piece.substr(0, end - old));
    else header_.resize(end);
    state_ = State::body;
    has_body_ = true;
    return piece.substr(end + 2 - old);
}

void HeaderSplitter::finish() {
    if (state_ != State::header) return;
    // feed() waits up to limit + 3 octets for an empty line that may still come; at the end there is none.
    if (header_.size() > limit_) {
        state_ = State::too_large;
        header_.clear();
        header_.shrink_to_fit();
        return;
    }
    state_ = State::body;
}

}  // namespace ferry::mime
