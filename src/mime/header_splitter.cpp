#include "mime/header_splitter.hpp"

namespace ferry::mime {

std::string_view HeaderSplitter::feed(std::string_view piece) {
    if (state_ == State::body) return piece;
    if (state_ == State::too_large) return {};
    // Content that starts with the empty line has an empty header section.
    const std::size_t old = header_.size();
    header_.append(piece);
    std::size_t end = std::string::npos;
    if (header_.starts_with("\r\n")) {
        end = 0;
    } else {
        // The "\r\n\r\n" may straddle the previous piece: search from three octets before it.
        const auto at = header_.find("\r\n\r\n", old < 3 ? 0 : old - 3);
        if (at != std::string::npos) end = at + 2;
    }
    // Without an end yet, more than limit + 3 octets means any end still to come lies past the limit (the
    // test must not depend on where the pieces were cut).
    if (end == std::string::npos ? header_.size() >= limit_ + 4 : end > limit_) {
        state_ = State::too_large;
        header_.clear();
        header_.shrink_to_fit();
        return {};
    }
    if (end == std::string::npos) return {};
    rest_.assign(header_, end + 2);
    header_.resize(end);
    state_ = State::body;
    has_body_ = true;
    return rest_;
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
