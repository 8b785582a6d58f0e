// Counts the Received: fields of a message's header section as the content streams in, block by block, for
// mail loop detection (RFC 5321 6.3). Pure.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ferry::mime {

// More Received: fields than this and the message is in a loop (Postfix's hopcount_limit; RFC 5321 6.3 asks for
// a large threshold, and 50 hops is far beyond any real path).
inline constexpr std::size_t kMaxHops = 50;

class HopCounter {
public:
    // The next block of message content, as the client sent it after dot-unstuffing. Blocks may split lines
    // anywhere. Once the header section has ended, blocks are not looked at.
    void feed(std::string_view block);

    std::size_t hops() const { return hops_; }
    bool header_ended() const { return ended_; }

private:
    std::string line_start_;   // the first octets of the current line, enough to recognise "Received:"
    bool at_line_start_ = true;
    bool ended_ = false;
    std::size_t hops_ = 0;
};

}  // namespace ferry::mime
