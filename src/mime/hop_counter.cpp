#include "mime/hop_counter.hpp"

#include "util/ascii.hpp"

namespace ferry::mime {

namespace {

constexpr std::string_view kField = "received:";

}  // namespace

void HopCounter::feed(std::string_view block) {
    for (std::size_t i = 0; i < block.size() && !ended_;) {
        if (at_line_start_) {
            // Collect up to len("received:") octets of the line (they may span blocks), then decide.
            while (i < block.size() && line_start_.size() < kField.size() && block[i] != '\n') {
                line_start_.push_back(block[i]);
                ++i;
            }
            if ((line_start_.empty() || line_start_ == "\r") && i < block.size() && block[i] == '\n') {
                ended_ = true;   // an empty line: the body starts here
                return;
            }
            if (line_start_.size() == kField.size()) {
                if (util::ascii_lower(line_start_) == kField) ++hops_;
            } else if (i == block.size()) {
                return;   // the rest of the line start comes with the next block
            }
            line_start_.clear();
            at_line_start_ = false;
        }
        const auto lf = block.find('\n', i);
        if (lf == std::string_view::npos) return;
        i = lf + 1;
        at_line_start_ = true;
    }
}

}  // namespace ferry::mime
