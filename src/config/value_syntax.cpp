// The value formats of the configuration file that other commands share: durations, sizes, host:port, and the
// names of DKIM keys. Pure; each refusal says why.
#include "config/config.hpp"

#include <arpa/inet.h>

#include <limits>
#include <stdexcept>

#include "config/table_reader.hpp"
#include "smtp/address.hpp"
#include "util/ascii.hpp"
#include "util/utf8.hpp"

namespace ferry::config {

namespace {

using detail::quote_value;

// Parses the leading decimal digits of `text` into `value`; returns the number of digits (0 = none).
// Sets `overflow` when the number does not fit.
std::size_t leading_number(std::string_view text, std::uint64_t& value, bool& overflow) {
    value = 0;
    overflow = false;
    std::size_t i = 0;
    for (; i < text.size() && util::is_digit(text[i]); ++i) {
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

}  // namespace

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
    if (!ip && !smtp::is_valid_domain(host)) return "not a valid host name";
    out.host = std::string(host);
    return {};
}

std::string dkim_domain_error(std::string_view domain) {
    if (std::string why = smtp::domain_error(domain); !why.empty()) return why;
    // d= is an ASCII domain-name (RFC 6376 3.5; RFC 8616 3.2: A-labels), and verifiers look the key up by it.
    if (!util::is_ascii(domain)) return "write it in A-labels (xn--...), as DKIM signatures carry it";
    return "";
}

// RFC 6376 3.1: a selector is a sub-domain: dot-separated labels of letters, digits and hyphens.
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
        if (!util::is_alpha(s[i]) && !util::is_digit(s[i]) && s[i] != '-')
            return "only letters, digits, '-' and '.' are allowed";
        ++label;
    }
    return "";
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

}  // namespace ferry::config

namespace ferry::config {

policy::Rate parse_rate(std::string_view text) {
    // "N/DURATION" (a duration as parse_duration reads it, or a bare unit: "60/m" is "60/1m"). "" is no limit.
    if (text.empty()) return {};
    const auto slash = text.find('/');
    if (slash == std::string_view::npos) throw std::invalid_argument("expected COUNT/DURATION, e.g. \"100/1h\"");
    const std::string_view count_text = text.substr(0, slash);
    std::string per_text(text.substr(slash + 1));
    std::uint64_t count;
    bool overflow;
    if (count_text.empty() || leading_number(count_text, count, overflow) != count_text.size() || overflow)
        throw std::invalid_argument("expected COUNT/DURATION with a whole COUNT, e.g. \"100/1h\"");
    if (count == 0) throw std::invalid_argument("a count of 0 allows nothing; use \"\" for no limit");
    if (!per_text.empty() && !util::is_digit(per_text.front())) per_text.insert(0, "1");
    std::chrono::milliseconds per;
    try {
        per = parse_duration(per_text);
    } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(std::string("the duration after / is wrong: ") + e.what());
    }
    if (per.count() == 0) throw std::invalid_argument("the duration after / must be more than 0");
    return {count, per};
}

}  // namespace ferry::config
