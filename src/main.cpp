// ferry: one binary, subcommands per role (DESIGN.md "Public surface").
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <iostream>

#include "cli/check_command.hpp"
#include "cli/dkim_command.hpp"
#include "cli/dns_command.hpp"
#include "cli/logging.hpp"
#include "cli/queue_command.hpp"
#include "cli/send_command.hpp"
#include "cli/sendmail_command.hpp"
#include "cli/user_command.hpp"
#include "config/config.hpp"
#include "mailauth/signing.hpp"
#include "server/descriptor_budget.hpp"
#include "server/server.hpp"

namespace {

// Exit status 2 for configuration errors, as check-config documents.
constexpr int kConfigError = 2;

ferry::config::Config load(const std::string& path) {
    return path.empty() ? ferry::config::default_config() : ferry::config::load_config(path);
}

}  // namespace

int main(int argc, char** argv) {
    // The sendmail interface has its own option syntax (-FName, -oi, -f<>), which CLI11 does not parse: run as
    // `sendmail` (a symlink) or `ferry sendmail`, every argument goes to it.
    const std::string_view program = argc > 0 ? std::string_view(argv[0]) : std::string_view();
    const std::string_view base = program.substr(program.rfind('/') == std::string_view::npos ? 0 : program.rfind('/') + 1);
    if (base == "sendmail") return ferry::cli::run_sendmail_command(std::vector<std::string>(argv + 1, argv + argc));
    if (argc > 1 && std::string_view(argv[1]) == "sendmail")
        return ferry::cli::run_sendmail_command(std::vector<std::string>(argv + 2, argv + argc));

    CLI::App app{"Ferry: a mail transfer agent"};
    app.set_version_flag("--version", "ferry 0.1.0");
    app.require_subcommand(1);

    std::string serve_config;
    auto* serve = app.add_subcommand("serve", "Run the mail server");
    serve->add_option("--config", serve_config, "Configuration file (default: the built-in example configuration)");
    serve->footer(R"(Logs: one line per event on standard error (level from log_level); redirect it or let systemd's
journal take it.
Signals: SIGHUP reloads the configuration file for new sessions (TLS certificate, domains, aliases, accounts,
  limits, DKIM keys; listeners only at the next start); a broken file is refused and the running one kept.
  SIGTERM or SIGINT stops: no new connections; sessions get 421 (a message still arriving is not kept, so its
  client sends it again later); deliveries in progress are cut and recorded as deferred; then exit 0.
Exit status: 0 stopped by a signal; 1 could not start (a port in use, data_dir locked by another ferry serve,
  unusable TLS files, refusing to run as root); 2 the configuration file is invalid.
Root: started as root, Ferry binds its ports, gives data_dir to `user` (e.g. "ferry") and becomes that
  account; without `user` it refuses to run as root unless run_as_root = true. Started as another user it
  runs as that user (ports under 1024 then need CAP_NET_BIND_SERVICE).)");

    std::string check_config;
    auto* check = app.add_subcommand("check-config", "Validate a configuration file and exit");
    check->add_option("--config", check_config, "Configuration file")->required();

    std::string user_action, user_address, user_config;
    auto* user = app.add_subcommand("user", "Manage local accounts (password on stdin)");
    user->add_option("action", user_action, "add | passwd | del | list")
        ->required()
        ->check(CLI::IsMember({"add", "passwd", "del", "list"}));
    user->add_option("address", user_address, "Account address, e.g. alice@example.test");
    user->add_option("--config", user_config, "Configuration file")->required();

    std::string dns_domain, dns_config;
    auto* dns = app.add_subcommand("dns", "Show where mail for a domain would be delivered (MX hosts and addresses)");
    dns->add_option("domain", dns_domain, "Domain, e.g. example.org")->required();
    dns->add_option("--config", dns_config, "Configuration file (its [dns] settings)")->required();

    std::string queue_action, queue_id, queue_config;
    bool queue_json = false;
    auto* queue = app.add_subcommand("queue", "Inspect and manage the mail queue of the running server");
    queue->add_option("action", queue_action,
                      "list | show ID | flush [ID] | delete ID | release ID|ALL (deliver a held, quarantined message; "
                      "flush never does)")
        ->required()
        ->check(CLI::IsMember({"list", "show", "flush", "delete", "release"}));
    queue->add_option("id", queue_id, "Queue id (release: or ALL, every held message)");
    queue->add_flag("--json", queue_json, "list: print JSON");
    queue->add_option("--config", queue_config, "Configuration file (default: the built-in example configuration)");

    ferry::cli::CheckOptions auth_check;
    std::string mail_from;
    auto* check_auth = app.add_subcommand("check", "Run the SPF, DKIM and DMARC checks of mx listeners by hand");
    check_auth->require_subcommand(1);
    for (const char* what : {"spf", "dkim", "message"}) {
        auto* sub = check_auth->add_subcommand(what, what == std::string("spf")     ? "SPF result for an IP, HELO and MAIL FROM"
                                                     : what == std::string("dkim") ? "Verify the DKIM signatures of a message on stdin"
                                                                                   : "The Authentication-Results mx would add to a message on stdin");
        sub->add_option("--config", auth_check.config, "Configuration file (its [dns] and [mailauth] settings)")->required();
        if (what == std::string("dkim")) continue;
        sub->add_option("--ip", auth_check.ip, "The SMTP client's IP address")->required();
        sub->add_option("--helo", auth_check.helo, "The HELO/EHLO name")->required();
        sub->add_option("--mail-from", mail_from, "The MAIL FROM address (\"\" for the null sender)");
    }

    ferry::cli::SendOptions send_options;
    auto* send = app.add_subcommand("send", "Compose a message (with attachments) and submit it to a mail server");
    auto many = [](CLI::Option* o) { o->expected(1)->multi_option_policy(CLI::MultiOptionPolicy::TakeAll); };
    send->add_option("--from", send_options.from, "Sender, \"Name <address>\" or address");
    many(send->add_option("--to", send_options.to, "Recipient (repeatable)"));
    many(send->add_option("--cc", send_options.cc, "Copy recipient (repeatable)"));
    many(send->add_option("--bcc", send_options.bcc, "Blind copy recipient, in no header (repeatable)"));
    send->add_option("--subject", send_options.subject, "Subject (UTF-8)");
    std::string body_text;
    send->add_option("--body", body_text, "Body text (default: stdin)");
    send->add_option("--body-file", send_options.body_file, "Body text from a file");
    send->add_option("--html", send_options.html_file, "HTML version of the body (multipart/alternative)");
    many(send->add_option("--attach", send_options.attach, "Attach a file (repeatable)"));
    many(send->add_option("--header", send_options.headers, "Extra header field \"Name: value\" (repeatable)"));
    send->add_option("--server", send_options.server, "HOST[:PORT] (default localhost; port 587, 465 with --tls implicit, 25 with --tls none)");
    send->add_option("--tls", send_options.tls, "starttls (default) | implicit | none");
    send->add_flag("--insecure", send_options.insecure, "Do not verify the server's certificate");
    send->add_flag("--no-insecure", send_options.verify, "Verify the certificate even if the profile says insecure");
    send->add_option("--ca-file", send_options.ca_file, "Trust the roots in this PEM file instead of the system's");
    send->add_option("--user", send_options.user, "Log in (AUTH) as this user");
    send->add_option("--password-file", send_options.password_file, "File whose first line is the password (else $FERRY_PASSWORD)");
    send->add_option("--helo", send_options.helo, "Name given in EHLO (default: this host's name)");
    send->add_option("--profile", send_options.profile, "Settings file (default ~/.config/ferry/send.toml)");
    send->add_flag("--dry-run", send_options.dry_run, "Print the composed message instead of sending it");

    ferry::cli::KeygenOptions keygen;
    auto* dkim = app.add_subcommand("dkim", "DKIM signing keys");
    dkim->require_subcommand(1);
    auto* dkim_keygen = dkim->add_subcommand("keygen", "Make a signing key and print its DNS record");
    dkim_keygen->add_option("domain", keygen.domain, "Domain the key signs for (d=)")->required();
    dkim_keygen->add_option("selector", keygen.selector, "Selector (s=): the key's DNS record is SELECTOR._domainkey.DOMAIN")->required();
    dkim_keygen->add_option("--algorithm", keygen.algorithm, "rsa (default) or ed25519")->check(CLI::IsMember({"rsa", "ed25519"}));
    dkim_keygen->add_option("--bits", keygen.bits, "RSA key size (default 2048)");
    dkim_keygen->add_option("--output", keygen.output, "Key file (default data_dir/dkim/DOMAIN.SELECTOR.pem)");
    dkim_keygen->add_option("--config", keygen.config, "Configuration file")->required();

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        // --help and --version exit 0; every usage error (a missing or unknown option) is status 2, as the
        // subcommands document, not CLI11's own numbers.
        return app.exit(e) == 0 ? 0 : kConfigError;
    }

    if (*check) {
        try {
            const auto cfg = ferry::config::load_config(check_config);
            ferry::mailauth::SigningKeys::load(cfg.dkim);   // the keys the server would sign with
            if (const auto why = ferry::server::descriptor_limit_error(cfg); !why.empty()) {
                std::cerr << why << "\n";
                return kConfigError;
            }
            std::cout << check_config << ": ok (" << cfg.listeners.size() << " listener(s), "
                      << cfg.local_domains.size() << " local domain(s), " << cfg.dkim.keys.size() << " DKIM key(s))\n";
            return 0;
        } catch (const std::exception& e) {
            std::cerr << e.what() << "\n";
            return kConfigError;
        }
    }
    if (*check_auth) {
        for (const auto* sub : check_auth->get_subcommands()) {
            auth_check.what = sub->get_name();
            if (auth_check.what != "dkim" && sub->count("--mail-from") > 0) auth_check.mail_from = mail_from;
        }
        return ferry::cli::run_check_command(auth_check);
    }
    if (*dkim_keygen) return ferry::cli::run_dkim_keygen(keygen);
    if (*send) {
        if (send->count("--body") > 0) send_options.body = body_text;
        return ferry::cli::run_send_command(std::move(send_options));
    }
    if (*user) return ferry::cli::run_user_command(user_action, user_address, user_config);
    if (*dns) return ferry::cli::run_dns_command(dns_domain, dns_config);
    if (*queue) return ferry::cli::run_queue_command(queue_action, queue_id, queue_json, queue_config);

    ferry::config::Config cfg;
    try {
        cfg = load(serve_config);
    } catch (const ferry::config::ConfigError& e) {
        std::cerr << e.what() << "\n";
        return kConfigError;
    }
    // Sessions past the descriptor limit would wait in the backlog without a greeting: refused like a bad key.
    if (const auto why = ferry::server::descriptor_limit_error(cfg); !why.empty()) {
        std::cerr << why << "\n";
        return kConfigError;
    }
    ferry::cli::setup_logging(cfg.log_level);
    try {
        return ferry::server::serve(std::move(cfg));
    } catch (const std::exception& e) {
        spdlog::critical("cannot start: {}", e.what());
        std::cerr << "ferry: cannot start: " << e.what() << "\n";
        return 1;
    }
}
