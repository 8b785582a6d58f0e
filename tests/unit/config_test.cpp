#include "config/config.hpp"

#include <gtest/gtest.h>

#include "temp_dir_test.hpp"

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ferry::config::Config;
using ferry::config::ConfigError;
using ferry::config::ListenerRole;

namespace {

class ConfigFileTest : public ferry::testing::TempDirTest {
protected:
    fs::path write(const std::string& name, const std::string& text) {
        fs::path p = dir_ / name;
        fs::create_directories(p.parent_path());
        std::ofstream(p) << text;
        return p;
    }

    Config load(const std::string& text) { return ferry::config::load_config(write("ferry.toml", text)); }

    // The message of the ConfigError `text` raises (fails the test when it loads).
    std::string error_of(const std::string& text) {
        fs::path p = write("ferry.toml", text);
        try {
            ferry::config::load_config(p);
        } catch (const ConfigError& e) {
            std::string msg = e.what();
            EXPECT_EQ(msg.find('\n'), std::string::npos) << "not one problem: " << msg;
            EXPECT_EQ(msg.rfind(p.string() + ":", 0), 0u) << "does not start with the file name: " << msg;
            return msg;
        }
        ADD_FAILURE() << "no ConfigError for:\n" << text;
        return {};
    }

    // Every problem ConfigError reports for `text`, one line each; what() is them joined by newlines.
    std::vector<std::string> errors_of(const std::string& text) {
        fs::path p = write("ferry.toml", text);
        try {
            ferry::config::load_config(p);
        } catch (const ConfigError& e) {
            std::string joined;
            for (const std::string& line : e.problems()) {
                EXPECT_EQ(line.find('\n'), std::string::npos) << "not one line: " << line;
                joined += (joined.empty() ? "" : "\n") + line;
            }
            EXPECT_EQ(joined, e.what());
            return e.problems();
        }
        ADD_FAILURE() << "no ConfigError for:\n" << text;
        return {};
    }

    std::string at_line(int line) { return (dir_ / "ferry.toml").string() + ":" + std::to_string(line) + ": "; }

};

const std::string kListen = "[[listen]]\naddress = \"127.0.0.1:2525\"\n";

}  // namespace

// ---------------------------------------------------------------------------------------------------------

TEST_F(ConfigFileTest, DefaultsWithOnlyAListener) {
    Config c = load(kListen);
    EXPECT_EQ(c.source, dir_ / "ferry.toml");
    char host[256] = {};
    ASSERT_EQ(::gethostname(host, sizeof host - 1), 0);
    EXPECT_EQ(c.hostname, host);
    EXPECT_EQ(c.data_dir, dir_ / "var");
    EXPECT_TRUE(c.data_dir.is_absolute());
    EXPECT_EQ(c.user, "");
    EXPECT_FALSE(c.run_as_root);
    EXPECT_EQ(c.log_level, "info");
    ASSERT_EQ(c.listeners.size(), 1u);
    EXPECT_EQ(c.listeners[0].host, "127.0.0.1");
    EXPECT_EQ(c.listeners[0].port, 2525);
    EXPECT_EQ(c.listeners[0].role, ListenerRole::mx);
    EXPECT_FALSE(c.tls.has_value());
    EXPECT_TRUE(c.local_domains.empty());
    EXPECT_TRUE(c.aliases.empty());
    EXPECT_EQ(c.limits.command_line_length, 512u);
    EXPECT_EQ(c.limits.text_line_length, 1000u);
    EXPECT_EQ(c.limits.message_size, 50ull << 20);
    EXPECT_EQ(c.limits.recipients, 100u);
    EXPECT_EQ(c.limits.connections, 1000u);
    EXPECT_EQ(c.limits.connections_per_ip, 50u);
    EXPECT_EQ(c.limits.errors, 10u);
    EXPECT_EQ(c.limits.command_timeout, 5min);
    EXPECT_EQ(c.limits.data_timeout, 10min);
    EXPECT_EQ(c.limits.min_data_rate, 500u);
    EXPECT_FALSE(c.dns.resolver.has_value());
    EXPECT_EQ(c.dns.timeout, 5s);
    EXPECT_EQ(c.outbound.port, 25);
    EXPECT_EQ(c.outbound.relay_host, "");
    EXPECT_EQ(c.queue.min_retry, 5min);
    EXPECT_EQ(c.queue.max_retry, 1h);
    EXPECT_EQ(c.queue.lifetime, 24h * 5);
    EXPECT_EQ(c.queue.delivery_workers, 2u);
    EXPECT_EQ(c.spool_dir(), dir_ / "var" / "spool");
    EXPECT_EQ(c.accounts_file(), dir_ / "var" / "accounts");
}

TEST_F(ConfigFileTest, EveryKeyParsed) {
    write("tls/cert.pem", "cert");
    write("tls/key.pem", "key");
    Config c = load(R"(
hostname = "mx.example.test"
data_dir = "/srv/ferry/data/"
user = "ferry"
run_as_root = true
log_level = "debug"

[[listen]]
address = "0.0.0.0:25"
role = "mx"
[[listen]]
address = "[::1]:587"
role = "submission"
[[listen]]
address = "127.0.0.1:0"
role = "submissions"

[tls]
certificate = "tls/cert.pem"
private_key = "tls/key.pem"

[domains]
local = ["Example.TEST", "second.example", "example.test"]

[limits]
command_line_length = 2048
text_line_length = 1000
recipients = 3
connections = 20
connections_per_ip = 2
errors = 4
message_size = "64k"
command_timeout = "30s"
data_timeout = "250ms"
min_data_rate = 2000

[dns]
resolver = "127.0.0.1:5353"
timeout = "2s"

[outbound]
port = 2526
relay_host = "smtp.example.net:587"

[queue]
min_retry = "1s"
max_retry = "2m"
lifetime = "1h"
delivery_workers = 8

[aliases]
"Sales@Example.test" = ["alice@EXAMPLE.test", "Bob@example.test"]
"postmaster@example.test" = "alice@example.test"
)");
    EXPECT_EQ(c.hostname, "mx.example.test");
    EXPECT_EQ(c.data_dir, fs::path("/srv/ferry/data"));
    EXPECT_EQ(c.user, "ferry");
    EXPECT_TRUE(c.run_as_root);
    EXPECT_EQ(c.log_level, "debug");
    ASSERT_EQ(c.listeners.size(), 3u);
    EXPECT_EQ(c.listeners[0].host, "0.0.0.0");
    EXPECT_EQ(c.listeners[0].port, 25);
    EXPECT_EQ(c.listeners[0].role, ListenerRole::mx);
    EXPECT_EQ(c.listeners[1].host, "::1");
    EXPECT_EQ(c.listeners[1].port, 587);
    EXPECT_EQ(c.listeners[1].role, ListenerRole::submission);
    EXPECT_EQ(c.listeners[2].port, 0);
    EXPECT_EQ(c.listeners[2].role, ListenerRole::submissions);
    ASSERT_TRUE(c.tls.has_value());
    EXPECT_EQ(c.tls->certificate, dir_ / "tls" / "cert.pem");
    EXPECT_EQ(c.tls->private_key, dir_ / "tls" / "key.pem");
    EXPECT_EQ(c.local_domains, (std::vector<std::string>{"example.test", "second.example"}));
    EXPECT_EQ(c.limits.command_line_length, 2048u);
    EXPECT_EQ(c.limits.text_line_length, 1000u);
    EXPECT_EQ(c.limits.recipients, 3u);
    EXPECT_EQ(c.limits.connections, 20u);
    EXPECT_EQ(c.limits.connections_per_ip, 2u);
    EXPECT_EQ(c.limits.errors, 4u);
    EXPECT_EQ(c.limits.message_size, 65536u);
    EXPECT_EQ(c.limits.command_timeout, 30s);
    EXPECT_EQ(c.limits.data_timeout, 250ms);
    EXPECT_EQ(c.limits.min_data_rate, 2000u);
    EXPECT_EQ(c.dns.resolver, "127.0.0.1:5353");
    EXPECT_EQ(c.dns.timeout, 2s);
    EXPECT_EQ(c.outbound.port, 2526);
    EXPECT_EQ(c.outbound.relay_host, "smtp.example.net:587");
    EXPECT_EQ(c.queue.min_retry, 1s);
    EXPECT_EQ(c.queue.max_retry, 2min);
    EXPECT_EQ(c.queue.lifetime, 1h);
    EXPECT_EQ(c.queue.delivery_workers, 8u);
    ASSERT_EQ(c.aliases.size(), 2u);
    EXPECT_EQ(c.aliases.at("sales@example.test"),
              (std::vector<std::string>{"alice@example.test", "Bob@example.test"}));
    EXPECT_EQ(c.aliases.at("postmaster@example.test"), (std::vector<std::string>{"alice@example.test"}));
}

// Each listener counts its own sessions; [limits] gives the default of those without their own.
TEST_F(ConfigFileTest, ListenerConnectionLimitsOverrideTheLimitsDefaults) {
    Config c = load(R"([[listen]]
address = "127.0.0.1:25"
connections = 20
connections_per_ip = 3
[[listen]]
address = "127.0.0.1:587"
role = "submission"
[limits]
connections = 300
connections_per_ip = 7
)");
    ASSERT_EQ(c.listeners.size(), 2u);
    EXPECT_EQ(c.connections_of(c.listeners[0]), 20u);
    EXPECT_EQ(c.connections_per_ip_of(c.listeners[0]), 3u);
    EXPECT_EQ(c.connections_of(c.listeners[1]), 300u);
    EXPECT_EQ(c.connections_per_ip_of(c.listeners[1]), 7u);
    EXPECT_EQ(error_of(kListen + "connections = 0\n"),
              at_line(3) + "listen[0].connections: 0 is too small (expected a positive integer)");
    EXPECT_EQ(error_of(kListen + "connections_per_ip = \"5\"\n"),
              at_line(3) + "listen[0].connections_per_ip: expected a positive integer, got a string");
}

TEST_F(ConfigFileTest, MessageSizeAsInteger) {
    Config c = load(kListen + "[limits]\nmessage_size = 1000000\n");
    EXPECT_EQ(c.limits.message_size, 1000000u);
}

TEST_F(ConfigFileTest, RelativePathsResolveAgainstTheFilesFolder) {
    write("sub/cert.pem", "c");
    write("sub/key.pem", "k");
    fs::path p = write("sub/conf/ferry.toml", "data_dir = \"../data\"\n" + kListen +
                                         "[tls]\ncertificate = \"../cert.pem\"\nprivate_key = \"../key.pem\"\n");
    Config c = ferry::config::load_config(p);
    EXPECT_EQ(c.data_dir, dir_ / "sub" / "data");
    EXPECT_TRUE(c.data_dir.is_absolute());
    EXPECT_EQ(c.tls->certificate, dir_ / "sub" / "cert.pem");
    EXPECT_EQ(c.tls->private_key, dir_ / "sub" / "key.pem");
}

TEST_F(ConfigFileTest, RelativeConfigPathResolvesAgainstTheCurrentDirectory) {
    write("here/ferry.toml", "data_dir = \"spool-here\"\n" + kListen);
    fs::path old = fs::current_path();
    fs::current_path(dir_);
    Config c;
    EXPECT_NO_THROW(c = ferry::config::load_config("here/ferry.toml"));
    fs::current_path(old);
    EXPECT_EQ(c.data_dir, dir_ / "here" / "spool-here");
}

// --- errors --------------------------------------------------------------------------------------------------

TEST_F(ConfigFileTest, UnknownKeyNamesKeyAndLine) {
    std::string msg = error_of(kListen + "[limits]\nrecipients = 5\nbogus = 1\n");
    EXPECT_EQ(msg, at_line(5) + "limits.bogus: unknown key");
    msg = error_of("hostnme = \"x.example\"\n" + kListen);
    EXPECT_EQ(msg, at_line(1) + "hostnme: unknown key");
    msg = error_of(kListen + "port = 25\n");
    EXPECT_EQ(msg, at_line(3) + "listen[0].port: unknown key");
    msg = error_of(kListen + "[cache]\nsize = 1\n");
    EXPECT_EQ(msg, at_line(3) + "cache: unknown key");
}

TEST_F(ConfigFileTest, WrongType) {
    std::string msg = error_of("hostname = 5\n" + kListen);
    EXPECT_EQ(msg, at_line(1) + "hostname: expected a string, got an integer");
    msg = error_of(kListen + "[limits]\nrecipients = \"100\"\n");
    EXPECT_EQ(msg, at_line(4) + "limits.recipients: expected a positive integer, got a string");
    msg = error_of(kListen + "[domains]\nlocal = \"example.test\"\n");
    EXPECT_NE(msg.find(at_line(4) + "domains.local: expected an array"), std::string::npos) << msg;
    msg = error_of("tls = 1\n" + kListen);
    EXPECT_EQ(msg, at_line(1) + "tls: expected a table, got an integer");
    msg = error_of("[listen]\naddress = \"127.0.0.1:25\"\n");
    EXPECT_NE(msg.find(":1: listen: expected [[listen]] tables"), std::string::npos) << msg;
    msg = error_of(kListen + "[limits]\ncommand_timeout = 30\n");
    EXPECT_EQ(msg, at_line(4) + "limits.command_timeout: expected a duration string like \"30s\", got an integer");
}

TEST_F(ConfigFileTest, BadListenAddress) {
    std::string msg = error_of("[[listen]]\naddress = \"localhost\"\n");
    EXPECT_EQ(msg, at_line(2) + "listen[0].address: \"localhost\" is not host:port (the port is missing)");
    msg = error_of("[[listen]]\naddress = \"::1:25\"\n");
    EXPECT_NE(msg.find(":2: listen[0].address: \"::1:25\" is not host:port (write IPv6 addresses in brackets"),
              std::string::npos)
        << msg;
    msg = error_of(kListen + "[[listen]]\naddress = \"mail.example:25\"\n");
    EXPECT_EQ(msg, at_line(4) + "listen[1].address: \"mail.example:25\" is not host:port (the host must be an IP address)");
    msg = error_of("[[listen]]\naddress = \"[127.0.0.1]:25\"\n");
    EXPECT_NE(msg.find(":2: listen[0].address:"), std::string::npos) << msg;
    msg = error_of(kListen + kListen);
    EXPECT_EQ(msg, at_line(4) + "listen[1].address: \"127.0.0.1:2525\" is already used by another listener");
}

TEST_F(ConfigFileTest, BadPort) {
    std::string msg = error_of("\n\n\n\n\n[[listen]]\naddress = \"127.0.0.1:99999\"\n");
    EXPECT_EQ(msg, at_line(7) + "listen[0].address: \"127.0.0.1:99999\" is not host:port (port must be 0-65535)");
    msg = error_of("[[listen]]\naddress = \"[::1]:x\"\n");
    EXPECT_EQ(msg, at_line(2) + "listen[0].address: \"[::1]:x\" is not host:port (port must be 0-65535)");
    msg = error_of(kListen + "[outbound]\nport = 0\n");
    EXPECT_EQ(msg, at_line(4) + "outbound.port: 0 is out of range (expected a port number 1-65535)");
    msg = error_of(kListen + "[dns]\nresolver = \"127.0.0.1:0\"\n");
    EXPECT_EQ(msg, at_line(4) + "dns.resolver: \"127.0.0.1:0\" is not host:port (port must be 1-65535)");
}

// Found by fuzz_config: data_dir = "/\u0000d_line_lenvar/lib/ferry" loaded, and open(2) would have used "/".
TEST_F(ConfigFileTest, NulCharacterInStringRejected) {
    std::string msg = error_of("data_dir = \"/\\u0000var\"\n" + kListen);
    EXPECT_EQ(msg, at_line(1) + "data_dir: contains a NUL character (\\u0000)");
    msg = error_of("[[listen]]\naddress = \"127.0.0.1\\u0000x:25\"\n");
    EXPECT_EQ(msg, at_line(2) + "listen[0].address: contains a NUL character (\\u0000)");
    msg = error_of(kListen + "[dns]\nresolver = \"127.0.0.1:53\\u0000\"\n");
    EXPECT_EQ(msg, at_line(4) + "dns.resolver: contains a NUL character (\\u0000)");
}

TEST_F(ConfigFileTest, BadRoleAndLogLevel) {
    std::string msg = error_of("[[listen]]\naddress = \"127.0.0.1:25\"\nrole = \"smtp\"\n");
    EXPECT_EQ(msg, at_line(3) + "listen[0].role: \"smtp\" is not a role (use mx, submission or submissions)");
    msg = error_of("log_level = \"verbose\"\n" + kListen);
    EXPECT_NE(msg.find(at_line(1) + "log_level: \"verbose\" is not a log level"), std::string::npos) << msg;
}

TEST_F(ConfigFileTest, NoListener) {
    std::string msg = error_of("hostname = \"mx.example.test\"\n");
    EXPECT_EQ(msg, (dir_ / "ferry.toml").string() + ": listen: at least one [[listen]] table is required");
    msg = error_of("[[listen]]\nrole = \"mx\"\n");
    EXPECT_NE(msg.find(":1: listen[0].address: missing"), std::string::npos) << msg;
}

TEST_F(ConfigFileTest, BadDuration) {
    std::string msg = error_of(kListen + "[queue]\nmin_retry = \"5x\"\n");
    EXPECT_EQ(msg, at_line(4) + "queue.min_retry: \"5x\" is not a duration (unknown unit \"x\": use ms, s, m, h or d)");
    msg = error_of(kListen + "[dns]\ntimeout = \"5\"\n");
    EXPECT_EQ(msg, at_line(4) + "dns.timeout: \"5\" is not a duration (missing unit: ms, s, m, h or d)");
    msg = error_of(kListen + "[limits]\nmin_data_rate = 0\n");
    EXPECT_NE(msg.find(at_line(4) + "limits.min_data_rate: "), std::string::npos) << msg;
    msg = error_of("user = \"\"\n" + kListen);
    EXPECT_EQ(msg, at_line(1) + "user: must not be empty (leave the key out to keep the user)");
    msg = error_of(kListen + "[limits]\ndata_timeout = \"0s\"\n");
    EXPECT_EQ(msg, at_line(4) + "limits.data_timeout: \"0s\" must be longer than zero");
    msg = error_of(kListen + "[queue]\nlifetime = \"1500ms\"\n");
    EXPECT_EQ(msg, at_line(4) + "queue.lifetime: \"1500ms\" is not a whole number of seconds");
    msg = error_of(kListen + "[queue]\nmin_retry = \"2h\"\nmax_retry = \"1h\"\n");
    EXPECT_NE(msg.find(at_line(5) + "queue.max_retry: max_retry (3600s) is shorter than min_retry"), std::string::npos)
        << msg;
}

TEST_F(ConfigFileTest, BadSize) {
    std::string msg = error_of(kListen + "[limits]\nmessage_size = \"50X\"\n");
    EXPECT_EQ(msg, at_line(4) + "limits.message_size: \"50X\" is not a size (unknown unit \"X\": use k, M, G (or KiB, MiB, GiB))");
    msg = error_of(kListen + "[limits]\nmessage_size = -1\n");
    EXPECT_NE(msg.find(at_line(4) + "limits.message_size:"), std::string::npos) << msg;
    msg = error_of(kListen + "[limits]\nmessage_size = 1.5\n");
    EXPECT_NE(msg.find(at_line(4) + "limits.message_size: expected octets or a size string"), std::string::npos) << msg;
}

TEST_F(ConfigFileTest, MissingTlsFile) {
    write("cert.pem", "c");
    std::string msg = error_of(kListen + "[tls]\ncertificate = \"cert.pem\"\nprivate_key = \"nokey.pem\"\n");
    EXPECT_EQ(msg, at_line(5) + "tls.private_key: cannot read \"" + (dir_ / "nokey.pem").string() +
                       "\": No such file or directory");
    msg = error_of(kListen + "[tls]\ncertificate = \"cert.pem\"\n");
    EXPECT_NE(msg.find(at_line(3) + "tls.private_key: missing"), std::string::npos) << msg;
    msg = error_of(kListen + "[tls]\ncertificate = \".\"\nprivate_key = \"cert.pem\"\n");
    EXPECT_NE(msg.find(at_line(4) + "tls.certificate:"), std::string::npos) << msg;
    EXPECT_NE(msg.find("is not a regular file"), std::string::npos) << msg;
}

TEST_F(ConfigFileTest, TlsVersionAndCiphers) {
    std::string msg = error_of(kListen + "[tls]\nmin_version = \"1.1\"\n");
    EXPECT_EQ(msg, at_line(4) + "tls.min_version: \"1.1\" is not \"1.2\" or \"1.3\"");
    msg = error_of(kListen + "[tls]\nciphers = \"NOT-A-CIPHER\"\n");
    EXPECT_EQ(msg, at_line(4) + "tls.ciphers: \"NOT-A-CIPHER\" selects no cipher OpenSSL knows");
    // Both problems: the certificate is missing, and the key named does not exist (only the first was reported).
    EXPECT_EQ(errors_of(kListen + "[tls]\nprivate_key = \"key.pem\"\n"),
              (std::vector<std::string>{
                  at_line(3) + "tls.certificate: missing (certificate and private_key go together; omit both for a "
                               "self-signed certificate)",
                  at_line(4) + "tls.private_key: cannot read \"" + (dir_ / "key.pem").string() +
                      "\": No such file or directory"}));
    // Without certificate and key: a self-signed certificate, with these settings.
    write("ferry.toml", kListen + "[tls]\nmin_version = \"1.3\"\nciphers = \"ECDHE-RSA-AES128-GCM-SHA256\"\n");
    const auto c = ferry::config::load_config(dir_ / "ferry.toml");
    ASSERT_TRUE(c.tls.has_value());
    EXPECT_TRUE(c.tls->certificate.empty());
    EXPECT_EQ(c.tls->min_version, "1.3");
    EXPECT_EQ(c.tls->ciphers, "ECDHE-RSA-AES128-GCM-SHA256");
}

TEST_F(ConfigFileTest, BadDomain) {
    std::string msg = error_of(kListen + "[domains]\nlocal = [\"example.test\", \"bad..example\"]\n");
    EXPECT_EQ(msg, at_line(4) + "domains.local[1]: \"bad..example\" is not a domain name (empty label)");
    msg = error_of("hostname = \"-mx.example\"\n" + kListen);
    EXPECT_NE(msg.find(at_line(1) + "hostname: \"-mx.example\" is not a host name"), std::string::npos) << msg;
}

TEST_F(ConfigFileTest, BadAliasAddress) {
    std::string msg = error_of(kListen + "[aliases]\n\"sales@example.test\" = [\"alice@example.test\", \"bob\"]\n");
    EXPECT_EQ(msg, at_line(4) + "aliases.\"sales@example.test\"[1]: \"bob\" is not an address (expected localpart@domain)");
    msg = error_of(kListen + "[aliases]\n\"sales example@example.test\" = \"alice@example.test\"\n");
    EXPECT_EQ(msg, at_line(4) + "aliases.\"sales example@example.test\": \"sales example@example.test\" is not an "
                                "address (space in the local part)");
    msg = error_of(kListen + "[aliases]\n\"a@example.test\" = \"<b@example.test>\"\n");
    EXPECT_NE(msg.find(at_line(4) + "aliases.\"a@example.test\": \"<b@example.test>\" is not an address"),
              std::string::npos)
        << msg;
    msg = error_of(kListen + "[aliases]\n\"a@example.test\" = []\n");
    EXPECT_EQ(msg, at_line(4) + "aliases.\"a@example.test\": lists no target addresses");
    msg = error_of(kListen + "[aliases]\n\"a@example.test\" = \"b@x.test\"\n\"A@Example.Test\" = \"c@x.test\"\n");
    EXPECT_NE(msg.find(at_line(5) + "aliases.\"A@Example.Test\": duplicate alias (same address as line 4"),
              std::string::npos)
        << msg;
    msg = error_of(kListen + "[aliases]\n\"a@example.test\" = 5\n");
    EXPECT_EQ(msg, at_line(4) + "aliases.\"a@example.test\": expected an array of addresses, got an integer");
}

TEST_F(ConfigFileTest, LimitsUnderRfcMinimum) {
    std::string msg = error_of(kListen + "[limits]\ncommand_line_length = 511\n");
    EXPECT_EQ(msg, at_line(4) + "limits.command_line_length: 511 is too small (expected an integer of at least 512, "
                                "the minimum of RFC 5321 4.5.3.1)");
    msg = error_of(kListen + "[limits]\ntext_line_length = 998\n");
    EXPECT_NE(msg.find(at_line(4) + "limits.text_line_length: 998 is too small"), std::string::npos) << msg;
    msg = error_of(kListen + "[limits]\nrecipients = 0\n");
    EXPECT_EQ(msg, at_line(4) + "limits.recipients: 0 is too small (expected a positive integer)");
    msg = error_of(kListen + "[queue]\ndelivery_workers = 65\n");
    EXPECT_EQ(msg, at_line(4) + "queue.delivery_workers: 65 is out of range (expected an integer 1-64)");
}

TEST_F(ConfigFileTest, TomlSyntaxError) {
    std::string msg = error_of(kListen + "[limits\nrecipients = 5\n");
    EXPECT_NE(msg.find(at_line(3) + "TOML syntax error: "), std::string::npos) << msg;
    msg = error_of("hostname = \"unterminated\n" + kListen);
    EXPECT_NE(msg.find(at_line(1) + "TOML syntax error: "), std::string::npos) << msg;
    msg = error_of(kListen + "address = \"again\"\n");   // duplicate key in [[listen]]
    EXPECT_NE(msg.find(at_line(3) + "TOML syntax error: "), std::string::npos) << msg;
}

// --- every problem at once ------------------------------------------------------------------------------------

TEST_F(ConfigFileTest, ReportsEveryProblemInFileOrder) {
    // Three independent problems in three sections, and the toml table order (alphabetical) is not file order.
    const auto lines = errors_of(kListen +
                                 "[queue]\nmin_retry = \"5x\"\n"
                                 "[limits]\nrecipients = 0\nbogus = 1\n"
                                 "[aliases]\n\"a@example.test\" = \"bob\"\n");
    EXPECT_EQ(lines, (std::vector<std::string>{
                         at_line(4) + "queue.min_retry: \"5x\" is not a duration (unknown unit \"x\": use ms, s, m, h or d)",
                         at_line(6) + "limits.recipients: 0 is too small (expected a positive integer)",
                         at_line(7) + "limits.bogus: unknown key",
                         at_line(9) + "aliases.\"a@example.test\": \"bob\" is not an address (expected localpart@domain)",
                     }));
}

TEST_F(ConfigFileTest, ReportsEachBadElementOfAnArray) {
    EXPECT_EQ(errors_of(kListen + "[domains]\nlocal = [\"a..b\", \"ok.test\", \"-c.test\"]\n"),
              (std::vector<std::string>{at_line(4) + "domains.local[0]: \"a..b\" is not a domain name (empty label)",
                                        at_line(4) + "domains.local[2]: \"-c.test\" is not a domain name (label starts "
                                                     "or ends with '-')"}));
    EXPECT_EQ(errors_of(kListen + "[aliases]\n\"s@x.test\" = [\"b\", \"c@x.test\", \"d@\"]\n").size(), 2u);
    EXPECT_EQ(errors_of("[[listen]]\naddress = \"x\"\n[[listen]]\naddress = \"y:1\"\nrole = \"smtp\"\n").size(), 3u);
    EXPECT_EQ(errors_of(kListen + "[[dkim.key]]\nselector = \"s_1\"\n[[dkim.key]]\ndomain = \"a..b\"\n").size(), 4u);
}

// A refused value keeps its default for the rest of the reading, but checks across keys stand back: the operator
// sees the value's own problem, not what its default implies.
TEST_F(ConfigFileTest, NoFollowOnProblemFromARefusedValue) {
    EXPECT_EQ(errors_of(kListen + "[queue]\nmin_retry = \"2h\"\nmax_retry = \"soon\"\n"),
              (std::vector<std::string>{at_line(5) + "queue.max_retry: \"soon\" is not a duration (must start with a "
                                                     "number, e.g. \"30s\")"}));
    EXPECT_EQ(errors_of("[[listen]]\naddress = \"0.0.0.0:x\"\nplaintext_auth = true\n").size(), 1u);
    std::ofstream(dir_ / "pw") << "x\n";
    EXPECT_EQ(errors_of(kListen + "[outbound]\nrelay_host = \"bad host\"\nrelay_user = \"u\"\nrelay_password_file = \"pw\"\n")
                  .size(),
              1u);
}

TEST_F(ConfigFileTest, ProblemWithoutLineComesLast) {
    EXPECT_EQ(errors_of("hostname = \"-x\"\n"),
              (std::vector<std::string>{at_line(1) + "hostname: \"-x\" is not a host name (label starts or ends with '-')",
                                        (dir_ / "ferry.toml").string() + ": listen: at least one [[listen]] table is required"}));
}

TEST_F(ConfigFileTest, MissingFile) {
    fs::path p = dir_ / "nonexistent.toml";
    try {
        ferry::config::load_config(p);
        FAIL() << "loaded a missing file";
    } catch (const ConfigError& e) {
        EXPECT_EQ(std::string(e.what()), p.string() + ": cannot read: No such file or directory");
    }
}

TEST_F(ConfigFileTest, ParseConfigNamesTheOriginInErrors) {
    try {
        ferry::config::parse_config("[limits]\nbogus = 1\n", "ferry.toml");
        FAIL() << "no error";
    } catch (const ConfigError& e) {
        EXPECT_EQ(std::string(e.what()), "ferry.toml:2: limits.bogus: unknown key\n"
                                         "ferry.toml: listen: at least one [[listen]] table is required");
    }
}

// --- the embedded default and examples/ferry.toml -------------------------------------------------------------

// The built-in configuration is examples/ferry.toml compiled in (CMakeLists.txt generates its source at configure
// time): byte for byte the file, and it loads.
TEST(ConfigEmbeddedDefault, IsTheExamplesFileAndParses) {
    fs::path example = fs::path(__FILE__).parent_path() / ".." / ".." / "examples" / "ferry.toml";
    std::ifstream in(example);
    ASSERT_TRUE(in) << example;
    std::stringstream text;
    text << in.rdbuf();
    EXPECT_EQ(text.str(), ferry::config::embedded_default_config())
        << "the build embeds another text than examples/ferry.toml (re-run cmake)";
    Config c = ferry::config::parse_config(ferry::config::embedded_default_config(), example);
    EXPECT_EQ(c.hostname, "mx.example.test");
    EXPECT_EQ(c.listeners.size(), 1u);
}

TEST(ConfigEmbeddedDefault, LoadsAsExpected) {
    fs::path example = fs::path(__FILE__).parent_path() / ".." / ".." / "examples" / "ferry.toml";
    Config c = ferry::config::load_config(example);
    EXPECT_EQ(c.hostname, "mx.example.test");
    EXPECT_EQ(c.data_dir, (fs::absolute(fs::path(__FILE__)).parent_path() / ".." / ".." / "var").lexically_normal());
    ASSERT_EQ(c.listeners.size(), 1u);
    EXPECT_EQ(c.listeners[0].port, 2525);
    EXPECT_EQ(c.local_domains, std::vector<std::string>{"example.test"});
    EXPECT_EQ(c.aliases.at("sales@example.test"), std::vector<std::string>{"alice@example.test"});

    Config d = ferry::config::default_config();
    EXPECT_TRUE(d.source.empty());
    EXPECT_EQ(d.data_dir, fs::current_path() / "var");
    EXPECT_EQ(d.hostname, c.hostname);
}

// The rule "a config key is documented in docs/configuration.md and shown in examples/ferry.toml", checked over
// the keys the loader's tables allow, so a key added to a table without its documentation fails here.
TEST(ConfigKnownKeys, EachIsDocumentedAndInTheExample) {
    const fs::path root = fs::path(__FILE__).parent_path() / ".." / "..";
    auto read = [](const fs::path& p) {
        std::ifstream in(p);
        std::stringstream text;
        text << in.rdbuf();
        return text.str();
    };
    const std::string docs = read(root / "docs" / "configuration.md");
    const std::string example(ferry::config::embedded_default_config());
    ASSERT_FALSE(docs.empty());
    const std::vector<std::string> keys = ferry::config::known_keys();
    ASSERT_GT(keys.size(), 40u);
    for (std::size_t i = 0; i < keys.size(); ++i) {
        const std::string& key = keys[i];
        const bool is_table = i + 1 < keys.size() && (keys[i + 1].rfind(key + ".", 0) == 0 || keys[i + 1].rfind(key + "[]", 0) == 0);
        if (is_table || key == "aliases") {
            std::string table = key;
            for (auto at = table.find("[]"); at != std::string::npos; at = table.find("[]")) table.erase(at, 2);
            const bool array = keys[i + 1].rfind(key + "[]", 0) == 0;
            const std::string header = array ? "[[" + table + "]]" : "[" + table + "]";
            EXPECT_NE(example.find(header), std::string::npos) << header << " not in examples/ferry.toml";
            EXPECT_NE(docs.find(header), std::string::npos) << header << " not in docs/configuration.md";
            continue;
        }
        const std::string leaf = key.substr(key.find_last_of(".") == std::string::npos ? 0 : key.find_last_of(".") + 1);
        EXPECT_NE(docs.find("`" + leaf + "`"), std::string::npos) << key << " not in docs/configuration.md";
        EXPECT_TRUE(example.find("\n" + leaf + " = ") != std::string::npos || example.find("# " + leaf + " = ") != std::string::npos)
            << key << " not in examples/ferry.toml";
    }
}

// --- the shared parsers ----------------------------------------------------------------------------------------

TEST(ConfigParsers, Durations) {
    using ferry::config::parse_duration;
    EXPECT_EQ(parse_duration("250ms"), 250ms);
    EXPECT_EQ(parse_duration("30s"), 30s);
    EXPECT_EQ(parse_duration("5m"), 5min);
    EXPECT_EQ(parse_duration("1h"), 1h);
    EXPECT_EQ(parse_duration("5d"), 24h * 5);
    EXPECT_EQ(parse_duration("0s"), 0ms);
    for (const char* bad : {"", "s", "5", "5 s", "-5s", "5x", "1.5h", "5S", "99999999999999999999d", "106751991167301d"})
        EXPECT_THROW(parse_duration(bad), std::invalid_argument) << bad;
}

TEST(ConfigParsers, Sizes) {
    using ferry::config::parse_size;
    EXPECT_EQ(parse_size("1000"), 1000u);
    EXPECT_EQ(parse_size("64k"), 64u * 1024);
    EXPECT_EQ(parse_size("64K"), 64u * 1024);
    EXPECT_EQ(parse_size("50M"), 50ull << 20);
    EXPECT_EQ(parse_size("50MiB"), 50ull << 20);
    EXPECT_EQ(parse_size("50mib"), 50ull << 20);
    EXPECT_EQ(parse_size("1G"), 1ull << 30);
    EXPECT_EQ(parse_size("1GiB"), 1ull << 30);
    EXPECT_EQ(parse_size("2KiB"), 2048u);
    for (const char* bad : {"", "k", "50 M", "50X", "-1", "1.5M", "99999999999999999999", "17179869184G"})
        EXPECT_THROW(parse_size(bad), std::invalid_argument) << bad;
}

TEST_F(ConfigFileTest, OutboundKeys) {
    std::ofstream(dir_ / "relay-password") << "s3cret\n";
    Config c = load(kListen + R"([outbound]
relay_host = "[::1]:587"
relay_user = "me@example.net"
relay_password_file = "relay-password"
helo_name = "out.example.test"
connect_timeout = "2s"
command_timeout = "3s"
data_timeout = "4s"
max_connections = 7
max_connections_per_destination = 3
)");
    EXPECT_EQ(c.outbound.relay_user, "me@example.net");
    EXPECT_EQ(c.outbound.relay_password_file, dir_ / "relay-password");
    EXPECT_EQ(c.outbound.helo_name, "out.example.test");
    EXPECT_EQ(c.outbound.connect_timeout, 2s);
    EXPECT_EQ(c.outbound.command_timeout, 3s);
    EXPECT_EQ(c.outbound.data_timeout, 4s);
    EXPECT_EQ(c.outbound.max_connections, 7u);
    EXPECT_EQ(c.outbound.max_connections_per_destination, 3u);
    Config d = load(kListen);
    EXPECT_EQ(d.outbound.connect_timeout, 30s);
    EXPECT_EQ(d.outbound.max_connections_per_destination, 20u);
}

TEST_F(ConfigFileTest, OutboundRelayAuthErrors) {
    std::ofstream(dir_ / "pw") << "x\n";
    EXPECT_NE(error_of(kListen + "[outbound]\nrelay_host = \"r.example\"\nrelay_user = \"u\"\n")
                  .find("outbound.relay_password_file: missing"), std::string::npos);
    EXPECT_NE(error_of(kListen + "[outbound]\nrelay_user = \"u\"\nrelay_password_file = \"pw\"\n")
                  .find("outbound.relay_user: needs relay_host"), std::string::npos);
    EXPECT_NE(error_of(kListen + "[outbound]\nrelay_host = \"r.example\"\nrelay_user = \"u\"\nrelay_password_file = \"nope\"\n")
                  .find("is not a readable file"), std::string::npos);
    EXPECT_NE(error_of(kListen + "[outbound]\nhelo_name = \"bad name\"\n").find("outbound.helo_name"), std::string::npos);
    EXPECT_NE(error_of(kListen + "[outbound]\nmax_connections = 0\n").find("outbound.max_connections"), std::string::npos);
}

TEST_F(ConfigFileTest, OutboundSourceAddresses) {
    Config c = load(kListen + "[outbound]\nsource_address = \"192.0.2.25\"\nsource_address6 = \"2001:db8::25\"\n");
    EXPECT_EQ(c.outbound.source_address, "192.0.2.25");
    EXPECT_EQ(c.outbound.source_address6, "2001:db8::25");
    Config only4 = load(kListen + "[outbound]\nsource_address = \"127.0.0.2\"\n");
    EXPECT_EQ(only4.outbound.source_address, "127.0.0.2");
    EXPECT_EQ(only4.outbound.source_address6, "");   // IPv6 connections go unbound
    Config none = load(kListen);
    EXPECT_EQ(none.outbound.source_address, "");
    EXPECT_EQ(none.outbound.source_address6, "");
    EXPECT_EQ(load(kListen + "[outbound]\nsource_address = \"\"\n").outbound.source_address, "");
}

TEST_F(ConfigFileTest, OutboundSourceAddressErrors) {
    // An IP literal of the key's family; the error names the line, the key and the value.
    EXPECT_EQ(error_of(kListen + "[outbound]\nsource_address = \"::1\"\n"),
              at_line(4) + "outbound.source_address: \"::1\" is an IPv6 address (give it as source_address6)");
    EXPECT_EQ(error_of(kListen + "[outbound]\nsource_address6 = \"127.0.0.2\"\n"),
              at_line(4) + "outbound.source_address6: \"127.0.0.2\" is an IPv4 address (give it as source_address)");
    EXPECT_EQ(error_of(kListen + "[outbound]\nsource_address = \"mail.example.net\"\n"),
              at_line(4) + "outbound.source_address: \"mail.example.net\" is not an IPv4 address");
    EXPECT_EQ(error_of(kListen + "[outbound]\nsource_address6 = \"[2001:db8::25]\"\n"),
              at_line(4) + "outbound.source_address6: \"[2001:db8::25]\" is not an IPv6 address");
    EXPECT_NE(error_of(kListen + "[outbound]\nsource_address6 = \"::ffff:192.0.2.25\"\n").find("IPv4-mapped"),
              std::string::npos);
    EXPECT_NE(error_of(kListen + "[outbound]\nsource_address = \"192.0.2.25:25\"\n").find("outbound.source_address"),
              std::string::npos);
    EXPECT_NE(error_of(kListen + "[outbound]\nsource_address = 3\n").find("outbound.source_address"), std::string::npos);
}

// --- [mailauth] and [dkim] ---------------------------------------------------------------------------------

TEST_F(ConfigFileTest, MailauthDefaultsAndValues) {
    Config c = load("hostname = \"mx.example.test\"\n" + kListen);
    EXPECT_TRUE(c.mailauth.verify);
    EXPECT_TRUE(c.mailauth.dmarc_enforce);
    EXPECT_EQ(c.authserv_id(), "mx.example.test");
    EXPECT_EQ(c.mailauth.public_suffix_list, "/usr/share/publicsuffix/public_suffix_list.dat");
    write("psl.dat", "test\n");
    c = load(kListen + "[mailauth]\nverify = false\ndmarc_enforce = false\nauthserv_id = \"Auth.Example.TEST\"\n"
                       "public_suffix_list = \"psl.dat\"\n");
    EXPECT_FALSE(c.mailauth.verify);
    EXPECT_FALSE(c.mailauth.dmarc_enforce);
    EXPECT_EQ(c.authserv_id(), "auth.example.test");
    EXPECT_EQ(c.mailauth.public_suffix_list, dir_ / "psl.dat");
}

TEST_F(ConfigFileTest, MailauthErrors) {
    EXPECT_EQ(error_of(kListen + "[mailauth]\nverfy = true\n"), at_line(4) + "mailauth.verfy: unknown key");
    EXPECT_EQ(error_of(kListen + "[mailauth]\nauthserv_id = \"a b\"\n").rfind(at_line(4) + "mailauth.authserv_id: \"a b\" is not a host name", 0), 0u);
    EXPECT_EQ(error_of(kListen + "[mailauth]\npublic_suffix_list = \"missing.dat\"\n")
                  .rfind(at_line(4) + "mailauth.public_suffix_list: cannot read", 0), 0u);
}

TEST_F(ConfigFileTest, DkimKeys) {
    Config c = load("data_dir = \"d\"\n" + kListen +
                    "[dkim]\ncanonicalization = \"simple/relaxed\"\n"
                    "[[dkim.key]]\ndomain = \"Example.TEST\"\nselector = \"s1\"\n"
                    "[[dkim.key]]\ndomain = \"example.test\"\nselector = \"ed.2026\"\nprivate_key = \"keys/ed.pem\"\n");
    EXPECT_TRUE(c.dkim.sign);
    EXPECT_FALSE(c.dkim.relaxed_header);
    EXPECT_TRUE(c.dkim.relaxed_body);
    ASSERT_EQ(c.dkim.keys.size(), 2u);
    EXPECT_EQ(c.dkim.keys[0].domain, "example.test");
    EXPECT_EQ(c.dkim.keys[0].private_key, dir_ / "d" / "dkim" / "example.test.s1.pem");   // ferry dkim keygen's path
    EXPECT_EQ(c.dkim.keys[1].selector, "ed.2026");
    EXPECT_EQ(c.dkim.keys[1].private_key, dir_ / "keys" / "ed.pem");
}

TEST_F(ConfigFileTest, DkimErrors) {
    EXPECT_EQ(error_of(kListen + "[dkim]\ncanonicalization = \"relaxed\"\n")
                  .rfind(at_line(4) + "dkim.canonicalization: \"relaxed\" is not header/body canonicalization", 0), 0u);
    EXPECT_EQ(error_of(kListen + "[[dkim.key]]\nselector = \"s1\"\n"), at_line(3) + "dkim.key[0].domain: missing (the d= domain this key signs for)");
    EXPECT_EQ(error_of(kListen + "[[dkim.key]]\ndomain = \"example.test\"\nselector = \"s_1\"\n")
                  .rfind(at_line(5) + "dkim.key[0].selector: \"s_1\" is not a selector", 0), 0u);
    EXPECT_EQ(error_of(kListen + "[[dkim.key]]\ndomain = \"example.test\"\nselector = \"s1\"\nbits = 2048\n"),
              at_line(6) + "dkim.key[0].bits: unknown key");
    EXPECT_EQ(error_of(kListen + "[[dkim.key]]\ndomain = \"a.test\"\nselector = \"s\"\n[[dkim.key]]\ndomain = \"A.test\"\nselector = \"S\"\n"),
              at_line(6) + "dkim.key[1]: a second key for s._domainkey.a.test");
    EXPECT_EQ(error_of(kListen + "[dkim]\nkey = 5\n"), at_line(4) + "dkim.key: expected [[dkim.key]] tables (an array of tables), got an integer");
    // d= carries A-labels (RFC 8616): a U-label domain would sign mail no verifier (Ferry's included) accepts.
    EXPECT_EQ(error_of(kListen + "[[dkim.key]]\ndomain = \"b\xc3\xbc" "cher.test\"\nselector = \"s1\"\n"),
              at_line(4) + "dkim.key[0].domain: \"b\xc3\xbc" "cher.test\" is not a domain name (write it in A-labels "
                           "(xn--...), as DKIM signatures carry it)");
    EXPECT_EQ(load(kListen + "[[dkim.key]]\ndomain = \"xn--bcher-kva.test\"\nselector = \"s1\"\n").dkim.keys.size(), 1u);
}
