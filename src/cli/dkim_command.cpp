#include "cli/dkim_command.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <iostream>

#include "config/config.hpp"
#include "mailauth/dkim_key.hpp"
#include "util/fs.hpp"

namespace ferry::cli {


int run_dkim_keygen(const KeygenOptions& o) {
    config::Config cfg;
    try {
        cfg = config::load_config(o.config);
    } catch (const config::ConfigError& e) {
        std::cerr << e.what() << "\n";
        return 2;
    }
    // The names [[dkim.key]] would accept: the block printed below must load.
    if (const std::string why = config::dkim_domain_error(o.domain); !why.empty()) {
        std::cerr << "ferry dkim: \"" << o.domain << "\" is not a domain name (" << why << ")\n";
        return 2;
    }
    if (const std::string why = config::dkim_selector_error(o.selector); !why.empty()) {
        std::cerr << "ferry dkim: \"" << o.selector << "\" is not a selector (" << why << ")\n";
        return 2;
    }
    const std::string domain = config::ascii_lower(o.domain), selector = config::ascii_lower(o.selector);
    mailauth::DkimAlgorithm algorithm;
    if (o.algorithm == "rsa") {
        // RFC 8301 3.2: at least 1024 bits, 2048 recommended; beyond 4096 many DNS hosts cannot publish the key.
        if (o.bits < 1024 || o.bits > 4096) {
            std::cerr << "ferry dkim: --bits " << o.bits << " is out of range (1024-4096; 2048 is the default)\n";
            return 2;
        }
        algorithm = mailauth::DkimAlgorithm::rsa_sha256;
    } else if (o.algorithm == "ed25519") {
        algorithm = mailauth::DkimAlgorithm::ed25519_sha256;
    } else {
        std::cerr << "ferry dkim: --algorithm must be rsa or ed25519\n";
        return 2;
    }

    const std::filesystem::path file = o.output.empty() ? cfg.dkim_dir() / (domain + "." + selector + ".pem") : o.output;
    const mailauth::GeneratedKey key = mailauth::generate_signing_key(algorithm, o.bits);
    try {
        if (o.output.empty()) util::make_dirs(cfg.dkim_dir());
    } catch (const std::exception& e) {
        std::cerr << "ferry dkim: " << e.what() << "\n";
        return 1;
    }
    const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        std::cerr << "ferry dkim: cannot create " << file.string() << ": " << std::strerror(errno)
                  << (errno == EEXIST ? " (a key is never overwritten; remove it first)" : "") << "\n";
        return 1;
    }
    // Run as root for a server that drops to `user`: the key goes to the owner of data_dir, as ferry user does.
    struct stat dir_st {};
    if (::geteuid() == 0 && ::stat(cfg.data_dir.c_str(), &dir_st) == 0 && dir_st.st_uid != 0 &&
        ::fchown(fd, dir_st.st_uid, dir_st.st_gid) != 0)
        std::cerr << "ferry dkim: cannot give " << file.string() << " to the owner of data_dir: " << std::strerror(errno) << "\n";
    const std::error_code ec = util::write_all(fd, key.private_key_pem);
    const bool synced = !ec && ::fsync(fd) == 0;
    ::close(fd);
    if (ec || !synced) {
        std::cerr << "ferry dkim: cannot write " << file.string() << ": " << (ec ? ec.message() : std::strerror(errno)) << "\n";
        ::unlink(file.c_str());
        return 1;
    }

    const std::string name = selector + "._domainkey." + domain;
    std::cout << "# Key written to " << file.string() << ". Publish this TXT record:\n";
    std::cout << name << ". 3600 IN TXT " << mailauth::txt_presentation(key.txt_record) << "\n";
    std::cout << "# and sign with it (add to the configuration):\n";
    std::cout << "[[dkim.key]]\n";
    std::cout << "domain = \"" << domain << "\"\n";
    std::cout << "selector = \"" << selector << "\"\n";
    if (!o.output.empty()) std::cout << "private_key = \"" << std::filesystem::absolute(file).string() << "\"\n";
    return 0;
}

}  // namespace ferry::cli
