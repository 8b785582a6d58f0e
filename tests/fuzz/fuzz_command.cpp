// Command lines as the session sees them: verb/argument split, MAIL/RCPT arguments with ESMTP parameters, BDAT.
#include <cstddef>
#include <cstdint>

#include "fuzz_check.hpp"
#include "smtp/command.hpp"

using namespace ferry;

namespace {

bool is_upper_alnum(unsigned char c) { return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

void check_path_arguments(const smtp::MailArguments& m, bool rcpt) {
    if (m.error != smtp::ArgError::none) return;
    // Session::handle_rcpt dereferences the mailbox of an accepted RCPT: "<>" must never get through.
    if (rcpt) FUZZ_CHECK(m.path.mailbox.has_value());
    if (m.path.mailbox) {
        const smtp::Mailbox& mb = *m.path.mailbox;
        FUZZ_CHECK(mb.local.size() <= smtp::kMaxLocalPartLength);
        FUZZ_CHECK(mb.domain.size() <= smtp::kMaxDomainLength);
        if (mb.domain.empty()) FUZZ_CHECK(smtp::ascii_lower(mb.local) == "postmaster");
    }
    for (const smtp::EsmtpParam& p : m.params) {
        // esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-"), upper-cased by the parser.
        FUZZ_CHECK(!p.keyword.empty());
        FUZZ_CHECK(is_upper_alnum(static_cast<unsigned char>(p.keyword[0])));
        for (unsigned char c : p.keyword) FUZZ_CHECK(is_upper_alnum(c) || c == '-');
        if (p.value) {
            // esmtp-value = 1*(%d33-60 / %d62-126), plus UTF-8 (RFC 6531): never a space, '=' or control octet.
            FUZZ_CHECK(!p.value->empty());
            for (unsigned char c : *p.value) FUZZ_CHECK(c > 32 && c != '=' && c != 127);
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view line = fuzz::as_text(data, size);

    const smtp::Command cmd = smtp::parse_command(line);
    FUZZ_CHECK(fuzz::within(cmd.name, line));
    FUZZ_CHECK(fuzz::within(cmd.argument, line));
    FUZZ_CHECK(cmd.name == line.substr(0, line.find(' ')));
    FUZZ_CHECK(cmd.argument.empty() || (cmd.argument.front() != ' ' && cmd.argument.back() != ' '));

    // The argument as split from the line, and the raw input (reaches prefixes the split would strip).
    for (const std::string_view arg : {cmd.argument, line}) {
        check_path_arguments(smtp::parse_mail_arguments(arg), false);
        check_path_arguments(smtp::parse_rcpt_arguments(arg), true);
        const smtp::BdatArguments b = smtp::parse_bdat_arguments(arg);
        if (b.ok) {
            FUZZ_CHECK(b.size <= 999'999'999'999'999'999ull);   // at most 18 digits
            FUZZ_CHECK(!b.last || arg.size() >= 6);             // "0 LAST"
        }
    }
    return 0;
}
