#include "cli/check_command.hpp"

#include <arpa/inet.h>

#include <boost/asio.hpp>
#include <fmt/format.h>

#include <ctime>
#include <iostream>
#include <iterator>
#include <random>

#include "config/config.hpp"
#include "dns/resolver.hpp"
#include "mailauth/dkim_verify.hpp"
#include "mailauth/inbound_check.hpp"
#include "mailauth/public_suffix.hpp"
#include "mailauth/spf.hpp"
#include "mime/header_splitter.hpp"

// g++ 12 reports Asio's coroutine frame in run_with_resolver as freed by a mismatched operator delete, as in
// mailauth/spf.cpp (the frame's own operator new/delete pair seen through inlining; ASan finds no mismatch).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace ferry::cli {

namespace asio = boost::asio;

namespace {

constexpr int kUsage = 2;

int usage(const std::string& why) {
    std::cerr << "ferry check: " << why << "\n";
    return kUsage;
}

// The message on stdin, with bare LF line ends made CRLF (files on disk usually have LF).
std::string read_message() {
    const std::string raw((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    std::string out;
    out.reserve(raw.size() + raw.size() / 32);
    for (std::size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] == '\n' && (i == 0 || raw[i - 1] != '\r')) out.push_back('\r');
        out.push_back(raw[i]);
    }
    return out;
}

bool is_ip(const std::string& text) {
    unsigned char buf[16];
    return ::inet_pton(AF_INET, text.c_str(), buf) == 1 || ::inet_pton(AF_INET6, text.c_str(), buf) == 1;
}

// Runs one coroutine on a fresh event loop with the configuration's resolver.
template <typename T, typename Task>
T run_with_resolver(const config::Config& cfg, Task task) {
    asio::io_context io;
    dns::Resolver resolver(io.get_executor(), cfg.dns);
    T result{};
    std::exception_ptr error;
    asio::co_spawn(io, task(resolver), [&](std::exception_ptr e, T value) {
        if (e) error = e;
        else result = std::move(value);
    });
    io.run();
    if (error) std::rethrow_exception(error);
    return result;
}

std::string spf_line(const mailauth::SpfOutcome& o) {
    std::string line = fmt::format("{} ({}{}{})", mailauth::to_string(o.result), o.domain, o.domain.empty() ? "" : ": ",
                                   o.reason);
    if (!o.explanation.empty()) line += "\n" + o.explanation;
    return line;
}

std::string dkim_line(const mailauth::DkimOutcome& o) {
    return fmt::format("{} d={} s={} a={}{}", mailauth::to_string(o.result), o.domain, o.selector, o.algorithm,
                       o.reason.empty() ? "" : " (" + o.reason + ")");
}

// The header section and body of a whole message, as the server splits it.
struct SplitMessage {
    std::string header, body;
};
SplitMessage split(const std::string& message) {
    mime::HeaderSplitter splitter(message.size() + 4);
    SplitMessage m;
    m.body = std::string(splitter.feed(message));
    splitter.finish();
    m.header = splitter.header();
    return m;
}

int check_spf(const config::Config& cfg, const CheckOptions& o) {
    mailauth::SpfQuery q{o.ip, o.helo, o.mail_from.value_or(""), cfg.authserv_id()};
    const bool helo_identity = !o.mail_from.has_value();
    const auto outcome = run_with_resolver<mailauth::SpfOutcome>(cfg, [&](dns::Resolver& r) {
        return helo_identity ? mailauth::check_spf_helo(r, q, std::time(nullptr))
                             : mailauth::check_spf_mail_from(r, q, std::time(nullptr));
    });
    std::cout << spf_line(outcome) << "\n";
    return 0;
}

int check_dkim(const config::Config& cfg) {
    const SplitMessage m = split(read_message());
    auto verifier = std::make_shared<mailauth::DkimVerifier>(m.header);
    verifier->feed_body(m.body);
    const auto outcomes = run_with_resolver<std::vector<mailauth::DkimOutcome>>(
        cfg, [&](dns::Resolver& r) { return verifier->verify(r, std::time(nullptr)); });
    if (outcomes.empty()) std::cout << "none (no DKIM-Signature)\n";
    for (const auto& o : outcomes) std::cout << dkim_line(o) << "\n";
    return 0;
}

int check_message(const config::Config& cfg, const CheckOptions& o) {
    const SplitMessage m = split(read_message());
    std::string error;
    auto psl = mailauth::PublicSuffixList::load(cfg.mailauth.public_suffix_list, error);
    if (!psl) {
        std::cerr << "ferry check: " << error << " (organizational domains are the last two labels)\n";
        psl = mailauth::PublicSuffixList::parse("");
    }
    auto check = std::make_shared<mailauth::InboundCheck>(
        mailauth::InboundFacts{o.ip, o.helo, o.mail_from.value_or("")}, m.header);
    check->feed_body(m.body);
    const mailauth::InboundSettings settings{cfg.authserv_id(), &*psl, cfg.mailauth.dmarc_enforce};
    std::mt19937 random{std::random_device{}()};
    const double sample = std::uniform_real_distribution<double>(0.0, 1.0)(random);
    const auto verdict = run_with_resolver<mailauth::InboundVerdict>(
        cfg, [&](dns::Resolver& r) { return check->finish(r, settings, sample, std::time(nullptr)); });
    std::cout << verdict.field;
    std::cout << "disposition: " << mailauth::to_string(verdict.dmarc.disposition) << "\n";
    return 0;
}

}  // namespace

int run_check_command(const CheckOptions& o) {
    config::Config cfg;
    try {
        cfg = config::load_config(o.config);
    } catch (const config::ConfigError& e) {
        std::cerr << e.what() << "\n";
        return kUsage;
    }
    if (o.what != "dkim") {
        if (!is_ip(o.ip)) return usage("--ip \"" + o.ip + "\" is not an IPv4 or IPv6 address");
        if (o.helo.empty()) return usage("--helo is required");
        if (o.what == "message" && !o.mail_from) return usage("--mail-from is required (\"\" for the null sender)");
    }
    try {
        if (o.what == "spf") return check_spf(cfg, o);
        if (o.what == "dkim") return check_dkim(cfg);
        return check_message(cfg, o);
    } catch (const std::exception& e) {
        std::cerr << "ferry check: " << e.what() << "\n";
        return kUsage;
    }
}

}  // namespace ferry::cli
