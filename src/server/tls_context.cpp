#include "server/tls_context.hpp"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <stdexcept>

#include "util/fs.hpp"

namespace ferry::server {

namespace fs = std::filesystem;

namespace {

// Forward secrecy and AEAD only for TLS 1.2; TLS 1.3 suites are OpenSSL's defaults (all AEAD).
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384";

std::string openssl_error() {
    const unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (e == 0) return "unknown OpenSSL error";
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    return buf;
}

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error(what + ": " + openssl_error()); }

template <typename T, void (*Free)(T*)>
struct Deleter {
    void operator()(T* p) const { Free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION, X509_EXTENSION_free>>;

std::string bio_text(BIO* bio) {
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    return std::string(data, static_cast<std::size_t>(n));
}

// Written to a temporary name, synced, then renamed: a crash never leaves half a key.
void write_private_file(const fs::path& path, const std::string& text) {
    const fs::path tmp = path.string() + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) throw std::system_error(util::last_error(), "cannot create " + tmp.string());
    std::error_code ec = util::write_all(fd, text);
    if (!ec && ::fsync(fd) != 0) ec = util::last_error();
    ::close(fd);
    if (!ec && ::rename(tmp.c_str(), path.c_str()) != 0) ec = util::last_error();
    if (ec) throw std::system_error(ec, "cannot write " + path.string());
}

}  // namespace

std::pair<fs::path, fs::path> ensure_self_signed(const fs::path& data_dir, const std::string& hostname) {
    const fs::path dir = data_dir / "tls";
    const fs::path cert = dir / "cert.pem", key = dir / "key.pem";
    if (fs::exists(cert) && fs::exists(key)) return {cert, key};
    util::make_dirs(dir);

    PkeyPtr pkey(EVP_EC_gen("P-256"));
    if (!pkey) fail("cannot generate a TLS key");
    X509Ptr x509(X509_new());
    if (!x509) fail("cannot create a certificate");
    X509_set_version(x509.get(), 2);   // v3
    unsigned char serial[16];
    if (RAND_bytes(serial, sizeof serial) != 1) fail("no random serial");
    serial[0] &= 0x7f;   // positive
    BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x509.get()));
    BN_free(bn);
    X509_gmtime_adj(X509_getm_notBefore(x509.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x509.get()), 10L * 365 * 24 * 3600);
    X509_set_pubkey(x509.get(), pkey.get());
    X509_NAME* name = X509_get_subject_name(x509.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(hostname.c_str()),
                               -1, -1, 0);
    X509_set_issuer_name(x509.get(), name);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x509.get(), x509.get(), nullptr, nullptr, 0);
    const std::string san = "DNS:" + hostname;
    for (const auto& [nid, value] : {std::pair{NID_subject_alt_name, san.c_str()},
                                     std::pair{NID_basic_constraints, "critical,CA:FALSE"},
                                     std::pair{NID_ext_key_usage, "serverAuth"}}) {
        ExtPtr ext(X509V3_EXT_conf_nid(nullptr, &v3, nid, value));
        if (!ext || X509_add_ext(x509.get(), ext.get(), -1) != 1) fail("cannot add certificate extension");
    }
    if (X509_sign(x509.get(), pkey.get(), EVP_sha256()) == 0) fail("cannot sign the certificate");

    BioPtr key_bio(BIO_new(BIO_s_mem())), cert_bio(BIO_new(BIO_s_mem()));
    if (!PEM_write_bio_PrivateKey(key_bio.get(), pkey.get(), nullptr, nullptr, 0, nullptr, nullptr) ||
        !PEM_write_bio_X509(cert_bio.get(), x509.get()))
        fail("cannot encode the certificate");
    write_private_file(key, bio_text(key_bio.get()));
    write_private_file(cert, bio_text(cert_bio.get()));
    util::fsync_dir(dir);
    return {cert, key};
}

std::shared_ptr<boost::asio::ssl::context> make_tls_context(const config::Config& config) {
    namespace ssl = boost::asio::ssl;
    fs::path cert, key;
    if (config.tls && !config.tls->certificate.empty()) {
        cert = config.tls->certificate;
        key = config.tls->private_key;
    } else {
        std::tie(cert, key) = ensure_self_signed(config.data_dir, config.hostname);
    }
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
    SSL_CTX* h = ctx->native_handle();
    const bool tls13_only = config.tls && config.tls->min_version == "1.3";
    SSL_CTX_set_min_proto_version(h, tls13_only ? TLS1_3_VERSION : TLS1_2_VERSION);
    // Our TLS 1.2 order, not the client's (RFC 7525 4.2 / RFC 9325 4.2: servers should prefer the strongest
    // suites); TLS 1.3 suites are all AEAD with forward secrecy.
    SSL_CTX_set_options(h, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_SINGLE_DH_USE |
                               SSL_OP_CIPHER_SERVER_PREFERENCE);
    // Resumption (RFC 5246 7.4.1.2 session ids, RFC 5077 / RFC 8446 4.6.1 tickets) on every listener, STARTTLS
    // or implicit: one cache and one set of ticket keys per context, which all listeners share. The session id
    // context ties cached sessions to Ferry's SMTP service (OpenSSL refuses to resume without one once client
    // certificates are ever asked for).
    static constexpr unsigned char kSessionIdContext[] = "ferry smtp";
    SSL_CTX_set_session_id_context(h, kSessionIdContext, sizeof kSessionIdContext - 1);
    SSL_CTX_set_session_cache_mode(h, SSL_SESS_CACHE_SERVER);
    const std::string ciphers = config.tls && !config.tls->ciphers.empty() ? config.tls->ciphers : kTls12Ciphers;
    if (SSL_CTX_set_cipher_list(h, ciphers.c_str()) != 1) fail("cannot set TLS 1.2 ciphers");
    SSL_CTX_set_dh_auto(h, 1);
    if (SSL_CTX_use_certificate_chain_file(h, cert.c_str()) != 1) fail("cannot load certificate " + cert.string());
    if (SSL_CTX_use_PrivateKey_file(h, key.c_str(), SSL_FILETYPE_PEM) != 1) fail("cannot load key " + key.string());
    if (SSL_CTX_check_private_key(h) != 1) fail("key " + key.string() + " does not match " + cert.string());
    return ctx;
}

}  // namespace ferry::server
