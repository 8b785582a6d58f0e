// What local users hand to the server and to `ferry sendmail`: spool::parse_pickup on arbitrary pickup files
// (any local user may write one), and cli::prepare_sendmail_message on arbitrary sendmail input and options.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cli/sendmail_message.hpp"
#include "fuzz_check.hpp"
#include "mime/header.hpp"
#include "spool/pickup.hpp"
#include "util/ascii.hpp"

using namespace ferry;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input = fuzz::as_text(data, size);
    if (const auto p = spool::parse_pickup(input)) {
        FUZZ_CHECK(!p->envelope.recipients.empty() && p->message_offset <= input.size());
        // What the server parsed prints back to the head it read.
        FUZZ_CHECK(spool::serialize_pickup(p->envelope) == input.substr(0, p->message_offset));
    }
    spool::is_pickup_name(input.substr(0, 80));

    // The first octet picks the options; the rest is the message.
    const unsigned flags = size ? data[0] : 0;
    std::vector<std::string> args;
    if (flags & 1) args.push_back("-t");
    if (flags & 2) args.push_back("-i");
    if (flags & 4) args.push_back("rcpt@example.test");
    if (flags & 8) args.insert(args.end(), {"-F", "Name \"q\" \\"});
    const auto m = cli::prepare_sendmail_message(size ? input.substr(1) : input, cli::parse_sendmail_args(args),
                                                 "user@host.example.test", 1800000000, "<id@host.example.test>");
    if (!m.error.empty()) return 0;
    FUZZ_CHECK(!m.envelope.recipients.empty());
    // Only CRLF line ends, no Bcc field left, and From/Date/Message-ID present.
    for (std::size_t i = 0; i < m.message.size(); ++i)
        if (m.message[i] == '\n') FUZZ_CHECK(i > 0 && m.message[i - 1] == '\r');
    const std::string_view header = mime::header_section(m.message);
    bool from = false, date = false, id = false;
    for (const auto& f : mime::header_fields(header)) {
        FUZZ_CHECK(!util::ascii_iequals(f.name, "bcc"));
        from = from || util::ascii_iequals(f.name, "from");
        date = date || util::ascii_iequals(f.name, "date");
        id = id || util::ascii_iequals(f.name, "message-id");
    }
    FUZZ_CHECK(from && date && id);
    return 0;
}
