// The server's TLS configuration: one OpenSSL context per loaded configuration, shared by the sessions that
// started under it (a SIGHUP builds a new one; sessions in progress keep theirs).
#pragma once

#include <boost/asio/ssl/context.hpp>

#include <filesystem>
#include <memory>
#include <string>

#include "config/config.hpp"

namespace ferry::server {

// TLS 1.2 minimum; TLS 1.2 limited to forward-secret AEAD suites (Mozilla "intermediate") in the server's order;
// no compression, no renegotiation; resumption by ticket and by session id. Certificate and key from [tls], or without [tls] a self-signed certificate for
// `hostname`, generated once into data_dir/tls/ (ensure_self_signed). Throws std::runtime_error naming the
// file and OpenSSL's reason.
std::shared_ptr<boost::asio::ssl::context> make_tls_context(const config::Config& config);

// data_dir/tls/cert.pem and key.pem: created (P-256 key, SAN = hostname, valid 10 years) if either is missing.
// Returns the certificate and key paths.
std::pair<std::filesystem::path, std::filesystem::path> ensure_self_signed(const std::filesystem::path& data_dir,
                                                                           const std::string& hostname);

}  // namespace ferry::server
