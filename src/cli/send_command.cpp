#include "cli/send_command.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <fmt/format.h>
#include <toml++/toml.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "config/config.hpp"
#include "smtp/address.hpp"
#include "delivery/smtp_client.hpp"
#include "mime/compose.hpp"
#include "mime/media_types.hpp"
#include "util/fs.hpp"
#include "util/random_text.hpp"

// g++ 12 reports Asio's coroutine frames here as freed by a mismatched operator delete: the frame's own
// operator new/delete pair seen through inlining, as in delivery/smtp_client.cpp (ASan finds no mismatch).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace ferry::cli {

namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

constexpr int kRefused = 1;
constexpr int kUsage = 2;
constexpr int kTempFail = 75;   // EX_TEMPFAIL (sysexits.h): try again later

// Thrown for usage errors and unreadable input: the message is printed, the exit status is 2.
struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

fs::path expand_home(const std::string& path) {
    if (path.starts_with("~/"))
        if (const char* home = std::getenv("HOME")) return fs::path(home) / path.substr(2);
    return path;
}

std::string read_file(const fs::path& path, const char* what) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw UsageError(fmt::format("cannot read {} {}: {}", what, path.string(), std::strerror(errno)));
    std::ostringstream s;
    s << in.rdbuf();
    if (in.bad()) throw UsageError(fmt::format("cannot read {} {}", what, path.string()));
    return std::move(s).str();   // the buffer itself, not a copy: attachments can be large
}

fs::path default_profile() {
    if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg && *xdg) return fs::path(xdg) / "ferry" / "send.toml";
    if (const char* home = std::getenv("HOME"); home && *home) return fs::path(home) / ".config" / "ferry" / "send.toml";
    return {};
}

// Fills what the command line left open from the profile (an explicit --profile must exist; the default
// one may be absent). Unknown keys are errors, as in ferry.toml.
void apply_profile(SendOptions& o) {
    const bool explicit_profile = !o.profile.empty();
    const fs::path path = explicit_profile ? expand_home(o.profile) : default_profile();
    if (path.empty() || (!explicit_profile && !fs::exists(path))) return;
    toml::table t;
    try {
        t = toml::parse_file(path.string());
    } catch (const toml::parse_error& e) {
        throw UsageError(fmt::format("{}:{}: {}", path.string(), e.source().begin.line, e.description()));
    }
    static constexpr std::string_view kKeys[] = {"server", "tls", "insecure", "ca_file", "user", "password_file",
                                                 "from", "helo"};
    for (const auto& [key, node] : t) {
        if (std::find(std::begin(kKeys), std::end(kKeys), key.str()) == std::end(kKeys))
            throw UsageError(fmt::format("{}:{}: {}: unknown key", path.string(), key.source().begin.line, key.str()));
        if (key.str() == "insecure") {
            if (!node.is_boolean()) throw UsageError(fmt::format("{}: insecure: expected true or false", path.string()));
            o.insecure = o.insecure || node.as_boolean()->get();   // --no-insecure (o.verify) wins later
            continue;
        }
        if (!node.is_string()) throw UsageError(fmt::format("{}: {}: expected a string", path.string(), key.str()));
        const std::string& v = node.as_string()->get();
        std::string* field = key.str() == "server"          ? &o.server
                             : key.str() == "tls"           ? &o.tls
                             : key.str() == "ca_file"       ? &o.ca_file
                             : key.str() == "user"          ? &o.user
                             : key.str() == "password_file" ? &o.password_file
                             : key.str() == "from"          ? &o.from
                                                            : &o.helo;
        if (!field->empty()) continue;   // given on the command line
        // Paths in the profile are relative to its folder, as in ferry.toml.
        const bool is_path = key.str() == "password_file" || key.str() == "ca_file";
        *field = is_path && !v.starts_with("~/") && fs::path(v).is_relative() ? (path.parent_path() / v).string() : v;
    }
}

mime::Address address_or_throw(const std::string& text, const char* option) {
    std::string why;
    auto a = mime::parse_address_argument(text, why);
    if (!a) throw UsageError(fmt::format("{} \"{}\": {}", option, text, why));
    return *a;
}

std::string domain_of(const std::string& address) { return address.substr(address.rfind('@') + 1); }

std::string host_name() {
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) == 0 && buf[0] != '\0' && std::string_view(buf).find('.') != std::string_view::npos)
        return buf;
    return "localhost";
}

struct Server {
    std::string host;
    std::uint16_t port = 0;
};

// HOST, HOST:PORT, [IPv6] or [IPv6]:PORT, read as [[listener]] and relay_host addresses are.
Server parse_server(const std::string& text, std::uint16_t default_port) {
    config::HostPort hp;
    if (const std::string why = config::split_host_port(text, false, false, hp); !why.empty())
        throw UsageError("--server \"" + text + "\": " + why);
    if (hp.port && *hp.port == 0) throw UsageError("--server \"" + text + "\": the port must be 1-65535");
    return Server{hp.host, hp.port ? static_cast<std::uint16_t>(*hp.port) : default_port};
}

// The composed message as the SMTP client sends messages: from a file descriptor (an anonymous memory file).
int message_fd(const std::string& message) {
    const int fd = ::memfd_create("ferry-send", MFD_CLOEXEC);
    if (fd < 0) throw std::runtime_error(std::string("memfd_create: ") + std::strerror(errno));
    if (const auto ec = util::write_all(fd, message)) {
        ::close(fd);
        throw std::runtime_error("writing the message: " + ec.message());
    }
    return fd;
}

int exit_for(const delivery::DeliveryResult& r) {
    return r.kind == delivery::DeliveryResult::Kind::permanent || r.status.starts_with("5") ? kRefused : kTempFail;
}

int compose_and_send(SendOptions o) {
    apply_profile(o);
    if (o.tls.empty()) o.tls = "starttls";
    if (o.tls != "starttls" && o.tls != "implicit" && o.tls != "none")
        throw UsageError("tls must be starttls, implicit or none, not \"" + o.tls + "\"");
    if (o.verify) o.insecure = false;
    // The name goes into EHLO as it is: a CR or LF in it would add SMTP commands.
    if (!o.helo.empty())
        if (const std::string why = smtp::domain_error(o.helo); !why.empty())
            throw UsageError("--helo \"" + o.helo + "\" is not a host name (" + why + ")");
    if (o.from.empty()) throw UsageError("--from is required (or `from` in the profile)");
    if (o.to.empty() && o.cc.empty() && o.bcc.empty()) throw UsageError("no recipient: give --to, --cc or --bcc");
    if (o.body && !o.body_file.empty()) throw UsageError("--body and --body-file exclude each other");

    mime::Composition c;
    c.from = address_or_throw(o.from, "--from");
    for (const auto& t : o.to) c.to.push_back(address_or_throw(t, "--to"));
    for (const auto& t : o.cc) c.cc.push_back(address_or_throw(t, "--cc"));
    std::vector<mime::Address> bcc;
    for (const auto& t : o.bcc) bcc.push_back(address_or_throw(t, "--bcc"));
    c.subject = o.subject;
    if (o.body) c.text = *o.body;
    else if (!o.body_file.empty()) c.text = read_file(expand_home(o.body_file), "--body-file");
    else c.text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    if (!o.html_file.empty()) c.html = read_file(expand_home(o.html_file), "--html");
    if (!o.attach.empty()) {
        std::string error;
        auto types = mime::MediaTypes::load(mime::kDebianMimeTypes, error);
        if (!types) {
            std::cerr << "ferry send: " << error << " (attachments are sent as application/octet-stream)\n";
            types = mime::MediaTypes::parse("");
        }
        for (const auto& file : o.attach) {
            const fs::path path = expand_home(file);
            c.attachments.push_back(mime::Attachment{path.filename().string(), types->type_for(path.filename().string()),
                                                     read_file(path, "--attach")});
        }
    }
    for (const auto& h : o.headers) {
        std::string why;
        auto field = mime::parse_header_argument(h, why);
        if (!field) throw UsageError("--header \"" + h + "\": " + why);
        c.extra_headers.push_back(std::move(*field));
    }
    c.date = std::time(nullptr);
    c.message_id = util::make_message_id(c.date, domain_of(c.from.address));
    c.boundary_token = util::random_hex(12);
    mime::Composed composed = mime::compose(c);
    if (!composed.ok()) throw UsageError(composed.error);
    if (o.dry_run) {
        std::cout << composed.message;
        return 0;
    }

    // Credentials: never on the command line, where other users could read them in the process list.
    std::string password;
    if (!o.user.empty()) {
        if (o.tls == "none") throw UsageError("--user needs TLS: the password would cross the network in the clear");
        if (!o.password_file.empty()) {
            std::istringstream lines(read_file(expand_home(o.password_file), "--password-file"));
            std::getline(lines, password);
            if (!password.empty() && password.back() == '\r') password.pop_back();
        } else if (const char* env = std::getenv("FERRY_PASSWORD")) {
            password = env;
        } else {
            throw UsageError("--user needs a password: --password-file FILE or $FERRY_PASSWORD");
        }
    }

    const Server server = parse_server(o.server.empty() ? "localhost" : o.server,
                                       o.tls == "implicit" ? 465 : o.tls == "starttls" ? 587 : 25);
    auto tls = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    tls->set_verify_mode(asio::ssl::verify_none);   // the result is checked after the handshake (verify_certificate)
    if (!o.ca_file.empty()) {
        boost::system::error_code ec;
        tls->load_verify_file(expand_home(o.ca_file).string(), ec);
        if (ec) throw UsageError("--ca-file " + o.ca_file + ": " + ec.message());
    } else {
        tls->set_default_verify_paths();
    }
    delivery::ClientSettings settings;
    settings.helo_name = o.helo.empty() ? host_name() : o.helo;
    settings.connect_timeout = std::chrono::seconds(30);
    settings.command_timeout = std::chrono::minutes(5);
    settings.data_timeout = std::chrono::minutes(10);
    settings.tls = tls;
    settings.require_tls = o.tls != "none";
    settings.implicit_tls = o.tls == "implicit";
    settings.verify_certificate = o.tls != "none" && !o.insecure;
    settings.auth_user = o.user;
    settings.auth_password = password;

    std::vector<delivery::OutboundRecipient> recipients;
    for (const auto* list : {&c.to, &c.cc, &bcc})
        for (const auto& a : *list) recipients.push_back(delivery::OutboundRecipient{a.address, "", ""});
    delivery::OutboundMessage message;
    auto envelope = std::make_shared<spool::Envelope>();
    envelope->queue_id = "send";
    envelope->sender = c.from.address;
    envelope->smtputf8 = false;   // compose refuses non-ASCII addresses: the message is 7-bit ASCII
    message.envelope = std::move(envelope);
    message.fd = message_fd(composed.message);
    message.content_length = composed.message.size();
    // The memory file holds the message now; the session need not keep two more copies of the attachments.
    composed.message = std::string();
    c.attachments = {};

    asio::io_context io;
    int status = kTempFail;
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
        boost::system::error_code ec;
        asio::ip::tcp::resolver resolver(io);
        const auto endpoints = co_await resolver.async_resolve(server.host, std::to_string(server.port),
                                                              asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
            std::cerr << "ferry send: cannot resolve " << server.host << ": " << ec.message() << "\n";
            co_return;
        }
        std::optional<delivery::DeliveryResult> failed;
        for (const auto& e : endpoints) {
            delivery::SmtpClient client(io.get_executor(), settings);
            failed = co_await client.open(server.host, e.endpoint().address().to_string(), server.port,
                                          o.tls == "starttls");
            if (failed) {
                if (client.tls_failed() || failed->status.starts_with("5")) break;   // another address would not help
                continue;
            }
            const auto results = co_await client.send(message, recipients);
            co_await client.quit();
            bool all_sent = true, any_permanent = false;
            for (std::size_t i = 0; i < results.size(); ++i) {
                const auto& r = results[i];
                if (r.kind == delivery::DeliveryResult::Kind::sent) continue;
                all_sent = false;
                any_permanent = any_permanent || exit_for(r) == kRefused;
                std::cerr << "ferry send: " << (exit_for(r) == kRefused ? "refused " : "not accepted for now ")
                          << recipients[i].address << ": " << r.diagnostic << "\n";
            }
            if (all_sent)
                std::cout << "sent to " << recipients.size() << " recipient" << (recipients.size() == 1 ? "" : "s")
                          << " via " << client.peer() << ": " << results.front().diagnostic << "\n";
            status = all_sent ? 0 : any_permanent ? kRefused : kTempFail;
            co_return;
        }
        if (failed) {
            std::cerr << "ferry send: " << failed->diagnostic << "\n";
            status = exit_for(*failed);
        }
    }, [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
    });
    io.run();
    ::close(message.fd);
    return status;
}

}  // namespace

int run_send_command(SendOptions options) {
    try {
        return compose_and_send(std::move(options));
    } catch (const UsageError& e) {
        std::cerr << "ferry send: " << e.what() << "\n";
        return kUsage;
    } catch (const std::exception& e) {
        std::cerr << "ferry send: " << e.what() << "\n";
        return kTempFail;
    }
}

}  // namespace ferry::cli
