// TOML -> validated Config. Every error names FILE:LINE, the key and why, on one line, so an operator can
// fix the file without reading the code.
#include "config/config.hpp"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <limits>
#include <set>

#include <toml++/toml.h>

#include "util/utf8.hpp"

namespace ferry::config {

namespace fs = std::filesystem;
using util::is_valid_utf8;

namespace {

bool is_loopback(const std::string& host) {
    in_addr v4{};
    in6_addr v6{};
    if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
    return ::inet_pton(AF_INET6, host.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}


// RFC 5321 4.5.3.1.4 and 4.5.3.1.6: an implementation must accept lines at least this long (incl. CRLF).
constexpr std::int64_t kMinCommandLineLength = 512;
constexpr std::int64_t kMinTextLineLength = 1000;
// RFC 5321 4.5.3.1.1 / 4.5.3.1.2.
constexpr std::size_t kMaxLocalPartLength = 64;
constexpr std::size_t kMaxDomainLength = 255;
constexpr std::size_t kMaxLabelLength = 63;
constexpr std::int64_t kMaxDeliveryWorkers = 64;

constexpr std::string_view kEmbeddedDefault = R"toml(# Ferry example configuration.
#
#   build/ferry serve --config examples/ferry.toml
#
# Every key is described in docs/configuration.md. Unknown keys are errors, so a typo
# stops Ferry at start-up with the file, line and key instead of being ignored.
# Relative paths are relative to the folder of this file.

# Name used in the SMTP greeting, the EHLO reply and Received: headers.
# Default: the machine's host name.
hostname = "mx.example.test"

# Spool, mailboxes, the accounts file and a generated TLS key live here.
# This file is in examples/, so "../var" is the var/ folder of the repository.
data_dir = "../var"

# Started as root, Ferry binds its ports, gives data_dir to this account and becomes it
# (scripts/setup creates it). Started as another user, this has no effect. Without it,
# Ferry refuses to run as root unless run_as_root = true.
user = "ferry"

# trace | debug | info | warn | error
log_level = "info"

# One [[listen]] table per socket. role: "mx" (port 25, STARTTLS offered),
# "submission" (587: STARTTLS and AUTH required), "submissions" (465: implicit TLS).
[[listen]]
address = "127.0.0.1:2525"
role = "mx"

# [[listen]]
# address = "[::1]:2587"
# role = "submission"
# plaintext_auth = false       # AUTH before STARTTLS too (loopback addresses only)
# sender_login_match = true    # users send only as their own address or an alias of theirs
# connections = 1000           # this listener's own limits; default: those of [limits]
# connections_per_ip = 50

# Without a [tls] table Ferry generates a self-signed certificate into data_dir.
# [tls]
# certificate = "/etc/ssl/ferry/fullchain.pem"
# private_key = "/etc/ssl/ferry/privkey.pem"
# min_version = "1.2"          # or "1.3"

[domains]
# Mail for these domains is delivered to data_dir/mail/<domain>/<localpart>/ (Maildir).
local = ["example.test"]

[aliases]
# address = [targets]; a target may itself be an alias or a remote address.
"sales@example.test" = ["alice@example.test"]

[limits]
# The values shown are the defaults.
# command_line_length = 512    # octets incl. CRLF; RFC 5321 4.5.3.1.4 minimum is 512
# text_line_length = 1000      # octets incl. CRLF; RFC 5321 4.5.3.1.6 minimum is 1000
# message_size = "50M"         # SIZE (RFC 1870): octets, or "64k", "50M", "1G" (units of 1024)
# recipients = 100             # RCPT TO per message; RFC 5321 4.5.3.1.8 asks for at least 100
# connections = 1000           # concurrent sessions per listener (each counts its own)
# connections_per_ip = 50      # concurrent sessions per client IP address per listener
# errors = 10                  # protocol errors before "421" and disconnect
# command_timeout = "5m"       # a whole command line must arrive within this; RFC 5321 4.5.3.2.7
# data_timeout = "10m"         # the message content must not stall longer than this; RFC 5321 4.5.3.2.6
# min_data_rate = 500          # octets/second the content must average (slow senders are cut)

# [dns]
# resolver = "127.0.0.1:5353"  # default: the system's resolvers (/etc/resolv.conf)
# timeout = "5s"

# [outbound]
# port = 25                    # port of remote MX hosts
# relay_host = "smtp.example.net:587"   # send everything through this host instead of by MX
# relay_user = "me@example.net"         # AUTH to relay_host, only ever over TLS
# relay_password_file = "relay-password"   # its first line is the password
# helo_name = ""               # name given in EHLO; default: hostname
# source_address = "192.0.2.25"     # bind outgoing IPv4 connections to this address (default: the kernel's choice)
# source_address6 = "2001:db8::25"  # the same for IPv6 connections
# connect_timeout = "30s"
# command_timeout = "5m"       # each reply of the remote server; RFC 5321 4.5.3.2
# data_timeout = "10m"         # the reply to the end of the message
# max_connections = 100        # outbound SMTP connections at once
# max_connections_per_destination = 20   # to one domain (or to relay_host)

# [queue]
# min_retry = "5m"             # shortest wait before retrying a temporary failure
# max_retry = "1h"             # longest wait between two attempts
# lifetime = "5d"              # after this long in the queue a message bounces
# delivery_workers = 2
# active_limit = 20000         # messages scheduled in memory at once; the rest wait in the spool
# sync = "filesystem"          # "filesystem": one syncfs per batch; "files": fsync each file and folder
# min_free = "75M"             # spool space kept free beyond MAIL's SIZE, else 452 4.3.1; default 1.5 x message_size

# [mailauth]                   # checks of mail arriving on mx listeners; results in Authentication-Results
# verify = true                # SPF (MAIL FROM and HELO), DKIM and DMARC
# dmarc_enforce = true         # the sender's DMARC policy: reject -> "550 5.7.1", quarantine -> the Junk folder
# authserv_id = "mx.example.test"   # the name results are given under; default: hostname
# public_suffix_list = "/usr/share/publicsuffix/public_suffix_list.dat"   # organizational domains (DMARC)

# [dkim]                       # signing of mail from authenticated users and ferry sendmail whose From: domain has a key
# sign = true
# canonicalization = "relaxed/relaxed"
# [[dkim.key]]                 # `ferry dkim keygen example.test s1 --config FILE` writes the key, prints its DNS record
# domain = "example.test"      # ASCII: an internationalized domain in A-labels (xn--...)
# selector = "s1"
# private_key = "/etc/ferry/example.test.s1.pem"   # default: data_dir/dkim/<domain>.<selector>.pem
)toml";

// ---------------------------------------------------------------------------------------------------------
// Small text helpers

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

using util::is_atext;   // RFC 5322 3.2.3

// A value as it appears in messages: double-quoted, control characters escaped, so the message stays one line.
std::string quote_value(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (u < 0x20 || u == 0x7F) {
            static constexpr char hex[] = "0123456789abcdef";
            out += "\\x";
            out += hex[u >> 4];
            out += hex[u & 0xF];
        } else {
            out += c;
        }
    }
    out += '"';
    return out;
}

std::string one_line(std::string_view s) {
    std::string out;
    for (char c : s) {
        if (c == '\n' || c == '\r') {
            if (!out.empty() && out.back() != ' ') out += ' ';
        } else {
            out += c;
        }
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out;
}

// Parses the leading decimal digits of `text` into `value`; returns the number of digits (0 = none).
// Sets `overflow` when the number does not fit.
std::size_t leading_number(std::string_view text, std::uint64_t& value, bool& overflow) {
    value = 0;
    overflow = false;
    std::size_t i = 0;
    for (; i < text.size() && is_digit(text[i]); ++i) {
        auto d = static_cast<std::uint64_t>(text[i] - '0');
        if (value > (std::numeric_limits<std::uint64_t>::max() - d) / 10) overflow = true;
        else value = value * 10 + d;
    }
    return i;
}

bool parse_port(std::string_view text, std::uint32_t& port) {
    if (text.empty() || text.size() > 5) return false;
    std::uint64_t v;
    bool overflow;
    if (leading_number(text, v, overflow) != text.size() || overflow || v > 65535) return false;
    port = static_cast<std::uint32_t>(v);
    return true;
}

bool is_ip_address(std::string_view host, bool& v6) {
    // inet_pton stops at a NUL: "127.0.0.1\0junk" would pass as an IPv4 address.
    if (host.find('\0') != std::string_view::npos) return false;
    std::string h(host);
    unsigned char buf[16];
    if (inet_pton(AF_INET, h.c_str(), buf) == 1) { v6 = false; return true; }
    if (inet_pton(AF_INET6, h.c_str(), buf) == 1) { v6 = true; return true; }
    return false;
}

// Why `text` is not an address outgoing connections of its family can bind to ("" when it is one).
std::string source_address_error(const std::string& text, bool v6) {
    in_addr a4{};
    in6_addr a6{};
    // inet_pton stops at a NUL: "127.0.0.1\0junk" would pass.
    const bool is_v4 = text.find('\0') == std::string::npos && ::inet_pton(AF_INET, text.c_str(), &a4) == 1;
    const bool is_v6 = text.find('\0') == std::string::npos && ::inet_pton(AF_INET6, text.c_str(), &a6) == 1;
    if (!v6) {
        if (is_v4) return "";
        return is_v6 ? "is an IPv6 address (give it as source_address6)" : "is not an IPv4 address";
    }
    if (is_v6)
        return IN6_IS_ADDR_V4MAPPED(&a6) ? "is an IPv4-mapped address (give the IPv4 address as source_address)" : "";
    return is_v4 ? "is an IPv4 address (give it as source_address)" : "is not an IPv6 address";
}

const char* type_name(toml::node_type t) {
    switch (t) {
        case toml::node_type::none: return "nothing";
        case toml::node_type::table: return "a table";
        case toml::node_type::array: return "an array";
        case toml::node_type::string: return "a string";
        case toml::node_type::integer: return "an integer";
        case toml::node_type::floating_point: return "a floating-point number";
        case toml::node_type::boolean: return "a boolean";
        case toml::node_type::date: return "a date";
        case toml::node_type::time: return "a time";
        case toml::node_type::date_time: return "a date-time";
    }
    return "an unknown type";
}

// A key as written in a dotted path: bare when TOML allows, quoted otherwise.
std::string key_text(std::string_view key) {
    bool bare = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
        return is_alpha(c) || is_digit(c) || c == '_' || c == '-';
    });
    return bare ? std::string(key) : quote_value(key);
}

std::string join_key(const std::string& prefix, std::string_view key) {
    return prefix.empty() ? key_text(key) : prefix + "." + key_text(key);
}

toml::source_index line_of(const toml::key& key, const toml::node& node) {
    return key.source().begin.line ? key.source().begin.line : node.source().begin.line;
}

// A table's entries in file order (toml::table iterates in key order), so errors name the first problem.
std::vector<std::pair<const toml::key*, const toml::node*>> in_file_order(const toml::table& table) {
    std::vector<std::pair<const toml::key*, const toml::node*>> entries;
    for (auto&& [key, node] : table) entries.emplace_back(&key, &node);
    std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
        auto la = line_of(*a.first, *a.second), lb = line_of(*b.first, *b.second);
        if (la != lb) return la < lb;
        return a.first->source().begin.column < b.first->source().begin.column;
    });
    return entries;
}

// The keys each table accepts.
constexpr std::string_view kRootKeys[] = {"hostname", "data_dir", "user",     "run_as_root", "log_level", "listen",
                                          "tls",      "domains",  "limits",   "dns",         "outbound",  "queue",
                                          "aliases",  "mailauth", "dkim"};
constexpr std::string_view kListenKeys[] = {"address",     "role", "plaintext_auth", "sender_login_match",
                                            "connections", "connections_per_ip"};
constexpr std::string_view kTlsKeys[] = {"certificate", "private_key", "min_version", "ciphers"};
constexpr std::string_view kDomainsKeys[] = {"local"};
constexpr std::string_view kLimitsKeys[] = {"command_line_length", "text_line_length", "recipients",
                                            "connections",         "connections_per_ip", "errors",
                                            "message_size",        "command_timeout",    "data_timeout",
                                            "min_data_rate"};
constexpr std::string_view kDnsKeys[] = {"resolver", "timeout"};
constexpr std::string_view kOutboundKeys[] = {"port",          "relay_host",      "relay_user",      "relay_password_file",
                                               "helo_name",     "connect_timeout", "command_timeout", "data_timeout",
                                               "max_connections", "max_connections_per_destination", "source_address",
                                               "source_address6"};
constexpr std::string_view kMailauthKeys[] = {"verify", "dmarc_enforce", "authserv_id", "public_suffix_list"};
constexpr std::string_view kDkimKeys[] = {"sign", "canonicalization", "key"};
constexpr std::string_view kDkimKeyKeys[] = {"domain", "selector", "private_key"};
constexpr std::string_view kQueueKeys[] = {"min_retry", "max_retry", "lifetime", "delivery_workers", "sync", "active_limit",
                                           "min_free"};

// ---------------------------------------------------------------------------------------------------------
// The loader

class Loader {
public:
    Loader(std::string file_name, fs::path base) : file_(std::move(file_name)), base_(std::move(base)) {}

    Config load(std::string_view text);

private:
    [[noreturn]] void fail(toml::source_index line, std::string_view key, std::string_view why) const {
        std::string msg = file_;
        if (line > 0) msg += ":" + std::to_string(line);
        msg += ": ";
        if (!key.empty()) {
            msg += key;
            msg += ": ";
        }
        msg += why;
        throw ConfigError(one_line(msg));
    }
    [[noreturn]] void fail(const toml::node& node, std::string_view key, std::string_view why) const {
        fail(node.source().begin.line, key, why);
    }

    // Every key of `table` must be in `allowed`.
    template <std::size_t N>
    void check_keys(const toml::table& table, const std::string& prefix, const std::string_view (&allowed)[N]) const {
        for (auto [key, node] : in_file_order(table)) {
            if (std::find(std::begin(allowed), std::end(allowed), key->str()) != std::end(allowed)) continue;
            fail(line_of(*key, *node), join_key(prefix, key->str()), "unknown key");
        }
    }

    // Unknown keys first, in every table, so a typo is reported as such and not as what its absence causes.
    void check_all_keys(const toml::table& root) const {
        check_keys(root, "", kRootKeys);
        auto section = [&](std::string_view name, const auto& allowed) {
            if (const toml::node* n = root.get(name); n && n->is_table()) check_keys(*n->as_table(), std::string(name), allowed);
        };
        section("tls", kTlsKeys);
        section("domains", kDomainsKeys);
        section("limits", kLimitsKeys);
        section("dns", kDnsKeys);
        section("outbound", kOutboundKeys);
        section("queue", kQueueKeys);
        section("mailauth", kMailauthKeys);
        section("dkim", kDkimKeys);
        if (const toml::node* d = root.get("dkim"); d && d->is_table())
            if (const toml::node* n = d->as_table()->get("key"); n && n->is_array()) {
                const toml::array& arr = *n->as_array();
                for (std::size_t i = 0; i < arr.size(); ++i)
                    if (arr[i].is_table())
                        check_keys(*arr[i].as_table(), "dkim.key[" + std::to_string(i) + "]", kDkimKeyKeys);
            }
        if (const toml::node* n = root.get("listen"); n && n->is_array()) {
            const toml::array& arr = *n->as_array();
            for (std::size_t i = 0; i < arr.size(); ++i)
                if (arr[i].is_table()) check_keys(*arr[i].as_table(), "listen[" + std::to_string(i) + "]", kListenKeys);
        }
    }

    const toml::table* get_table(const toml::table& parent, const std::string& prefix, std::string_view key) const {
        const toml::node* node = parent.get(key);
        if (!node) return nullptr;
        if (!node->is_table())
            fail(*node, join_key(prefix, key), std::string("expected a table, got ") + type_name(node->type()));
        return node->as_table();
    }

    std::optional<std::string> get_string(const toml::table& t, const std::string& prefix, std::string_view key) const {
        const toml::node* node = t.get(key);
        if (!node) return std::nullopt;
        if (!node->is_string())
            fail(*node, join_key(prefix, key), std::string("expected a string, got ") + type_name(node->type()));
        // TOML allows "\u0000"; paths, user and host names go to C APIs that would stop reading there.
        if (node->as_string()->get().find('\0') != std::string::npos)
            fail(*node, join_key(prefix, key), "contains a NUL character (\\u0000)");
        return node->as_string()->get();
    }

    std::optional<bool> get_bool(const toml::table& t, const std::string& prefix, std::string_view key) const {
        const toml::node* node = t.get(key);
        if (!node) return std::nullopt;
        if (!node->is_boolean())
            fail(*node, join_key(prefix, key), std::string("expected true or false, got ") + type_name(node->type()));
        return node->as_boolean()->get();
    }

    // An integer in [min, max]; `what` describes the range for the message.
    std::optional<std::int64_t> get_integer(const toml::table& t, const std::string& prefix, std::string_view key,
                                            std::int64_t min, std::int64_t max, std::string_view what) const {
        const toml::node* node = t.get(key);
        if (!node) return std::nullopt;
        if (!node->is_integer())
            fail(*node, join_key(prefix, key),
                 "expected " + std::string(what) + ", got " + type_name(node->type()));
        std::int64_t v = node->as_integer()->get();
        if (v < min || v > max)
            fail(*node, join_key(prefix, key), std::to_string(v) + " is out of range (expected " + std::string(what) + ")");
        return v;
    }

    std::optional<std::size_t> get_positive(const toml::table& t, const std::string& prefix, std::string_view key,
                                            std::int64_t min = 1) const {
        std::string what = min == 1 ? "a positive integer" : "an integer of at least " + std::to_string(min);
        const toml::node* node = t.get(key);
        if (!node) return std::nullopt;
        if (!node->is_integer())
            fail(*node, join_key(prefix, key), "expected " + what + ", got " + type_name(node->type()));
        std::int64_t v = node->as_integer()->get();
        if (v < min) {
            std::string why = std::to_string(v) + " is too small (expected " + what;
            if (min > 1) why += ", the minimum of RFC 5321 4.5.3.1";
            fail(*node, join_key(prefix, key), why + ")");
        }
        return static_cast<std::size_t>(v);
    }

    std::optional<std::chrono::milliseconds> get_duration(const toml::table& t, const std::string& prefix,
                                                          std::string_view key) const {
        const toml::node* node = t.get(key);
        if (!node) return std::nullopt;
        if (!node->is_string())
            fail(*node, join_key(prefix, key),
                 std::string("expected a duration string like \"30s\", got ") + type_name(node->type()));
        const std::string& text = node->as_string()->get();
        std::chrono::milliseconds d;
        try {
            d = parse_duration(text);
        } catch (const std::invalid_argument& e) {
            fail(*node, join_key(prefix, key), quote_value(text) + " is not a duration (" + e.what() + ")");
        }
        if (d.count() <= 0) fail(*node, join_key(prefix, key), quote_value(text) + " must be longer than zero");
        return d;
    }

    // A size: octets, or a string such as "64k", "50M", "1G" (parse_size); zero allowed.
    std::optional<std::uint64_t> get_size(const toml::table& t, const std::string& prefix, std::string_view key) const {
        const toml::node* node = t.get(key);
        if (!node) return std::nullopt;
        if (node->is_integer()) {
            const std::int64_t v = node->as_integer()->get();
            if (v < 0) fail(*node, join_key(prefix, key), std::to_string(v) + " is negative (expected a size)");
            return static_cast<std::uint64_t>(v);
        }
        if (!node->is_string())
            fail(*node, join_key(prefix, key),
                 std::string("expected octets or a size string like \"50M\", got ") + type_name(node->type()));
        const std::string& text = node->as_string()->get();
        try {
            return parse_size(text);
        } catch (const std::invalid_argument& e) {
            fail(*node, join_key(prefix, key), quote_value(text) + " is not a size (" + e.what() + ")");
        }
    }

    std::optional<std::chrono::seconds> get_seconds(const toml::table& t, const std::string& prefix,
                                                    std::string_view key) const {
        auto d = get_duration(t, prefix, key);
        if (!d) return std::nullopt;
        if (d->count() % 1000 != 0)
            fail(*t.get(key), join_key(prefix, key),
                 quote_value(t.get(key)->as_string()->get()) + " is not a whole number of seconds");
        return std::chrono::duration_cast<std::chrono::seconds>(*d);
    }

    // Paths in the file are relative to the file's folder.
    fs::path resolve(const std::string& p) const { return clean((base_ / fs::path(p)).lexically_normal()); }

    static fs::path clean(fs::path p) {
        if (!p.has_filename() && p.has_relative_path()) p = p.parent_path();
        return p;
    }

    void read_listeners(const toml::table& root, Config& cfg) const;
    void read_tls(const toml::table& root, Config& cfg) const;
    void read_domains(const toml::table& root, Config& cfg) const;
    void read_limits(const toml::table& root, Config& cfg) const;
    void read_dns(const toml::table& root, Config& cfg) const;
    void read_outbound(const toml::table& root, Config& cfg) const;
    void read_queue(const toml::table& root, Config& cfg) const;
    void read_aliases(const toml::table& root, Config& cfg) const;
    void read_mailauth(const toml::table& root, Config& cfg) const;
    void read_dkim(const toml::table& root, Config& cfg) const;
    std::string read_address(const toml::node& node, const std::string& key) const;

    std::string file_;
    fs::path base_;
};

Config Loader::load(std::string_view text) {
    toml::table root;
    try {
        root = toml::parse(text, file_);
    } catch (const toml::parse_error& e) {
        fail(e.source().begin.line, "", "TOML syntax error: " + std::string(e.description()));
    }

    check_all_keys(root);

    Config cfg;
    if (auto v = get_string(root, "", "hostname")) {
        std::string why = domain_error(*v);
        if (!why.empty()) fail(*root.get("hostname"), "hostname", quote_value(*v) + " is not a host name (" + why + ")");
        cfg.hostname = *v;
    } else {
        char buf[HOST_NAME_MAX + 1] = {};
        if (gethostname(buf, sizeof buf - 1) == 0 && buf[0] != '\0') cfg.hostname = buf;
        else cfg.hostname = "localhost";
    }

    std::string data_dir = "var";
    if (auto v = get_string(root, "", "data_dir")) {
        if (v->empty()) fail(*root.get("data_dir"), "data_dir", "must not be empty");
        data_dir = *v;
    }
    cfg.data_dir = resolve(data_dir);

    if (auto v = get_string(root, "", "user")) {
        if (v->empty()) fail(*root.get("user"), "user", "must not be empty (leave the key out to keep the user)");
        cfg.user = *v;
    }
    if (auto b = get_bool(root, "", "run_as_root")) cfg.run_as_root = *b;

    if (auto v = get_string(root, "", "log_level")) {
        static constexpr std::string_view levels[] = {"trace", "debug", "info", "warn", "error"};
        if (std::find(std::begin(levels), std::end(levels), *v) == std::end(levels))
            fail(*root.get("log_level"), "log_level",
                 quote_value(*v) + " is not a log level (use trace, debug, info, warn or error)");
        cfg.log_level = *v;
    }

    read_listeners(root, cfg);
    read_tls(root, cfg);
    read_domains(root, cfg);
    read_limits(root, cfg);
    read_dns(root, cfg);
    read_outbound(root, cfg);
    read_queue(root, cfg);
    read_aliases(root, cfg);
    read_mailauth(root, cfg);
    read_dkim(root, cfg);
    return cfg;
}

void Loader::read_listeners(const toml::table& root, Config& cfg) const {
    const toml::node* node = root.get("listen");
    if (!node) fail(0, "listen", "at least one [[listen]] table is required");
    if (!node->is_array())
        fail(*node, "listen",
             std::string("expected [[listen]] tables (an array of tables), got ") + type_name(node->type()));
    const toml::array& arr = *node->as_array();
    if (arr.empty()) fail(*node, "listen", "at least one [[listen]] table is required");
    for (std::size_t i = 0; i < arr.size(); ++i)
        if (!arr[i].is_table())
            fail(arr[i], "listen[" + std::to_string(i) + "]",
                 std::string("expected a table, got ") + type_name(arr[i].type()));

    std::set<std::pair<std::string, std::uint16_t>> seen;
    for (std::size_t i = 0; i < arr.size(); ++i) {
        const toml::table& t = *arr[i].as_table();
        std::string prefix = "listen[" + std::to_string(i) + "]";

        Listener l;
        auto address = get_string(t, prefix, "address");
        if (!address) fail(t, prefix + ".address", "missing (e.g. address = \"127.0.0.1:25\")");
        HostPort hp;
        std::string why = split_host_port(*address, true, true, hp);
        if (!why.empty()) fail(*t.get("address"), prefix + ".address", quote_value(*address) + " is not host:port (" + why + ")");
        l.host = hp.host;
        l.port = static_cast<std::uint16_t>(*hp.port);
        if (l.port != 0 && !seen.insert({l.host, l.port}).second)
            fail(*t.get("address"), prefix + ".address", quote_value(*address) + " is already used by another listener");

        if (auto role = get_string(t, prefix, "role")) {
            if (*role == "mx") l.role = ListenerRole::mx;
            else if (*role == "submission") l.role = ListenerRole::submission;
            else if (*role == "submissions") l.role = ListenerRole::submissions;
            else fail(*t.get("role"), prefix + ".role", quote_value(*role) + " is not a role (use mx, submission or submissions)");
        }
        if (auto b = get_bool(t, prefix, "plaintext_auth")) {
            // A password in clear text is acceptable only where nobody else can listen.
            const bool a = is_loopback(l.host);
            if (*b && !a)
                fail(*t.get("plaintext_auth"), prefix + ".plaintext_auth",
                     "allowed only on a loopback address (127.0.0.0/8 or ::1), not " + l.host);
            l.plaintext_auth = *b;
        }
        if (auto b = get_bool(t, prefix, "sender_login_match")) l.sender_login_match = *b;
        l.connections = get_positive(t, prefix, "connections");
        l.connections_per_ip = get_positive(t, prefix, "connections_per_ip");
        cfg.listeners.push_back(std::move(l));
    }
}

void Loader::read_tls(const toml::table& root, Config& cfg) const {
    const toml::table* t = get_table(root, "", "tls");
    if (!t) return;
    TlsSettings tls;
    const bool has_cert = t->contains("certificate"), has_key = t->contains("private_key");
    if (has_cert != has_key)
        fail(*t, std::string("tls.") + (has_cert ? "private_key" : "certificate"),
             "missing (certificate and private_key go together; omit both for a self-signed certificate)");
    for (auto [key, field] : {std::pair{"certificate", &tls.certificate}, std::pair{"private_key", &tls.private_key}}) {
        std::string name = std::string("tls.") + key;
        auto v = get_string(*t, "tls", key);
        if (!v) continue;
        if (v->empty()) fail(*t->get(key), name, "must not be empty");
        fs::path p = resolve(*v);
        int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) fail(*t->get(key), name, "cannot read " + quote_value(p.string()) + ": " + std::strerror(errno));
        struct stat st {};
        bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
        ::close(fd);
        if (!regular) fail(*t->get(key), name, quote_value(p.string()) + " is not a regular file");
        *field = p;
    }
    if (auto v = get_string(*t, "tls", "min_version")) {
        if (*v != "1.2" && *v != "1.3")
            fail(*t->get("min_version"), "tls.min_version", quote_value(*v) + " is not \"1.2\" or \"1.3\"");
        tls.min_version = *v;
    }
    if (auto v = get_string(*t, "tls", "ciphers")) {
        // Checked against this OpenSSL now, so a typo is a configuration error and not a failed start.
        SSL_CTX* probe = SSL_CTX_new(TLS_server_method());
        const bool ok = probe && !v->empty() && SSL_CTX_set_cipher_list(probe, v->c_str()) == 1;
        SSL_CTX_free(probe);
        ERR_clear_error();
        if (!ok) fail(*t->get("ciphers"), "tls.ciphers", quote_value(*v) + " selects no cipher OpenSSL knows");
        tls.ciphers = *v;
    }
    cfg.tls = std::move(tls);
}

void Loader::read_domains(const toml::table& root, Config& cfg) const {
    const toml::table* t = get_table(root, "", "domains");
    if (!t) return;
    const toml::node* node = t->get("local");
    if (!node) return;
    if (!node->is_array())
        fail(*node, "domains.local", std::string("expected an array of domain names, got ") + type_name(node->type()));
    const toml::array& arr = *node->as_array();
    for (std::size_t i = 0; i < arr.size(); ++i) {
        std::string key = "domains.local[" + std::to_string(i) + "]";
        if (!arr[i].is_string())
            fail(arr[i], key, std::string("expected a domain name string, got ") + type_name(arr[i].type()));
        const std::string& d = arr[i].as_string()->get();
        std::string why = domain_error(d);
        if (!why.empty()) fail(arr[i], key, quote_value(d) + " is not a domain name (" + why + ")");
        std::string lower = ascii_lower(d);
        if (std::find(cfg.local_domains.begin(), cfg.local_domains.end(), lower) == cfg.local_domains.end())
            cfg.local_domains.push_back(std::move(lower));
    }
}

void Loader::read_limits(const toml::table& root, Config& cfg) const {
    const toml::table* t = get_table(root, "", "limits");
    if (!t) return;
    const std::string p = "limits";
    Limits& l = cfg.limits;
    if (auto v = get_positive(*t, p, "command_line_length", kMinCommandLineLength)) l.command_line_length = *v;
    if (auto v = get_positive(*t, p, "text_line_length", kMinTextLineLength)) l.text_line_length = *v;
    if (auto v = get_positive(*t, p, "recipients")) l.recipients = *v;
    if (auto v = get_positive(*t, p, "connections")) l.connections = *v;
    if (auto v = get_positive(*t, p, "connections_per_ip")) l.connections_per_ip = *v;
    if (auto v = get_positive(*t, p, "errors")) l.errors = *v;
    if (const toml::node* node = t->get("message_size")) {
        if (node->is_integer()) {
            std::int64_t v = node->as_integer()->get();
            if (v <= 0) fail(*node, "limits.message_size", std::to_string(v) + " is too small (expected a positive size)");
            l.message_size = static_cast<std::uint64_t>(v);
        } else if (node->is_string()) {
            const std::string& text = node->as_string()->get();
            std::uint64_t v;
            try {
                v = parse_size(text);
            } catch (const std::invalid_argument& e) {
                fail(*node, "limits.message_size", quote_value(text) + " is not a size (" + e.what() + ")");
            }
            if (v == 0) fail(*node, "limits.message_size", quote_value(text) + " is too small (expected a positive size)");
            l.message_size = v;
        } else {
            fail(*node, "limits.message_size",
                 std::string("expected octets or a size string like \"50M\", got ") + type_name(node->type()));
        }
    }
    if (auto v = get_duration(*t, p, "command_timeout")) l.command_timeout = *v;
    if (auto v = get_duration(*t, p, "data_timeout")) l.data_timeout = *v;
    if (auto v = get_positive(*t, p, "min_data_rate")) l.min_data_rate = *v;
}

void Loader::read_dns(const toml::table& root, Config& cfg) const {
    const toml::table* t = get_table(root, "", "dns");
    if (!t) return;
    if (auto v = get_string(*t, "dns", "resolver")) {
        HostPort hp;
        std::string why = split_host_port(*v, true, true, hp);
        if (why.empty() && *hp.port == 0) why = "port must be 1-65535";
        if (!why.empty()) fail(*t->get("resolver"), "dns.resolver", quote_value(*v) + " is not host:port (" + why + ")");
        cfg.dns.resolver = *v;
    }
    if (auto v = get_duration(*t, "dns", "timeout")) cfg.dns.timeout = *v;
}

void Loader::read_outbound(const toml::table& root, Config& cfg) const {
    const toml::table* t = get_table(root, "", "outbound");
    if (!t) return;
    if (auto v = get_integer(*t, "outbound", "port", 1, 65535, "a port number 1-65535"))
        cfg.outbound.port = static_cast<std::uint16_t>(*v);
    if (auto v = get_string(*t, "outbound", "relay_host")) {
        if (!v->empty()) {
            HostPort hp;
            std::string why = split_host_port(*v, false, false, hp);
            if (why.empty() && hp.port && *hp.port == 0) why = "port must be 1-65535";
            if (!why.empty())
                fail(*t->get("relay_host"), "outbound.relay_host", quote_value(*v) + " is not host or host:port (" + why + ")");
        }
        cfg.outbound.relay_host = *v;
    }
    OutboundSettings& o = cfg.outbound;
    if (auto v = get_string(*t, "outbound", "relay_user")) o.relay_user = *v;
    if (auto v = get_string(*t, "outbound", "relay_password_file")) {
        o.relay_password_file = resolve(*v);
        std::error_code ec;
        if (!fs::is_regular_file(o.relay_password_file, ec))
            fail(*t->get("relay_password_file"), "outbound.relay_password_file",
                 quote_value(o.relay_password_file.string()) + " is not a readable file");
    }
    if (o.relay_user.empty() != o.relay_password_file.empty())
        fail(*t, o.relay_user.empty() ? "outbound.relay_user" : "outbound.relay_password_file",
             "missing (relay_user and relay_password_file go together)");
    if (!o.relay_user.empty() && o.relay_host.empty())
        fail(*t->get("relay_user"), "outbound.relay_user", "needs relay_host (AUTH is only sent to a relay host)");
    if (auto v = get_string(*t, "outbound", "helo_name")) {
        if (const std::string why = domain_error(*v); !v->empty() && !why.empty())
            fail(*t->get("helo_name"), "outbound.helo_name", quote_value(*v) + " is not a host name (" + why + ")");
        o.helo_name = *v;
    }
    for (const bool v6 : {false, true}) {
        const char* key = v6 ? "source_address6" : "source_address";
        const auto v = get_string(*t, "outbound", key);
        if (!v) continue;
        if (const std::string why = source_address_error(*v, v6); !v->empty() && !why.empty())
            fail(*t->get(key), std::string("outbound.") + key, quote_value(*v) + " " + why);
        (v6 ? o.source_address6 : o.source_address) = *v;
    }
    if (auto v = get_duration(*t, "outbound", "connect_timeout")) o.connect_timeout = *v;
    if (auto v = get_duration(*t, "outbound", "command_timeout")) o.command_timeout = *v;
    if (auto v = get_duration(*t, "outbound", "data_timeout")) o.data_timeout = *v;
    if (auto v = get_positive(*t, "outbound", "max_connections")) o.max_connections = *v;
    if (auto v = get_positive(*t, "outbound", "max_connections_per_destination"))
        o.max_connections_per_destination = *v;
}

void Loader::read_queue(const toml::table& root, Config& cfg) const {
    const toml::table* t = get_table(root, "", "queue");
    if (!t) return;
    QueueSettings& q = cfg.queue;
    if (auto v = get_seconds(*t, "queue", "min_retry")) q.min_retry = *v;
    if (auto v = get_seconds(*t, "queue", "max_retry")) q.max_retry = *v;
    if (auto v = get_seconds(*t, "queue", "lifetime")) q.lifetime = *v;
    if (auto v = get_integer(*t, "queue", "delivery_workers", 1, kMaxDeliveryWorkers, "an integer 1-64"))
        q.delivery_workers = static_cast<std::size_t>(*v);
    if (auto v = get_positive(*t, "queue", "active_limit")) q.active_limit = *v;
    if (auto v = get_size(*t, "queue", "min_free")) q.min_free = *v;
    if (auto v = get_string(*t, "queue", "sync")) {
        if (*v == "filesystem") q.sync = SyncMode::filesystem;
        else if (*v == "files") q.sync = SyncMode::files;
        else fail(*t->get("sync"), "queue.sync", quote_value(*v) + " is not one of \"filesystem\", \"files\"");
    }
    if (q.max_retry < q.min_retry) {
        const toml::node* at = t->get("max_retry") ? t->get("max_retry") : t->get("min_retry");
        fail(*at, t->get("max_retry") ? "queue.max_retry" : "queue.min_retry",
             "max_retry (" + std::to_string(q.max_retry.count()) + "s) is shorter than min_retry (" +
                 std::to_string(q.min_retry.count()) + "s)");
    }
}

void Loader::read_mailauth(const toml::table& root, Config& cfg) const {
    const toml::table* t = get_table(root, "", "mailauth");
    if (!t) return;
    MailauthSettings& m = cfg.mailauth;
    if (auto b = get_bool(*t, "mailauth", "verify")) m.verify = *b;
    if (auto b = get_bool(*t, "mailauth", "dmarc_enforce")) m.dmarc_enforce = *b;
    if (auto v = get_string(*t, "mailauth", "authserv_id")) {
        // RFC 8601 2.5: the authserv-id is the receiving host's name (a token readers compare with their own).
        std::string why = domain_error(*v);
        if (!why.empty())
            fail(*t->get("authserv_id"), "mailauth.authserv_id", quote_value(*v) + " is not a host name (" + why + ")");
        m.authserv_id = ascii_lower(*v);
    }
    if (auto v = get_string(*t, "mailauth", "public_suffix_list")) {
        if (v->empty()) fail(*t->get("public_suffix_list"), "mailauth.public_suffix_list", "must not be empty");
        const fs::path p = resolve(*v);
        if (::access(p.c_str(), R_OK) != 0)
            fail(*t->get("public_suffix_list"), "mailauth.public_suffix_list",
                 "cannot read " + quote_value(p.string()) + ": " + std::strerror(errno));
        m.public_suffix_list = p;
    }
}

// RFC 6376 3.1: a selector is a sub-domain: dot-separated labels of letters, digits and hyphens.
void Loader::read_dkim(const toml::table& root, Config& cfg) const {
    const toml::table* t = get_table(root, "", "dkim");
    if (!t) return;
    DkimSettings& d = cfg.dkim;
    if (auto b = get_bool(*t, "dkim", "sign")) d.sign = *b;
    if (auto v = get_string(*t, "dkim", "canonicalization")) {
        // RFC 6376 3.5 c=: header/body, each simple or relaxed.
        const auto slash = v->find('/');
        const std::string head = v->substr(0, slash), body = slash == std::string::npos ? "" : v->substr(slash + 1);
        auto ok = [](const std::string& x) { return x == "simple" || x == "relaxed"; };
        if (slash == std::string::npos || !ok(head) || !ok(body))
            fail(*t->get("canonicalization"), "dkim.canonicalization",
                 quote_value(*v) + " is not header/body canonicalization (\"relaxed/relaxed\", \"simple/simple\", "
                                   "\"relaxed/simple\" or \"simple/relaxed\")");
        d.relaxed_header = head == "relaxed";
        d.relaxed_body = body == "relaxed";
    }
    const toml::node* node = t->get("key");
    if (!node) return;
    if (!node->is_array_of_tables())
        fail(*node, "dkim.key", std::string("expected [[dkim.key]] tables, got ") + type_name(node->type()));
    const toml::array& arr = *node->as_array();
    for (std::size_t i = 0; i < arr.size(); ++i) {
        const toml::table& k = *arr[i].as_table();
        const std::string prefix = "dkim.key[" + std::to_string(i) + "]";
        DkimKeySettings key;
        const auto domain = get_string(k, prefix, "domain");
        if (!domain) fail(arr[i], prefix + ".domain", "missing (the d= domain this key signs for)");
        if (std::string why = dkim_domain_error(*domain); !why.empty())
            fail(*k.get("domain"), prefix + ".domain", quote_value(*domain) + " is not a domain name (" + why + ")");
        key.domain = ascii_lower(*domain);
        const auto selector = get_string(k, prefix, "selector");
        if (!selector) fail(arr[i], prefix + ".selector", "missing (the s= selector of the key's DNS record)");
        if (std::string why = dkim_selector_error(*selector); !why.empty())
            fail(*k.get("selector"), prefix + ".selector", quote_value(*selector) + " is not a selector (" + why + ")");
        key.selector = ascii_lower(*selector);
        // Read when the server starts (and by check-config), not here: `ferry dkim keygen` loads this file to
        // learn data_dir before the key it writes exists.
        if (auto v = get_string(k, prefix, "private_key")) {
            if (v->empty()) fail(*k.get("private_key"), prefix + ".private_key", "must not be empty");
            key.private_key = resolve(*v);
        } else {
            key.private_key = cfg.dkim_dir() / (key.domain + "." + key.selector + ".pem");
        }
        for (const auto& other : d.keys)
            if (other.domain == key.domain && other.selector == key.selector)
                fail(arr[i], prefix, "a second key for " + key.selector + "._domainkey." + key.domain);
        d.keys.push_back(std::move(key));
    }
}

std::string Loader::read_address(const toml::node& node, const std::string& key) const {
    if (!node.is_string()) fail(node, key, std::string("expected an address string, got ") + type_name(node.type()));
    const std::string& a = node.as_string()->get();
    std::string why = address_error(a);
    if (!why.empty()) fail(node, key, quote_value(a) + " is not an address (" + why + ")");
    // The domain is case-insensitive; the local part is kept as written for remote targets.
    auto at = a.rfind('@');
    return a.substr(0, at + 1) + ascii_lower(std::string_view(a).substr(at + 1));
}

void Loader::read_aliases(const toml::table& root, Config& cfg) const {
    const toml::table* t = get_table(root, "", "aliases");
    if (!t) return;
    std::map<std::string, toml::source_index> first_line;
    for (auto [key_ptr, node_ptr] : in_file_order(*t)) {
        const toml::key& key = *key_ptr;
        const toml::node& node = *node_ptr;
        std::string name = join_key("aliases", key.str());
        auto key_line = line_of(key, node);
        std::string why = address_error(key.str());
        if (!why.empty()) fail(key_line, name, quote_value(key.str()) + " is not an address (" + why + ")");
        std::string lower = ascii_lower(key.str());
        if (auto [it, inserted] = first_line.emplace(lower, key_line); !inserted)
            fail(key_line, name, "duplicate alias (same address as line " + std::to_string(it->second) +
                                     ", addresses are case-insensitive)");

        std::vector<std::string> targets;
        if (node.is_string()) {
            targets.push_back(read_address(node, name));
        } else if (node.is_array()) {
            const toml::array& arr = *node.as_array();
            if (arr.empty()) fail(node, name, "lists no target addresses");
            for (std::size_t i = 0; i < arr.size(); ++i)
                targets.push_back(read_address(arr[i], name + "[" + std::to_string(i) + "]"));
        } else {
            fail(node, name, std::string("expected an array of addresses, got ") + type_name(node.type()));
        }
        cfg.aliases[lower] = std::move(targets);
    }
}

std::string read_file(const fs::path& file) {
    auto cannot = [&](int err) {
        return ConfigError(one_line(file.string() + ": cannot read: " + std::strerror(err)));
    };
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw cannot(errno);
    std::string text;
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            int err = errno;
            ::close(fd);
            throw cannot(err);
        }
        if (n == 0) break;
        text.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return text;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------
// Public functions

std::string split_host_port(std::string_view text, bool port_required, bool ip_required, HostPort& out) {
    std::string_view host, port;
    bool has_port = false;
    bool bracketed = false;
    if (!text.empty() && text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string_view::npos) return "missing ']' after the IPv6 address";
        host = text.substr(1, close - 1);
        bracketed = true;
        auto rest = text.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') return "expected ':' and a port after ']'";
            port = rest.substr(1);
            has_port = true;
        }
    } else {
        auto colon = text.rfind(':');
        if (colon != std::string_view::npos) {
            host = text.substr(0, colon);
            port = text.substr(colon + 1);
            has_port = true;
            if (host.find(':') != std::string_view::npos)
                return "write IPv6 addresses in brackets, like [::1]:25";
        } else {
            host = text;
        }
    }
    if (host.empty()) return "the host is empty";
    if (port_required && !has_port) return "the port is missing";
    if (has_port) {
        std::uint32_t p;
        if (!parse_port(port, p)) return "port must be 0-65535";
        out.port = p;
    }
    bool v6 = false;
    bool ip = is_ip_address(host, v6);
    if (bracketed && !(ip && v6)) return "not an IPv6 address inside the brackets";
    if (ip_required && !ip) return "the host must be an IP address";
    if (!ip && !domain_error(host).empty()) return "not a valid host name";
    out.host = std::string(host);
    return {};
}

std::string dkim_domain_error(std::string_view domain) {
    if (std::string why = domain_error(domain); !why.empty()) return why;
    // d= is an ASCII domain-name (RFC 6376 3.5; RFC 8616 3.2: A-labels), and verifiers look the key up by it.
    if (!util::is_ascii(domain)) return "write it in A-labels (xn--...), as DKIM signatures carry it";
    return "";
}

std::string dkim_selector_error(std::string_view s) {
    if (s.empty()) return "empty";
    if (s.size() > 63) return "longer than 63 octets";
    std::size_t label = 0;
    for (std::size_t i = 0; i <= s.size(); ++i) {
        if (i == s.size() || s[i] == '.') {
            if (label == 0) return "empty label";
            if (s[i - 1] == '-' || s[i - label] == '-') return "a label starts or ends with '-'";
            label = 0;
            continue;
        }
        if (!is_alpha(s[i]) && !is_digit(s[i]) && s[i] != '-') return "only letters, digits, '-' and '.' are allowed";
        ++label;
    }
    return "";
}

std::string domain_error(std::string_view domain) {
    if (domain.empty()) return "empty domain";
    if (domain.size() > kMaxDomainLength) return "longer than 255 octets";
    if (!is_valid_utf8(domain)) return "not valid UTF-8";
    std::size_t start = 0;
    while (start <= domain.size()) {
        auto dot = domain.find('.', start);
        auto label = domain.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
        if (label.empty()) return "empty label";
        if (label.size() > kMaxLabelLength) return "label longer than 63 octets";
        if (label.front() == '-' || label.back() == '-') return "label starts or ends with '-'";
        for (char c : label) {
            if (static_cast<unsigned char>(c) >= 0x80 || is_alpha(c) || is_digit(c) || c == '-') continue;
            return "invalid character " + quote_value(std::string_view(&c, 1));
        }
        if (dot == std::string_view::npos) break;
        start = dot + 1;
    }
    return {};
}

std::string address_error(std::string_view address) {
    auto at = address.rfind('@');
    if (at == std::string_view::npos) return "expected localpart@domain";
    auto local = address.substr(0, at);
    auto domain = address.substr(at + 1);
    if (local.empty()) return "empty local part";
    if (local.size() > kMaxLocalPartLength) return "local part longer than 64 octets";
    if (!is_valid_utf8(local)) return "local part is not valid UTF-8";
    for (char c : local) {
        auto u = static_cast<unsigned char>(c);
        if (u >= 0x80 || c == '.' || is_atext(c)) continue;
        if (u < 0x20 || u == 0x7F) return "control character in the local part";
        if (c == ' ') return "space in the local part";
        return "invalid character " + quote_value(std::string_view(&c, 1)) + " in the local part";
    }
    if (domain.empty()) return "empty domain";
    std::string why = domain_error(domain);
    if (!why.empty()) return "domain: " + why;
    return {};
}

std::chrono::milliseconds parse_duration(std::string_view text) {
    if (text.empty()) throw std::invalid_argument("empty; use e.g. \"30s\"");
    std::uint64_t n;
    bool overflow;
    std::size_t digits = leading_number(text, n, overflow);
    if (digits == 0) throw std::invalid_argument("must start with a number, e.g. \"30s\"");
    auto unit = text.substr(digits);
    std::uint64_t scale;
    if (unit == "ms") scale = 1;
    else if (unit == "s") scale = 1000;
    else if (unit == "m") scale = 60'000;
    else if (unit == "h") scale = 3'600'000;
    else if (unit == "d") scale = 86'400'000;
    else if (unit.empty()) throw std::invalid_argument("missing unit: ms, s, m, h or d");
    else throw std::invalid_argument("unknown unit " + quote_value(unit) + ": use ms, s, m, h or d");
    constexpr auto max = static_cast<std::uint64_t>(std::numeric_limits<std::chrono::milliseconds::rep>::max());
    if (overflow || n > max / scale) throw std::invalid_argument("too large");
    return std::chrono::milliseconds(static_cast<std::chrono::milliseconds::rep>(n * scale));
}

std::uint64_t parse_size(std::string_view text) {
    if (text.empty()) throw std::invalid_argument("empty; use e.g. \"50M\"");
    std::uint64_t n;
    bool overflow;
    std::size_t digits = leading_number(text, n, overflow);
    if (digits == 0) throw std::invalid_argument("must start with a number, e.g. \"50M\"");
    std::string unit = ascii_lower(text.substr(digits));
    int shift;
    if (unit.empty() || unit == "b") shift = 0;
    else if (unit == "k" || unit == "kb" || unit == "kib") shift = 10;
    else if (unit == "m" || unit == "mb" || unit == "mib") shift = 20;
    else if (unit == "g" || unit == "gb" || unit == "gib") shift = 30;
    else if (unit == "t" || unit == "tb" || unit == "tib") shift = 40;
    else
        throw std::invalid_argument("unknown unit " + quote_value(text.substr(digits)) + ": use k, M, G (or KiB, MiB, GiB)");
    if (overflow || n > (std::numeric_limits<std::uint64_t>::max() >> shift)) throw std::invalid_argument("too large");
    return n << shift;
}

Config parse_config(std::string_view toml_text, const fs::path& origin) {
    // Relative paths anchor at the folder of `origin`; an empty origin (text from nowhere) at the current directory.
    fs::path base = origin.empty() ? fs::current_path() : fs::absolute(origin).parent_path();
    Loader loader(origin.empty() ? std::string("<built-in configuration>") : origin.string(), base);
    Config cfg = loader.load(toml_text);
    cfg.source = origin;
    return cfg;
}

Config load_config(const fs::path& file) {
    std::string text = read_file(file);
    return parse_config(text, file);
}

std::string_view embedded_default_config() { return kEmbeddedDefault; }

Config default_config() {
    Config cfg = parse_config(kEmbeddedDefault, fs::current_path() / "examples" / "ferry.toml");
    cfg.source.clear();
    return cfg;
}

}  // namespace ferry::config
