// The sendmail command line as programs use it (cron, PHP's mail(), git send-email, mailx): the options Ferry
// honours, the ones it accepts and ignores (delivery modes, error modes: Ferry always queues), and the ones it
// refuses with a clear reason. Pure: arguments in, options out.
//
//   -t            recipients also from the To, Cc and Bcc fields (Bcc is always removed)
//   -i, -oi       a line holding only "." does not end the message (without: it does, as in classic sendmail)
//   -f ADDR, -fADDR, -r ADDR   the envelope sender ("" or "<>": the null sender)
//   -F NAME, -FNAME            the full name for a From: field Ferry adds when the message has none
//   -B TYPE, -bm, -v, -oX..., -N DSN, -R RET, -V ENVID, -U, -G, -X FILE   accepted, no effect
//   --config FILE              Ferry's configuration (default $FERRY_CONFIG, /etc/ferry/ferry.toml)
//   --                         the rest are recipients
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace ferry::cli {

struct SendmailArgs {
    bool extract_recipients = false;
    bool ignore_dots = false;
    std::optional<std::string> sender;   // -f; "" is the null sender
    std::string full_name;               // -F
    std::vector<std::string> recipients;
    std::string config;
    std::string error;                   // a usage error; the rest is then meaningless
};

SendmailArgs parse_sendmail_args(const std::vector<std::string>& args);

}  // namespace ferry::cli
