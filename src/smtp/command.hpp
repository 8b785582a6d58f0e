// SMTP command lines (RFC 5321 4.1) and ESMTP parameters (RFC 5321 4.1.2). Pure parsing, no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "smtp/address.hpp"

namespace ferry::smtp {

enum class Verb { helo, ehlo, mail, rcpt, data, bdat, rset, noop, quit, vrfy, expn, help, starttls, auth, unknown };

struct Command {
    Verb verb = Verb::unknown;
    std::string_view name;       // the verb as sent
    std::string_view argument;   // everything after the verb and its separating space(s)
};

// Splits a command line (without its CRLF) into verb and argument; verbs are case-insensitive.
Command parse_command(std::string_view line);

struct EsmtpParam {
    std::string keyword;   // upper-cased
    std::optional<std::string> value;
};

enum class ArgError { none, syntax, bad_address, address_too_long, bad_parameter };

struct MailArguments {
    Path path;
    std::vector<EsmtpParam> params;
    ArgError error = ArgError::none;
};

// "FROM:<path> [params]" / "TO:<path> [params]". Spaces after the colon are tolerated as Postfix does.
MailArguments parse_mail_arguments(std::string_view argument);
MailArguments parse_rcpt_arguments(std::string_view argument);

struct BdatArguments {
    std::uint64_t size = 0;
    bool last = false;
    bool ok = false;
};
// "<size> [LAST]" (RFC 3030 2).
BdatArguments parse_bdat_arguments(std::string_view argument);

}  // namespace ferry::smtp
