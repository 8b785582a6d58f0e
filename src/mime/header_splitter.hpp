// Splits message content, as it streams in, into its header section and its body (RFC 5322 2.1: the first empty
// line separates them), holding at most `limit` octets of header. The header section is what the checks read
// (the From: of authenticated mail, DKIM, DMARC) and what Ferry may rewrite (Authentication-Results claiming our
// name are removed) before anything of it is stored. Pure: no I/O. Content lines end in CRLF (bare LF and CR
// are refused by the content decoder before a message is accepted).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ferry::mime {

// The longest header section Ferry accepts (larger ones get 552 5.3.4). RFC 5322 sets no limit; Postfix keeps
// 100 KiB of it (header_size_limit) and Exim refuses over 1 MiB. Honest mail stays far below; a session holds at
// most this much of it in memory.
inline constexpr std::size_t kMaxHeaderSection = 256 * 1024;

class HeaderSplitter {
public:
    enum class State { header, body, too_large };

    explicit HeaderSplitter(std::size_t limit) : limit_(limit) {}

    // The next piece of content. While in `header`, its octets are kept and nothing is returned. The call in
    // which the empty line arrives switches to `body` and returns what follows the empty line (a view into
    // `piece`: nothing of the body is copied); in `body` every piece is returned as it is. A header section longer than `limit` switches
    // to `too_large`: what was kept is dropped and nothing more is returned.
    std::string_view feed(std::string_view piece);

    // The end of the content while still in `header`: everything kept is the header section of a message that
    // has no body (and no empty line). Switches to `body`.
    void finish();

    State state() const { return state_; }
    // The header section: its fields with their line breaks, without the empty line. Complete in `body`.
    const std::string& header() const { return header_; }
    // Whether an empty line ended the header section (false for a message without a body).
    bool has_body() const { return has_body_; }

private:
    std::size_t limit_;
    State state_ = State::header;
    std::string header_;
    bool has_body_ = false;
};

}  // namespace ferry::mime
