// RFC 5321/6531 paths and mailboxes: parse_path (with and without the null path) and parse_mailbox, with the
// invariants the rest of Ferry relies on: length limits, the utf8 flag, and to_string() being a faithful,
// re-parsable rendering (it goes into replies, Received headers and the spool envelope).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "fuzz_check.hpp"
#include "smtp/address.hpp"

using namespace ferry;

namespace {

bool has_non_ascii(std::string_view s) {
    for (unsigned char c : s)
        if (c >= 0x80) return true;
    return false;
}

void check_mailbox(const smtp::Mailbox& mb) {
    // RFC 5321 4.5.3.1.1: the local part as written is at most 64 octets; unquoted it can only be shorter.
    FUZZ_CHECK(mb.local.size() <= smtp::kMaxLocalPartLength);
    FUZZ_CHECK(mb.domain.size() <= smtp::kMaxDomainLength);
    FUZZ_CHECK(mb.utf8 == (has_non_ascii(mb.local) || has_non_ascii(mb.domain)));
    for (unsigned char c : mb.local) FUZZ_CHECK(c >= 32 && c != 127);   // no control octets, ever
    for (unsigned char c : mb.domain) FUZZ_CHECK(c > 32 && c != 127);
    const std::string text = mb.to_string();
    if (mb.domain.empty()) {
        // Only "<Postmaster>" (any case) comes without a domain.
        FUZZ_CHECK(smtp::ascii_lower(mb.local) == "postmaster");
        return;
    }
    // to_string() round-trips, bare and inside angle brackets.
    const std::optional<smtp::Mailbox> again = smtp::parse_mailbox(text);
    FUZZ_CHECK(again.has_value());
    FUZZ_CHECK(*again == mb);
    // Inside a path only while it fits the 256-octet limit (a bare mailbox may be longer).
    if (text.size() + 2 > smtp::kMaxPathLength) return;
    const smtp::PathParse pp = smtp::parse_path("<" + text + ">", false);
    FUZZ_CHECK(pp.error == smtp::PathError::none);
    FUZZ_CHECK(pp.path.mailbox.has_value());
    FUZZ_CHECK(*pp.path.mailbox == mb);
    FUZZ_CHECK(pp.consumed == text.size() + 2);
}

void check_path(const smtp::PathParse& pp, std::string_view text, bool allow_null) {
    FUZZ_CHECK(pp.consumed <= text.size());
    if (pp.error != smtp::PathError::none) return;
    FUZZ_CHECK(pp.consumed >= 2 && text.front() == '<' && text[pp.consumed - 1] == '>');
    FUZZ_CHECK(pp.consumed <= smtp::kMaxPathLength);
    if (!allow_null) FUZZ_CHECK(pp.path.mailbox.has_value());
    if (!pp.path.mailbox) {
        FUZZ_CHECK(pp.consumed == 2);   // "<>"
        return;
    }
    // The canonical form is never longer than what was written (source routes dropped, quoting minimal).
    if (!pp.path.mailbox->domain.empty()) FUZZ_CHECK(pp.path.mailbox->to_string().size() + 2 <= pp.consumed);
    check_mailbox(*pp.path.mailbox);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text = fuzz::as_text(data, size);

    const smtp::PathParse with_null = smtp::parse_path(text, true);
    const smtp::PathParse without_null = smtp::parse_path(text, false);
    check_path(with_null, text, true);
    check_path(without_null, text, false);
    // Allowing "<>" changes nothing else.
    if (without_null.error == smtp::PathError::none) {
        FUZZ_CHECK(with_null.error == smtp::PathError::none);
        FUZZ_CHECK(with_null.consumed == without_null.consumed);
        FUZZ_CHECK(with_null.path.mailbox == without_null.path.mailbox);
    }

    if (const std::optional<smtp::Mailbox> mb = smtp::parse_mailbox(text)) {
        FUZZ_CHECK(!mb->domain.empty());
        check_mailbox(*mb);
        FUZZ_CHECK(smtp::is_valid_domain(mb->domain) || mb->domain.front() == '[');
    }

    // One grammar: a plain address our files accept is a mailbox the session accepts in a path, written the same,
    // and a dot-string mailbox the session accepts (no quotes, no literal) is one our files accept.
    const bool plain_ok = smtp::address_error(text).empty();
    const smtp::PathParse in_path = smtp::parse_path("<" + std::string(text) + ">", false);
    const bool path_ok = in_path.error == smtp::PathError::none && in_path.consumed == text.size() + 2 &&
                         in_path.path.mailbox && !in_path.path.mailbox->domain.empty();
    if (plain_ok) {
        FUZZ_CHECK(path_ok);
        FUZZ_CHECK(in_path.path.mailbox->to_string() == text);
    }
    if (path_ok && text.find_first_of("\"[<>:,") == std::string_view::npos) FUZZ_CHECK(plain_ok);
    return 0;
}
