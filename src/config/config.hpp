// Validated configuration: what `ferry serve` runs on. Loaded from TOML by load_config().
#pragma once

#include "policy/client_network.hpp"
#include "policy/dnsbl.hpp"
#include "policy/greylist.hpp"
#include "policy/rate_limit.hpp"
#include "util/ascii.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::config {

enum class ListenerRole { mx, submission, submissions };

struct Listener {
    std::string host;           // "127.0.0.1", "::1", "0.0.0.0"
    std::uint16_t port = 0;     // 0 = let the kernel pick (tests)
    ListenerRole role = ListenerRole::mx;
    bool plaintext_auth = false;       // AUTH before TLS too (loopback listeners only)
    bool sender_login_match = true;    // an authenticated user sends only as an address it owns (553 5.7.1)
    // This listener's own session limits (Postfix's per-service process limit), so a flood on one port never
    // locks clients out of another; unset: [limits] connections / connections_per_ip (Config::connections_of).
    std::optional<std::size_t> connections;
    std::optional<std::size_t> connections_per_ip;
};

struct TlsSettings {
    std::filesystem::path certificate;   // PEM, chain allowed; empty with private_key: self-signed
    std::filesystem::path private_key;
    std::string min_version = "1.2";     // "1.2" or "1.3"
    std::string ciphers;                 // OpenSSL cipher list for TLS 1.2; empty: Ferry's default
};

// Every limit has a documented default (docs/configuration.md) and the RFC section it comes from.
struct Limits {
    std::size_t command_line_length = 512;        // RFC 5321 4.5.3.1.4, including CRLF
    std::size_t text_line_length = 1000;          // RFC 5321 4.5.3.1.6, including CRLF
    std::uint64_t message_size = 50ull << 20;     // RFC 1870 SIZE, octets of message content
    std::size_t recipients = 100;                 // RFC 5321 4.5.3.1.8 (at least 100 must be accepted)
    std::size_t connections = 1000;               // concurrent sessions per listener (its default)
    std::size_t connections_per_ip = 50;          // concurrent sessions per client IP per listener (its default)
    std::size_t errors = 10;                      // protocol errors before 421 and disconnect
    std::chrono::milliseconds command_timeout{5 * 60 * 1000};   // RFC 5321 4.5.3.2.7: 5 minutes
    std::chrono::milliseconds data_timeout{10 * 60 * 1000};     // RFC 5321 4.5.3.2.6/7: DATA block 3 min, termination 10 min
    // Message content must keep arriving at this many octets per second on average: each read of N octets
    // extends the DATA/BDAT deadline by N / min_data_rate seconds, never past data_timeout from now (slowloris).
    std::size_t min_data_rate = 500;
};

struct DnsSettings {
    std::optional<std::string> resolver;   // "host:port"; default: system resolvers
    std::chrono::milliseconds timeout{5000};
};

struct OutboundSettings {
    std::uint16_t port = 25;                  // of remote MX hosts (and of relay_host when it names none)
    std::string relay_host;                   // "host" or "host:port"; empty: deliver by MX
    std::string relay_user;                   // AUTH to relay_host (only over TLS); empty: no AUTH
    std::filesystem::path relay_password_file;   // its first line is relay_user's password
    std::string helo_name;                    // empty: `hostname`
    // Local addresses outgoing connections bind to before connecting (Postfix's smtp_bind_address and
    // smtp_bind_address6), so the address remote servers see, and check SPF against, does not depend on the
    // kernel's route choice. IP literals of their family, checked at load; empty: that family goes unbound.
    std::string source_address;               // IPv4
    std::string source_address6;              // IPv6
    // RFC 5321 4.5.3.2 client timeouts: each command's reply (the greeting included) within command_timeout,
    // the reply to the final dot within data_timeout.
    std::chrono::milliseconds connect_timeout{30 * 1000};
    std::chrono::milliseconds command_timeout{5 * 60 * 1000};
    std::chrono::milliseconds data_timeout{10 * 60 * 1000};
    std::size_t max_connections = 100;                  // outbound SMTP connections at once
    std::size_t max_connections_per_destination = 20;   // to one domain (or to relay_host); Postfix's default
};

// How a batch of spool or Maildir files is made durable. `filesystem`: one syncfs(2) per batch step, a single
// journal commit however many files (fastest; also flushes unrelated dirty data on that filesystem).
// `files`: fdatasync each file and fsync each directory touched (for a filesystem shared with busy writers).
enum class SyncMode { filesystem, files };

struct QueueSettings {
    std::chrono::seconds min_retry{5 * 60};
    std::chrono::seconds max_retry{60 * 60};
    std::chrono::seconds lifetime{5 * 24 * 3600};
    std::size_t delivery_workers = 2;    // threads doing local delivery
    // Messages the scheduler keeps in memory at once (Postfix's qmgr_message_active_limit); the rest wait on disk
    // and are taken in as these leave, so the queue can be far larger than memory.
    std::size_t active_limit = 20000;
    SyncMode sync = SyncMode::filesystem;
    // Octets of the spool's filesystem kept free beyond a message's declared SIZE: MAIL is refused with 452 4.3.1
    // below that (Postfix's queue_minfree). Unset: 1.5 times [limits] message_size, as Postfix's smtpd does, so a
    // message sent without SIZE still fits (spool_reserve()).
    std::optional<std::uint64_t> min_free;
};

// Message authentication of mail arriving on mx listeners (RFC 7208 SPF, RFC 6376 DKIM, RFC 7489 DMARC), recorded
// in an Authentication-Results field (RFC 8601).
struct MailauthSettings {
    bool verify = true;          // check and add Authentication-Results on mx listeners
    bool dmarc_enforce = true;   // apply the sender domain's policy: reject -> 550 5.7.1, quarantine -> Junk
    std::string authserv_id;     // the name our results are given under; empty: hostname
    std::filesystem::path public_suffix_list = "/usr/share/publicsuffix/public_suffix_list.dat";   // Debian's publicsuffix
};

// One DKIM signing key: mail whose From: is this domain (or a subdomain of it) is signed with it.
struct DkimKeySettings {
    std::string domain;                  // lower-case d=
    std::string selector;                // s=
    std::filesystem::path private_key;   // PEM; default data_dir/dkim/<domain>.<selector>.pem (ferry dkim keygen)
};

// DKIM signing of mail from authenticated users (RFC 6376).
struct DkimSettings {
    bool sign = true;
    bool relaxed_header = true, relaxed_body = true;   // c=relaxed/relaxed
    std::vector<DkimKeySettings> keys;
};

// Content filters (src/filter/). What a filter that cannot answer (down, slow, garbage) leads to.
enum class FilterFailure {
    tempfail,   // 451 4.7.1: the client tries again later; nothing is lost
    accept,     // the message goes on unfiltered (rspamd: with a header saying it was not scanned)
};

// rspamd over its HTTP protocol (POST /checkv2), at the end of data.
struct RspamdSettings {
    std::string url;                    // "http://127.0.0.1:11333"; "" = off
    std::string host;                   // from url
    std::uint16_t port = 11333;         // from url
    std::chrono::milliseconds timeout{20000};   // per request: connect, send, answer
    FilterFailure on_error = FilterFailure::tempfail;
    bool scan_submission = false;       // authenticated mail too (default: mx listeners only)
    std::size_t max_connections = 32;   // idle keep-alive connections kept for reuse
    std::string spam_flag_header = "X-Spam-Flag";
    std::string score_header = "X-Spam-Score";
    std::string status_header = "X-Spam-Status";
    std::string unscanned_header = "X-Spam-Unscanned";   // on_error = "accept": why the message was not scanned
};

// One milter (Sendmail/Postfix milter protocol version 6), applied in the order listed, on every SMTP listener.
struct MilterSettings {
    std::string name;      // for log lines; default: the address
    std::string address;   // "inet:HOST:PORT" or "unix:PATH", as written
    bool unix_socket = false;
    std::string host;      // inet
    std::uint16_t port = 0;
    std::filesystem::path path;   // unix
    FilterFailure default_action = FilterFailure::tempfail;
    std::chrono::milliseconds connect_timeout{30000};    // Postfix milter_connect_timeout
    std::chrono::milliseconds command_timeout{30000};    // milter_command_timeout
    std::chrono::milliseconds content_timeout{300000};   // milter_content_timeout
};

// Connection and envelope policy (src/policy/, src/server/client_policy): who may talk to the mx listeners.
struct PolicySettings {
    // Clients that skip the DNSBL verdict, greylisting and the client rate limits. Default: loopback (set by the
    // loader, like Postfix's mynetworks for the host itself).
    std::vector<policy::IpNetwork> allow_networks;
    int dnsbl_threshold = 1;          // postscreen's dnsbl_threshold: the summed weights that refuse a client
    bool dnsbl_at_connect = false;    // dnsbl_reject = "connect": refuse in the greeting (default: at RCPT)
    std::chrono::milliseconds pregreet_wait{0};   // 0: no early-talker test
};

// One DNS block list (positive weight) or allow list (negative weight), RFC 5782.
struct DnsblSettings {
    std::string zone;                              // lower-case, no trailing dot
    int weight = 1;
    std::vector<policy::ResponseRange> responses;  // the answers that count (never empty after loading)
};

// RFC 6647 greylisting of mx clients; the table lives in data_dir/greylist.
struct GreylistConfig {
    bool enabled = false;
    std::chrono::milliseconds delay{5 * 60 * 1000};
    std::chrono::milliseconds retry_window{2LL * 24 * 3600 * 1000};
    std::chrono::milliseconds max_age{35LL * 24 * 3600 * 1000};
    std::size_t max_entries = 100000;
    policy::GreylistSettings table() const { return {delay, retry_window, max_age, max_entries}; }
};

// GCRA rate limits (Postfix's anvil limits): per client network, and per authenticated account.
struct RateLimitSettings {
    policy::Rate connections, messages, recipients;   // per client network; disabled by default
    policy::Rate user_messages, user_recipients;      // per authenticated account
    unsigned ipv4_prefix = 32, ipv6_prefix = 64;      // the client network a limit counts
    std::size_t max_clients = 100000;                 // keys kept per limit
};

struct Config {
    std::filesystem::path source;          // the file it was loaded from ("" for the embedded default)
    std::string hostname;                  // default: the machine's host name
    std::filesystem::path data_dir;        // absolute after loading
    std::string user;                      // account to drop to when started as root
    bool run_as_root = false;              // started as root without `user`: refuse unless this is true
    std::string log_level = "info";        // trace, debug, info, warn, error
    std::vector<Listener> listeners;
    std::optional<TlsSettings> tls;
    std::vector<std::string> local_domains;            // lower-case
    std::map<std::string, std::vector<std::string>> aliases;   // key lower-case address -> targets
    Limits limits;
    DnsSettings dns;
    OutboundSettings outbound;
    QueueSettings queue;
    MailauthSettings mailauth;
    DkimSettings dkim;
    RspamdSettings rspamd;
    std::vector<MilterSettings> milters;
    PolicySettings policy;
    std::vector<DnsblSettings> dnsbls;
    GreylistConfig greylist;
    RateLimitSettings rate_limit;

    std::filesystem::path spool_dir() const { return data_dir / "spool"; }
    std::filesystem::path mail_dir() const { return data_dir / "mail"; }
    std::filesystem::path accounts_file() const { return data_dir / "accounts"; }
    std::filesystem::path dkim_dir() const { return data_dir / "dkim"; }
    // A listener's session limits: its own, or the [limits] defaults.
    std::size_t connections_of(const Listener& l) const { return l.connections.value_or(limits.connections); }
    std::size_t connections_per_ip_of(const Listener& l) const {
        return l.connections_per_ip.value_or(limits.connections_per_ip);
    }
    // [queue] min_free, or its default of 1.5 times the message size limit.
    std::uint64_t spool_reserve() const { return queue.min_free.value_or(limits.message_size / 2 * 3); }
    const std::string& authserv_id() const { return mailauth.authserv_id.empty() ? hostname : mailauth.authserv_id; }
};

// A configuration error: every problem found in the file, each one line "FILE:LINE: KEY: WHY" (LINE omitted
// when unknown); `what()` is those lines joined by '\n', in file order.
class ConfigError : public std::runtime_error {
public:
    explicit ConfigError(const std::string& line) : std::runtime_error(line), problems_{line} {}
    explicit ConfigError(std::vector<std::string> lines);
    const std::vector<std::string>& problems() const { return problems_; }

private:
    std::vector<std::string> problems_;
};

// Parses and validates a TOML file. Relative paths resolve against the file's folder.
// Throws ConfigError on unknown keys, wrong types, bad addresses, bad durations/sizes, missing files: all of
// them at once, not only the first.
Config load_config(const std::filesystem::path& file);

// Same, from text already in memory; `origin` names it in errors and anchors relative paths.
Config parse_config(std::string_view toml_text, const std::filesystem::path& origin);

// Every key a file may hold, from the tables the loader reads with, as dotted paths in table order: "hostname",
// "limits", "limits.recipients", "listen[].address", "dkim.key[].domain". [aliases] holds addresses as keys and
// is listed alone.
std::vector<std::string> known_keys();

// Parsers shared with the CLI and tests. Each throws std::invalid_argument with a reason.
std::chrono::milliseconds parse_duration(std::string_view text);   // "250ms", "30s", "5m", "1h", "5d"
std::uint64_t parse_size(std::string_view text);                   // "1000", "64k", "50M", "1G" (KiB units)
policy::Rate parse_rate(std::string_view text);                    // "100/1h", "30/1m"; "" = no limit

// The built-in configuration: examples/ferry.toml, embedded at build time (CMakeLists.txt generates its source).
std::string_view embedded_default_config();

// embedded_default_config() parsed as if it were the file "examples/ferry.toml" under the current directory,
// so from the repository root it behaves exactly like `--config examples/ferry.toml` (data in ./var).
// `source` is left empty to mark it as the built-in default.
Config default_config();

// DKIM's names (RFC 6376 3.5): d= a domain as smtp::domain_error takes it, in ASCII; s= dot-separated labels of
// letters, digits and inner '-', 63 octets at most.
std::string dkim_domain_error(std::string_view domain);
std::string dkim_selector_error(std::string_view selector);

// "host:port" or "[v6]:port", and "host" or "[v6]" unless port_required; an IPv6 address must be bracketed, a
// host name must pass smtp::domain_error. Returns why not, or "" when `out` holds the parts.
struct HostPort {
    std::string host;                     // without brackets
    std::optional<std::uint32_t> port;    // nullopt when absent (0-65535 when given)
};
std::string split_host_port(std::string_view text, bool port_required, bool ip_required, HostPort& out);

// ASCII lower-casing (UTF-8 octets untouched), the form in which domains, aliases and accounts are stored.
using util::ascii_lower;

}  // namespace ferry::config
