// `ferry check spf|dkim|message`: the message authentication checks of mx listeners, run by hand with the `[dns]`
// settings of a configuration file. For operators debugging a domain's records, and how the test suites drive
// the checks.
//
//   ferry check spf --ip IP --helo NAME [--mail-from ADDRESS] --config FILE
//       The SPF result (RFC 7208) of the MAIL FROM identity (--mail-from "" is the null sender: postmaster@NAME),
//       or of the HELO identity when --mail-from is not given. One line: the result word, then in parentheses
//       the domain and why; for fail with an explanation (exp=), that explanation on a second line.
//   ferry check dkim --config FILE < message
//       One line per DKIM-Signature, result word first, then d=, s=, a= and why; "none" for an unsigned message.
//   ferry check message --ip IP --helo NAME --mail-from ADDRESS --config FILE < message
//       The Authentication-Results field mx would add (SPF, DKIM, DMARC), then "disposition: none|quarantine|
//       reject", what mx would do with the message under [mailauth] dmarc_enforce.
//
// A message read from stdin may have LF line ends; they are read as CRLF, as mail on the wire has.
// Exit status: 0 once the check ran (whatever its result); 2 for usage or configuration errors.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace ferry::cli {

struct CheckOptions {
    std::string what;   // spf, dkim, message
    std::string ip, helo;
    std::optional<std::string> mail_from;
    std::filesystem::path config;
};

int run_check_command(const CheckOptions& options);

}  // namespace ferry::cli
