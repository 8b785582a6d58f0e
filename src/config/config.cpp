// TOML -> validated Config. Each section is one table of fields below: its keys (any other key is an error), what
// each value must be, and the member of Config it sets (whose initializer in config.hpp is the default). Every
// problem of the file is reported, each on one line naming FILE:LINE, the key and why, so an operator can fix
// the whole file without reading the code or running the check once per mistake.
#include "config/config.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <map>
#include <set>

#include "config/table_reader.hpp"
#include "smtp/address.hpp"

namespace ferry::config {

namespace fs = std::filesystem;
using detail::Field;
using detail::join_key;
using detail::Problem;
using detail::quote_value;
using detail::Reader;
using detail::TableCheck;
using detail::type_name;

ConfigError::ConfigError(std::vector<std::string> lines)
    : std::runtime_error([&] {
          std::string all;
          for (const std::string& l : lines) all += (all.empty() ? "" : "\n") + l;
          return all;
      }()),
      problems_(std::move(lines)) {}

namespace {

// RFC 5321 4.5.3.1.4 and 4.5.3.1.6: an implementation must accept lines at least this long (incl. CRLF).
constexpr std::int64_t kMinCommandLineLength = 512;
constexpr std::int64_t kMinTextLineLength = 1000;
constexpr std::int64_t kMaxDeliveryWorkers = 64;

bool is_loopback(const std::string& host) {
    in_addr v4{};
    in6_addr v6{};
    if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
    return ::inet_pton(AF_INET6, host.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
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

// outbound.source_address (v6 false) and source_address6: an IP literal of that family, or "" for none.
Field<OutboundSettings> source_address_field(std::string_view key, std::string OutboundSettings::*member, bool v6) {
    return {key, [member, v6](Reader& r, const toml::node& n, const std::string& name, OutboundSettings& o) {
                const std::string v = r.text(n, name);
                if (const std::string why = source_address_error(v, v6); !v.empty() && !why.empty())
                    r.fail(n, name, quote_value(v) + " " + why);
                o.*member = v;
            }};
}

toml::source_index line_of(const toml::key& key, const toml::node& node) {
    return key.source().begin.line ? key.source().begin.line : node.source().begin.line;
}

// A table's entries in file order (toml::table iterates in key order): "same as line N" names the first.
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

// Records what `step` throws and goes on: for the elements of an array, each checked on its own.
template <class F>
void each_on_its_own(Reader& r, F&& step) {
    try {
        step();
    } catch (const detail::KeyProblem& p) {
        r.record(p.problem);
    }
}

// An array of tables (`header` names it in the refusal): each read with `fields` on its own, then, when it read
// without a problem, handed to `add(settings, its node, its key prefix)`, which may still fail on it.
template <class S, std::size_t N, class Add>
void each_table(Reader& r, const toml::node& node, const std::string& name, std::string_view header,
                const Field<S> (&fields)[N], Add&& add) {
    if (!node.is_array_of_tables())
        r.fail(node, name, "expected " + std::string(header) + " tables (an array of tables), got " + type_name(node.type()));
    const toml::array& arr = *node.as_array();
    for (std::size_t i = 0; i < arr.size(); ++i) {
        const std::string prefix = name + "[" + std::to_string(i) + "]";
        each_on_its_own(r, [&] {
            S settings;
            if (detail::read_table<S>(r, *arr[i].as_table(), prefix, fields, settings, arr[i].source().begin.line))
                add(std::move(settings), arr[i], prefix);
        });
    }
}

// A host name (RFC 5321 Domain): hostname, mailauth.authserv_id, outbound.helo_name.
std::string host_name(Reader& r, const toml::node& n, const std::string& name) {
    std::string v = r.text(n, name);
    if (std::string why = smtp::domain_error(v); !why.empty())
        r.fail(n, name, quote_value(v) + " is not a host name (" + why + ")");
    return v;
}

// An address of an alias (smtp::address_error): the domain lower-cased, the local part kept as written for
// remote targets.
std::string alias_address(Reader& r, const toml::node& n, const std::string& name) {
    if (!n.is_string()) r.fail(n, name, std::string("expected an address string, got ") + type_name(n.type()));
    const std::string& a = n.as_string()->get();
    if (std::string why = smtp::address_error(a); !why.empty())
        r.fail(n, name, quote_value(a) + " is not an address (" + why + ")");
    const auto at = a.rfind('@');
    return a.substr(0, at + 1) + ascii_lower(std::string_view(a).substr(at + 1));
}

// A sub-table read into one member of Config.
template <class S, std::size_t N>
Field<Config> section(std::string_view key, S Config::*member, const Field<S> (&fields)[N], TableCheck<S> check = {}) {
    return {key, [member, &fields, check](Reader& r, const toml::node& n, const std::string& name, Config& cfg) {
                detail::read_table<S>(r, r.table(n, name), name, fields, cfg.*member, n.source().begin.line, check);
            },
            {},
            [&fields] { return detail::keys_of<S>(fields, "."); }};
}

// ---------------------------------------------------------------------------------------------------------
// [[listen]]

const Field<Listener> kListenFields[] = {
    {"address",
     [](Reader& r, const toml::node& n, const std::string& name, Listener& l) {
         const std::string v = r.text(n, name);
         HostPort hp;
         if (std::string why = split_host_port(v, true, true, hp); !why.empty())
             r.fail(n, name, quote_value(v) + " is not host:port (" + why + ")");
         l.host = hp.host;
         l.port = static_cast<std::uint16_t>(*hp.port);
     },
     "missing (e.g. address = \"127.0.0.1:25\")"},
    detail::choice_field("role", &Listener::role,
                         {{"mx", ListenerRole::mx}, {"submission", ListenerRole::submission},
                          {"submissions", ListenerRole::submissions}},
                         "is not a role (use mx, submission or submissions)"),
    detail::flag_field("plaintext_auth", &Listener::plaintext_auth),
    detail::flag_field("sender_login_match", &Listener::sender_login_match),
    // This listener's own session limits; unset: [limits] connections / connections_per_ip.
    detail::optional_positive_field("connections", &Listener::connections),
    detail::optional_positive_field("connections_per_ip", &Listener::connections_per_ip),
};

const TableCheck<Listener> kListenCheck = [](Reader& r, const toml::table& t, const std::string& prefix, Listener& l,
                                             bool fields_ok) {
    // A password in clear text is acceptable only where nobody else can listen.
    if (fields_ok && l.plaintext_auth && !is_loopback(l.host))
        r.fail(*t.get("plaintext_auth"), prefix + ".plaintext_auth",
               "allowed only on a loopback address (127.0.0.0/8 or ::1), not " + l.host);
};

void read_listeners(Reader& r, const toml::node& node, const std::string& name, Config& cfg) {
    if (!node.is_array())
        r.fail(node, name, std::string("expected [[listen]] tables (an array of tables), got ") + type_name(node.type()));
    const toml::array& arr = *node.as_array();
    if (arr.empty()) r.fail(node, name, "at least one [[listen]] table is required");
    std::set<std::pair<std::string, std::uint16_t>> seen;
    for (std::size_t i = 0; i < arr.size(); ++i) {
        const std::string prefix = name + "[" + std::to_string(i) + "]";
        each_on_its_own(r, [&] {
            const toml::table& t = r.table(arr[i], prefix);
            Listener l;
            if (!detail::read_table<Listener>(r, t, prefix, kListenFields, l, arr[i].source().begin.line, kListenCheck))
                return;
            if (l.port != 0 && !seen.insert({l.host, l.port}).second)
                r.fail(*t.get("address"), prefix + ".address",
                       quote_value(t.get("address")->as_string()->get()) + " is already used by another listener");
            cfg.listeners.push_back(std::move(l));
        });
    }
}

// ---------------------------------------------------------------------------------------------------------
// [tls]

Field<TlsSettings> tls_file(std::string_view key, fs::path TlsSettings::*member) {
    return {key, [member](Reader& r, const toml::node& n, const std::string& name, TlsSettings& tls) {
                const fs::path p = r.path(n, name);
                const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
                if (fd < 0) {
                    const int err = errno;
                    r.fail(n, name, "cannot read " + quote_value(p.string()) + ": " + std::strerror(err));
                }
                struct stat st {};
                const bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
                ::close(fd);
                if (!regular) r.fail(n, name, quote_value(p.string()) + " is not a regular file");
                tls.*member = p;
            }};
}

const Field<TlsSettings> kTlsFields[] = {
    tls_file("certificate", &TlsSettings::certificate),
    tls_file("private_key", &TlsSettings::private_key),
    detail::choice_field("min_version", &TlsSettings::min_version, {{"1.2", std::string("1.2")}, {"1.3", std::string("1.3")}},
                         "is not \"1.2\" or \"1.3\""),
    {"ciphers",
     [](Reader& r, const toml::node& n, const std::string& name, TlsSettings& tls) {
         const std::string v = r.text(n, name);
         // Checked against this OpenSSL now, so a typo is a configuration error and not a failed start.
         SSL_CTX* probe = SSL_CTX_new(TLS_server_method());
         const bool ok = probe && !v.empty() && SSL_CTX_set_cipher_list(probe, v.c_str()) == 1;
         SSL_CTX_free(probe);
         ERR_clear_error();
         if (!ok) r.fail(n, name, quote_value(v) + " selects no cipher OpenSSL knows");
         tls.ciphers = v;
     }},
};

const TableCheck<TlsSettings> kTlsCheck = [](Reader& r, const toml::table& t, const std::string& prefix, TlsSettings&,
                                             bool) {
    const bool has_cert = t.contains("certificate"), has_key = t.contains("private_key");
    if (has_cert != has_key)
        r.fail(t, prefix + (has_cert ? ".private_key" : ".certificate"),
               "missing (certificate and private_key go together; omit both for a self-signed certificate)");
};

void read_tls(Reader& r, const toml::node& n, const std::string& name, Config& cfg) {
    TlsSettings tls;
    detail::read_table<TlsSettings>(r, r.table(n, name), name, kTlsFields, tls, n.source().begin.line, kTlsCheck);
    cfg.tls = std::move(tls);
}

// ---------------------------------------------------------------------------------------------------------
// [domains]

const Field<Config> kDomainsFields[] = {
    {"local",
     [](Reader& r, const toml::node& n, const std::string& name, Config& cfg) {
         if (!n.is_array()) r.fail(n, name, std::string("expected an array of domain names, got ") + type_name(n.type()));
         const toml::array& arr = *n.as_array();
         for (std::size_t i = 0; i < arr.size(); ++i) {
             const std::string key = name + "[" + std::to_string(i) + "]";
             each_on_its_own(r, [&] {
                 if (!arr[i].is_string())
                     r.fail(arr[i], key, std::string("expected a domain name string, got ") + type_name(arr[i].type()));
                 const std::string& d = arr[i].as_string()->get();
                 if (std::string why = smtp::domain_error(d); !why.empty())
                     r.fail(arr[i], key, quote_value(d) + " is not a domain name (" + why + ")");
                 std::string lower = ascii_lower(d);
                 if (std::find(cfg.local_domains.begin(), cfg.local_domains.end(), lower) == cfg.local_domains.end())
                     cfg.local_domains.push_back(std::move(lower));
             });
         }
     }},
};

void read_domains(Reader& r, const toml::node& n, const std::string& name, Config& cfg) {
    detail::read_table<Config>(r, r.table(n, name), name, kDomainsFields, cfg, n.source().begin.line);
}

// ---------------------------------------------------------------------------------------------------------
// [limits]

const Field<Limits> kLimitsFields[] = {
    detail::positive_field("command_line_length", &Limits::command_line_length, kMinCommandLineLength),
    detail::positive_field("text_line_length", &Limits::text_line_length, kMinTextLineLength),
    {"message_size",
     [](Reader& r, const toml::node& n, const std::string& name, Limits& l) {
         // Reader::size reads and reports it as any size; a limit of 0 octets would refuse every message.
         if (n.is_integer() && n.as_integer()->get() <= 0)
             r.fail(n, name, std::to_string(n.as_integer()->get()) + " is too small (expected a positive size)");
         const std::uint64_t v = r.size(n, name);
         if (v == 0) r.fail(n, name, quote_value(n.as_string()->get()) + " is too small (expected a positive size)");
         l.message_size = v;
     }},
    detail::positive_field("recipients", &Limits::recipients),
    detail::positive_field("connections", &Limits::connections),
    detail::positive_field("connections_per_ip", &Limits::connections_per_ip),
    detail::positive_field("errors", &Limits::errors),
    detail::duration_field("command_timeout", &Limits::command_timeout),
    detail::duration_field("data_timeout", &Limits::data_timeout),
    detail::positive_field("min_data_rate", &Limits::min_data_rate),
};

// ---------------------------------------------------------------------------------------------------------
// [dns]

const Field<DnsSettings> kDnsFields[] = {
    {"resolver",
     [](Reader& r, const toml::node& n, const std::string& name, DnsSettings& dns) {
         const std::string v = r.text(n, name);
         HostPort hp;
         std::string why = split_host_port(v, true, true, hp);
         if (why.empty() && *hp.port == 0) why = "port must be 1-65535";
         if (!why.empty()) r.fail(n, name, quote_value(v) + " is not host:port (" + why + ")");
         dns.resolver = v;
     }},
    detail::duration_field("timeout", &DnsSettings::timeout),
};

// ---------------------------------------------------------------------------------------------------------
// [outbound]

const Field<OutboundSettings> kOutboundFields[] = {
    {"port",
     [](Reader& r, const toml::node& n, const std::string& name, OutboundSettings& o) {
         o.port = static_cast<std::uint16_t>(r.integer(n, name, 1, 65535, "a port number 1-65535"));
     }},
    {"relay_host",
     [](Reader& r, const toml::node& n, const std::string& name, OutboundSettings& o) {
         const std::string v = r.text(n, name);
         if (!v.empty()) {
             HostPort hp;
             std::string why = split_host_port(v, false, false, hp);
             if (why.empty() && hp.port && *hp.port == 0) why = "port must be 1-65535";
             if (!why.empty()) r.fail(n, name, quote_value(v) + " is not host or host:port (" + why + ")");
         }
         o.relay_host = v;
     }},
    detail::text_field("relay_user", &OutboundSettings::relay_user),
    {"relay_password_file",
     [](Reader& r, const toml::node& n, const std::string& name, OutboundSettings& o) {
         const fs::path p = r.path(n, name);
         std::error_code ec;
         if (!fs::is_regular_file(p, ec)) r.fail(n, name, quote_value(p.string()) + " is not a readable file");
         o.relay_password_file = p;
     }},
    {"helo_name",
     [](Reader& r, const toml::node& n, const std::string& name, OutboundSettings& o) {
         // Empty: `hostname`.
         o.helo_name = r.text(n, name).empty() ? std::string() : host_name(r, n, name);
     }},
    // Local addresses outgoing connections bind to (Postfix's smtp_bind_address and smtp_bind_address6).
    source_address_field("source_address", &OutboundSettings::source_address, false),
    source_address_field("source_address6", &OutboundSettings::source_address6, true),
    detail::duration_field("connect_timeout", &OutboundSettings::connect_timeout),
    detail::duration_field("command_timeout", &OutboundSettings::command_timeout),
    detail::duration_field("data_timeout", &OutboundSettings::data_timeout),
    detail::positive_field("max_connections", &OutboundSettings::max_connections),
    detail::positive_field("max_connections_per_destination", &OutboundSettings::max_connections_per_destination),
};

const TableCheck<OutboundSettings> kOutboundCheck = [](Reader& r, const toml::table& t, const std::string& prefix,
                                                       OutboundSettings& o, bool fields_ok) {
    if (!fields_ok) return;
    if (o.relay_user.empty() != o.relay_password_file.empty())
        r.fail(t, prefix + (o.relay_user.empty() ? ".relay_user" : ".relay_password_file"),
               "missing (relay_user and relay_password_file go together)");
    if (!o.relay_user.empty() && o.relay_host.empty())
        r.fail(*t.get("relay_user"), prefix + ".relay_user", "needs relay_host (AUTH is only sent to a relay host)");
};

// ---------------------------------------------------------------------------------------------------------
// [queue]

const Field<QueueSettings> kQueueFields[] = {
    detail::seconds_field("min_retry", &QueueSettings::min_retry),
    detail::seconds_field("max_retry", &QueueSettings::max_retry),
    detail::seconds_field("lifetime", &QueueSettings::lifetime),
    {"delivery_workers",
     [](Reader& r, const toml::node& n, const std::string& name, QueueSettings& q) {
         q.delivery_workers = static_cast<std::size_t>(r.integer(n, name, 1, kMaxDeliveryWorkers, "an integer 1-64"));
     }},
    detail::positive_field("active_limit", &QueueSettings::active_limit),
    {"min_free",
     [](Reader& r, const toml::node& n, const std::string& name, QueueSettings& q) { q.min_free = r.size(n, name); }},
    detail::choice_field("sync", &QueueSettings::sync, {{"filesystem", SyncMode::filesystem}, {"files", SyncMode::files}},
                         "is not one of \"filesystem\", \"files\""),
};

const TableCheck<QueueSettings> kQueueCheck = [](Reader& r, const toml::table& t, const std::string& prefix,
                                                 QueueSettings& q, bool fields_ok) {
    if (!fields_ok || q.max_retry >= q.min_retry) return;
    const bool has_max = t.get("max_retry") != nullptr;
    r.fail(*(has_max ? t.get("max_retry") : t.get("min_retry")), prefix + (has_max ? ".max_retry" : ".min_retry"),
           "max_retry (" + std::to_string(q.max_retry.count()) + "s) is shorter than min_retry (" +
               std::to_string(q.min_retry.count()) + "s)");
};

// ---------------------------------------------------------------------------------------------------------
// [aliases]: the keys are addresses, so this table has no fixed fields.

void read_aliases(Reader& r, const toml::node& n, const std::string& name, Config& cfg) {
    const toml::table& t = r.table(n, name);
    std::map<std::string, toml::source_index> first_line;
    for (auto [key_ptr, node_ptr] : in_file_order(t)) {
        const toml::key& key = *key_ptr;
        const toml::node& node = *node_ptr;
        const std::string alias = join_key(name, key.str());
        const auto key_line = line_of(key, node);
        each_on_its_own(r, [&] {
            if (std::string why = smtp::address_error(key.str()); !why.empty())
                r.fail(key_line, alias, quote_value(key.str()) + " is not an address (" + why + ")");
            std::string lower = ascii_lower(key.str());
            if (auto [it, inserted] = first_line.emplace(lower, key_line); !inserted)
                r.fail(key_line, alias,
                       "duplicate alias (same address as line " + std::to_string(it->second) +
                           ", addresses are case-insensitive)");
            std::vector<std::string> targets;
            if (node.is_string()) {
                targets.push_back(alias_address(r, node, alias));
            } else if (node.is_array()) {
                const toml::array& arr = *node.as_array();
                if (arr.empty()) r.fail(node, alias, "lists no target addresses");
                const std::size_t before = r.problem_count();
                for (std::size_t i = 0; i < arr.size(); ++i)
                    each_on_its_own(r, [&] {
                        targets.push_back(alias_address(r, arr[i], alias + "[" + std::to_string(i) + "]"));
                    });
                if (r.problem_count() != before) return;
            } else {
                r.fail(node, alias, std::string("expected an array of addresses, got ") + type_name(node.type()));
            }
            cfg.aliases[lower] = std::move(targets);
        });
    }
}

// ---------------------------------------------------------------------------------------------------------
// [mailauth]

const Field<MailauthSettings> kMailauthFields[] = {
    detail::flag_field("verify", &MailauthSettings::verify),
    detail::flag_field("dmarc_enforce", &MailauthSettings::dmarc_enforce),
    {"authserv_id",
     [](Reader& r, const toml::node& n, const std::string& name, MailauthSettings& m) {
         // RFC 8601 2.5: the authserv-id is the receiving host's name (a token readers compare with their own).
         m.authserv_id = ascii_lower(host_name(r, n, name));
     }},
    {"public_suffix_list",
     [](Reader& r, const toml::node& n, const std::string& name, MailauthSettings& m) {
         const fs::path p = r.path(n, name);
         if (::access(p.c_str(), R_OK) != 0) {
             const int err = errno;
             r.fail(n, name, "cannot read " + quote_value(p.string()) + ": " + std::strerror(err));
         }
         m.public_suffix_list = p;
     }},
};

// ---------------------------------------------------------------------------------------------------------
// [dkim] and its [[dkim.key]] tables

const Field<DkimKeySettings> kDkimKeyFields[] = {
    {"domain",
     [](Reader& r, const toml::node& n, const std::string& name, DkimKeySettings& k) {
         const std::string v = r.text(n, name);
         if (std::string why = dkim_domain_error(v); !why.empty())
             r.fail(n, name, quote_value(v) + " is not a domain name (" + why + ")");
         k.domain = ascii_lower(v);
     },
     "missing (the d= domain this key signs for)"},
    {"selector",
     [](Reader& r, const toml::node& n, const std::string& name, DkimKeySettings& k) {
         const std::string v = r.text(n, name);
         if (std::string why = dkim_selector_error(v); !why.empty())
             r.fail(n, name, quote_value(v) + " is not a selector (" + why + ")");
         k.selector = ascii_lower(v);
     },
     "missing (the s= selector of the key's DNS record)"},
    // Read when the server starts (and by check-config), not here: `ferry dkim keygen` loads this file to learn
    // data_dir before the key it writes exists. Default (set once data_dir is known): data_dir/dkim/D.S.pem.
    detail::path_field("private_key", &DkimKeySettings::private_key),
};

const Field<DkimSettings> kDkimFields[] = {
    detail::flag_field("sign", &DkimSettings::sign),
    {"canonicalization",
     [](Reader& r, const toml::node& n, const std::string& name, DkimSettings& d) {
         // RFC 6376 3.5 c=: header/body, each simple or relaxed.
         const std::string v = r.text(n, name);
         const auto slash = v.find('/');
         const std::string head = v.substr(0, slash), body = slash == std::string::npos ? "" : v.substr(slash + 1);
         auto ok = [](const std::string& x) { return x == "simple" || x == "relaxed"; };
         if (slash == std::string::npos || !ok(head) || !ok(body))
             r.fail(n, name,
                    quote_value(v) + " is not header/body canonicalization (\"relaxed/relaxed\", \"simple/simple\", "
                                     "\"relaxed/simple\" or \"simple/relaxed\")");
         d.relaxed_header = head == "relaxed";
         d.relaxed_body = body == "relaxed";
     }},
    {"key",
     [](Reader& r, const toml::node& n, const std::string& name, DkimSettings& d) {
         each_table<DkimKeySettings>(r, n, name, "[[dkim.key]]", kDkimKeyFields,
                                     [&](DkimKeySettings key, const toml::node& table, const std::string& prefix) {
                                         for (const auto& other : d.keys)
                                             if (other.domain == key.domain && other.selector == key.selector)
                                                 r.fail(table, prefix, "a second key for " + key.selector +
                                                                           "._domainkey." + key.domain);
                                         d.keys.push_back(std::move(key));
                                     });
     },
     {},
     [] { return detail::keys_of<DkimKeySettings>(kDkimKeyFields, "[]."); }},
};

// ---------------------------------------------------------------------------------------------------------
// [rspamd] and [[milter]]: content filters

const std::vector<std::pair<std::string_view, FilterFailure>> kFilterFailures = {
    {"tempfail", FilterFailure::tempfail}, {"accept", FilterFailure::accept}};
constexpr const char* kFilterFailureError = "is not \"tempfail\" or \"accept\"";

// A header field name (RFC 5322 3.6.8: printable ASCII but the colon) for the fields rspamd's verdict adds.
Field<RspamdSettings> header_name_field(std::string_view key, std::string RspamdSettings::*member) {
    return {key, [member](Reader& r, const toml::node& n, const std::string& name, RspamdSettings& s) {
                const std::string v = r.text(n, name);
                const bool ok = v.size() <= 64 && util::is_field_name(v);
                if (!ok) r.fail(n, name, quote_value(v) + " is not a header field name");
                s.*member = v;
            }};
}

const Field<RspamdSettings> kRspamdFields[] = {
    {"url",
     [](Reader& r, const toml::node& n, const std::string& name, RspamdSettings& s) {
         // rspamd's normal worker: http://HOST:PORT (its HTTP protocol, POST /checkv2). "" turns rspamd off.
         const std::string v = r.text(n, name);
         if (v.empty()) {
             s.url.clear();
             return;
         }
         constexpr std::string_view scheme = "http://";
         std::string rest = v.substr(0, scheme.size()) == scheme ? v.substr(scheme.size()) : std::string();
         if (!rest.empty() && rest.back() == '/') rest.pop_back();
         HostPort hp;
         std::string why = rest.empty() ? "expected http://HOST:PORT" : split_host_port(rest, false, false, hp);
         if (why.empty() && hp.port && *hp.port == 0) why = "port must be 1-65535";
         if (!why.empty()) r.fail(n, name, quote_value(v) + " is not an rspamd URL (" + why + ")");
         s.url = v;
         s.host = hp.host;
         s.port = hp.port.value_or(11333);
     }},
    detail::duration_field("timeout", &RspamdSettings::timeout),
    detail::choice_field("on_error", &RspamdSettings::on_error, kFilterFailures, kFilterFailureError),
    detail::flag_field("scan_submission", &RspamdSettings::scan_submission),
    detail::positive_field("max_connections", &RspamdSettings::max_connections),
    header_name_field("spam_flag_header", &RspamdSettings::spam_flag_header),
    header_name_field("score_header", &RspamdSettings::score_header),
    header_name_field("status_header", &RspamdSettings::status_header),
    header_name_field("unscanned_header", &RspamdSettings::unscanned_header),
};

const Field<MilterSettings> kMilterFields[] = {
    detail::text_field("name", &MilterSettings::name),
    {"address",
     [](Reader& r, const toml::node& n, const std::string& name, MilterSettings& m) {
         // Postfix's notation: inet:HOST:PORT or unix:PATH (a relative path is taken from the config's folder).
         const std::string v = r.text(n, name);
         if (v.rfind("unix:", 0) == 0 && v.size() > 5) {
             m.unix_socket = true;
             m.path = r.resolve(v.substr(5));
         } else if (v.rfind("inet:", 0) == 0) {
             HostPort hp;
             std::string why = split_host_port(v.substr(5), false, true, hp);
             if (why.empty() && *hp.port == 0) why = "port must be 1-65535";
             if (!why.empty()) r.fail(n, name, quote_value(v) + " is not inet:HOST:PORT (" + why + ")");
             m.host = hp.host;
             m.port = *hp.port;
         } else {
             r.fail(n, name, quote_value(v) + " is not inet:HOST:PORT or unix:PATH");
         }
         m.address = v;
     },
     "missing (e.g. address = \"inet:127.0.0.1:8891\")"},
    detail::choice_field("default_action", &MilterSettings::default_action, kFilterFailures, kFilterFailureError),
    detail::duration_field("connect_timeout", &MilterSettings::connect_timeout),
    detail::duration_field("command_timeout", &MilterSettings::command_timeout),
    detail::duration_field("content_timeout", &MilterSettings::content_timeout),
};

void read_milters(Reader& r, const toml::node& node, const std::string& name, Config& cfg) {
    each_table<MilterSettings>(r, node, name, "[[milter]]", kMilterFields,
                               [&](MilterSettings m, const toml::node&, const std::string&) {
                                   if (m.name.empty()) m.name = m.address;
                                   cfg.milters.push_back(std::move(m));
                               });
}

// ---------------------------------------------------------------------------------------------------------
// [policy], [[dnsbl]], [greylist], [rate_limit]: connection and envelope policy

// An array of strings, each checked by `one` (which may fail on its element).
template <class F>
void each_string(Reader& r, const toml::node& n, const std::string& name, F&& one) {
    if (!n.is_array()) r.fail(n, name, std::string("expected an array of strings, got ") + type_name(n.type()));
    const toml::array& arr = *n.as_array();
    for (std::size_t i = 0; i < arr.size(); ++i) {
        const std::string item = name + "[" + std::to_string(i) + "]";
        each_on_its_own(r, [&] { one(arr[i], item, r.text(arr[i], item)); });
    }
}

const Field<PolicySettings> kPolicyFields[] = {
    {"allow_networks",
     [](Reader& r, const toml::node& n, const std::string& name, PolicySettings& p) {
         p.allow_networks.clear();
         each_string(r, n, name, [&](const toml::node& e, const std::string& item, const std::string& v) {
             const auto net = policy::parse_network(v);
             if (!net)
                 r.fail(e, item, quote_value(v) + " is not an IP network (\"192.0.2.0/24\", \"2001:db8::/32\" or an "
                                                  "address; no bits set after the prefix)");
             p.allow_networks.push_back(*net);
         });
     }},
    {"dnsbl_threshold",
     [](Reader& r, const toml::node& n, const std::string& name, PolicySettings& p) {
         p.dnsbl_threshold = static_cast<int>(r.integer(n, name, 1, 1000, "1-1000"));
     }},
    detail::choice_field("dnsbl_reject", &PolicySettings::dnsbl_at_connect,
                         {{"rcpt", false}, {"connect", true}}, "is not \"rcpt\" or \"connect\""),
    {"pregreet_wait",
     [](Reader& r, const toml::node& n, const std::string& name, PolicySettings& p) {
         // "0s" turns the test off (Reader::duration refuses 0, which is right everywhere else).
         const std::string v = r.text(n, name);
         std::chrono::milliseconds d;
         try {
             d = parse_duration(v);
         } catch (const std::invalid_argument& e) {
             r.fail(n, name, quote_value(v) + " is not a duration (" + e.what() + ")");
         }
         if (d > std::chrono::seconds(60))
             r.fail(n, name, quote_value(v) + " is too long (clients give up on a greeting after 5 minutes; "
                                              "postscreen waits 6 s)");
         p.pregreet_wait = d;
     }},
};

// What counts from a list when `responses` is not given: Spamhaus ZEN's listings (127.0.0.2-127.0.0.11),
// dnswl.org's (127.0.X.Y but its over-limit 127.0.0.255, which dnsbl.hpp treats as an error anyway), and for any
// other list the usual 127.0.0.2-127.0.0.254.
std::vector<policy::ResponseRange> default_responses(const std::string& zone) {
    const char* text = zone == "zen.spamhaus.org" ? "127.0.0.2-127.0.0.11"
                       : zone == "list.dnswl.org" ? "127.0.0.0-127.0.255.254"
                                                  : "127.0.0.2-127.0.0.254";
    return {*policy::parse_response_range(text)};
}

const Field<DnsblSettings> kDnsblFields[] = {
    {"zone",
     [](Reader& r, const toml::node& n, const std::string& name, DnsblSettings& d) {
         std::string v = ascii_lower(r.text(n, name));
         if (!v.empty() && v.back() == '.') v.pop_back();
         if (std::string why = smtp::domain_error(v); !why.empty())
             r.fail(n, name, quote_value(v) + " is not a DNS zone (" + why + ")");
         d.zone = v;
     },
     "missing (e.g. zone = \"zen.spamhaus.org\")"},
    {"weight",
     [](Reader& r, const toml::node& n, const std::string& name, DnsblSettings& d) {
         d.weight = static_cast<int>(r.integer(n, name, -1000, 1000, "-1000 to 1000"));
         if (d.weight == 0) r.fail(n, name, "0 would make the list count for nothing (negative: an allow list)");
     }},
    {"responses",
     [](Reader& r, const toml::node& n, const std::string& name, DnsblSettings& d) {
         d.responses.clear();
         each_string(r, n, name, [&](const toml::node& e, const std::string& item, const std::string& v) {
             const auto range = policy::parse_response_range(v);
             if (!range)
                 r.fail(e, item, quote_value(v) + " is not an answer in 127.0.0.0/8 (\"127.0.0.2\") or a range "
                                                  "(\"127.0.0.2-127.0.0.11\")");
             d.responses.push_back(*range);
         });
         if (d.responses.empty()) r.fail(n, name, "empty: no answer would count (leave it out for the default)");
     }},
};

void read_dnsbls(Reader& r, const toml::node& node, const std::string& name, Config& cfg) {
    each_table<DnsblSettings>(r, node, name, "[[dnsbl]]", kDnsblFields,
                              [&](DnsblSettings d, const toml::node& table, const std::string& prefix) {
                                  if (d.responses.empty()) d.responses = default_responses(d.zone);
                                  for (const auto& other : cfg.dnsbls)
                                      if (other.zone == d.zone) r.fail(table, prefix, "a second [[dnsbl]] for " + d.zone);
                                  cfg.dnsbls.push_back(std::move(d));
                              });
}

const Field<GreylistConfig> kGreylistFields[] = {
    detail::flag_field("enabled", &GreylistConfig::enabled),
    detail::duration_field("delay", &GreylistConfig::delay),
    detail::duration_field("retry_window", &GreylistConfig::retry_window),
    detail::duration_field("max_age", &GreylistConfig::max_age),
    detail::positive_field("max_entries", &GreylistConfig::max_entries, 100),
};

const TableCheck<GreylistConfig> kGreylistCheck = [](Reader& r, const toml::table& t, const std::string& prefix,
                                                      GreylistConfig& g, bool fields_ok) {
    if (fields_ok && g.retry_window <= g.delay)
        r.fail(t.source().begin.line, join_key(prefix, "retry_window"),
               "must be longer than delay (a retry must have time to pass)");
};

Field<RateLimitSettings> rate_field(std::string_view key, policy::Rate RateLimitSettings::*member) {
    return {key, [member](Reader& r, const toml::node& n, const std::string& name, RateLimitSettings& s) {
                const std::string v = r.text(n, name);
                try {
                    s.*member = parse_rate(v);
                } catch (const std::invalid_argument& e) {
                    r.fail(n, name, quote_value(v) + " is not a rate (" + e.what() + ")");
                }
            }};
}

const Field<RateLimitSettings> kRateLimitFields[] = {
    rate_field("connections", &RateLimitSettings::connections),
    rate_field("messages", &RateLimitSettings::messages),
    rate_field("recipients", &RateLimitSettings::recipients),
    rate_field("user_messages", &RateLimitSettings::user_messages),
    rate_field("user_recipients", &RateLimitSettings::user_recipients),
    {"ipv4_prefix",
     [](Reader& r, const toml::node& n, const std::string& name, RateLimitSettings& s) {
         s.ipv4_prefix = static_cast<unsigned>(r.integer(n, name, 8, 32, "8-32"));
     }},
    {"ipv6_prefix",
     [](Reader& r, const toml::node& n, const std::string& name, RateLimitSettings& s) {
         s.ipv6_prefix = static_cast<unsigned>(r.integer(n, name, 16, 128, "16-128"));
     }},
    detail::positive_field("max_clients", &RateLimitSettings::max_clients, 100),
};

// ---------------------------------------------------------------------------------------------------------
// The top level

const Field<Config> kRootFields[] = {
    {"hostname", [](Reader& r, const toml::node& n, const std::string& name, Config& c) { c.hostname = host_name(r, n, name); }},
    detail::path_field("data_dir", &Config::data_dir),
    {"user",
     [](Reader& r, const toml::node& n, const std::string& name, Config& c) {
         c.user = r.text(n, name);
         if (c.user.empty()) r.fail(n, name, "must not be empty (leave the key out to keep the user)");
     }},
    detail::flag_field("run_as_root", &Config::run_as_root),
    detail::choice_field("log_level", &Config::log_level,
                         {{"trace", std::string("trace")},
                          {"debug", std::string("debug")},
                          {"info", std::string("info")},
                          {"warn", std::string("warn")},
                          {"error", std::string("error")}},
                         "is not a log level (use trace, debug, info, warn or error)"),
    {"listen", read_listeners, "at least one [[listen]] table is required",
     [] { return detail::keys_of<Listener>(kListenFields, "[]."); }},
    {"tls", read_tls, {}, [] { return detail::keys_of<TlsSettings>(kTlsFields, "."); }},
    {"domains", read_domains, {}, [] { return detail::keys_of<Config>(kDomainsFields, "."); }},
    section("limits", &Config::limits, kLimitsFields),
    section("dns", &Config::dns, kDnsFields),
    section("outbound", &Config::outbound, kOutboundFields, kOutboundCheck),
    section("queue", &Config::queue, kQueueFields, kQueueCheck),
    {"aliases", read_aliases},
    section("mailauth", &Config::mailauth, kMailauthFields),
    section("dkim", &Config::dkim, kDkimFields),
    section("rspamd", &Config::rspamd, kRspamdFields),
    {"milter", read_milters, {}, [] { return detail::keys_of<MilterSettings>(kMilterFields, "[]."); }},
    section("policy", &Config::policy, kPolicyFields),
    {"dnsbl", read_dnsbls, {}, [] { return detail::keys_of<DnsblSettings>(kDnsblFields, "[]."); }},
    section("greylist", &Config::greylist, kGreylistFields, kGreylistCheck),
    section("rate_limit", &Config::rate_limit, kRateLimitFields),
};

// Defaults that depend on other keys: a DKIM key's file is named after data_dir, its domain and its selector.
const TableCheck<Config> kRootCheck = [](Reader&, const toml::table&, const std::string&, Config& cfg, bool) {
    for (DkimKeySettings& key : cfg.dkim.keys)
        if (key.private_key.empty()) key.private_key = cfg.dkim_dir() / (key.domain + "." + key.selector + ".pem");
};

std::string machine_host_name() {
    char buf[HOST_NAME_MAX + 1] = {};
    if (gethostname(buf, sizeof buf - 1) == 0 && buf[0] != '\0') return buf;
    return "localhost";
}

std::string read_file(const fs::path& file) {
    auto cannot = [&](int err) { return ConfigError(file.string() + ": cannot read: " + std::strerror(err)); };
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

Config parse_config(std::string_view toml_text, const fs::path& origin) {
    // Relative paths anchor at the folder of `origin`; an empty origin (text from nowhere) at the current directory.
    const fs::path base = origin.empty() ? fs::current_path() : fs::absolute(origin).parent_path();
    const std::string file_name = origin.empty() ? std::string("<built-in configuration>") : origin.string();
    Reader r(file_name, base);
    toml::table root;
    try {
        root = toml::parse(toml_text, file_name);
    } catch (const toml::parse_error& e) {
        // Nothing after a syntax error can be trusted: this one problem is the whole report.
        r.record(Problem{e.source().begin.line, "", "TOML syntax error: " + std::string(e.description())});
        throw ConfigError(r.report());
    }
    Config cfg;
    cfg.hostname = machine_host_name();
    cfg.data_dir = r.resolve("var");
    cfg.policy.allow_networks = {*policy::parse_network("127.0.0.0/8"), *policy::parse_network("::1")};
    detail::read_table<Config>(r, root, "", kRootFields, cfg, 0, kRootCheck);
    if (r.problem_count() > 0) throw ConfigError(r.report());
    cfg.source = origin;
    return cfg;
}

std::vector<std::string> known_keys() { return detail::keys_of<Config>(kRootFields, ""); }

Config load_config(const fs::path& file) {
    std::string text = read_file(file);
    return parse_config(text, file);
}

Config default_config() {
    Config cfg = parse_config(embedded_default_config(), fs::current_path() / "examples" / "ferry.toml");
    cfg.source.clear();
    return cfg;
}

}  // namespace ferry::config
