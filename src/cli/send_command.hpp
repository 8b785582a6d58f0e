// `ferry send`: compose a message (mime/compose) and submit it to a mail server with SMTP submission (RFC 6409):
// STARTTLS (default) or implicit TLS (RFC 8314), the certificate verified unless --insecure, AUTH with a user
// and a password from a file or $FERRY_PASSWORD. Settings may come from a profile, ~/.config/ferry/send.toml
// (or $XDG_CONFIG_HOME/ferry/send.toml, or --profile FILE):
//
//   server = "mail.example.test:587"
//   tls = "starttls"                  # starttls | implicit | none
//   insecure = false                  # true: do not verify the server's certificate
//   ca_file = "/etc/ssl/my-ca.pem"    # trust these roots instead of the system's
//   user = "alice@example.test"
//   password_file = "~/.config/ferry/password"
//   from = "Alice <alice@example.test>"
//   helo = "laptop.example.test"
//
// The command line wins over the profile (--no-insecure undoes its `insecure`); relative paths in it are relative
// to its folder. Without a port, --server means port 587, 465 with --tls implicit, 25 with --tls none. Exit status: 0 when every recipient was accepted; 1 when the server
// refused the message, a recipient or the login (each refused recipient is listed with the server's reply);
// 75 when it failed for now (connection, 4xx: try again later); 2 for usage errors, unreadable files and
// messages that cannot be composed (a CR or LF in a header value: header injection).
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace ferry::cli {

struct SendOptions {
    std::string from;
    std::vector<std::string> to, cc, bcc;
    std::string subject;
    std::optional<std::string> body;        // --body TEXT
    std::string body_file;                  // --body-file FILE
    std::string html_file;                  // --html FILE
    std::vector<std::string> attach;        // --attach FILE
    std::vector<std::string> headers;       // --header "Name: value"
    std::string server, tls, user, password_file, ca_file, helo, profile;
    bool insecure = false;
    bool verify = false;                    // --no-insecure: verify even when the profile says insecure
    bool dry_run = false;
};

int run_send_command(SendOptions options);

}  // namespace ferry::cli
