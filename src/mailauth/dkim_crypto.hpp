// The cryptography DKIM needs, on OpenSSL 3: SHA-256 (RFC 6376 3.3, RFC 8301 3.1), RSASSA-PKCS1-v1_5 over a
// SHA-256 digest (RFC 6376 3.3.1) and PureEd25519 over the same digest (RFC 8463 3), base64 (RFC 2045 6.8, as
// RFC 6376 2.4 uses it). No I/O; nothing here throws for bad input.
#pragma once

#include <openssl/types.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "util/base64.hpp"

namespace ferry::mailauth {

enum class DkimAlgorithm { rsa_sha256, ed25519_sha256 };

// "rsa-sha256" / "ed25519-sha256": the a= values (RFC 6376 3.5, RFC 8463 3).
std::string_view to_string(DkimAlgorithm a);

inline constexpr std::size_t kSha256Size = 32;
inline constexpr std::size_t kEd25519KeySize = 32;   // RFC 8032 5.1.5: the raw public key, as p= holds it (RFC 8463 4.2)

// An incremental SHA-256. Movable, not copyable.
class Sha256 {
public:
    Sha256();
    Sha256(Sha256&&) noexcept;
    Sha256& operator=(Sha256&&) noexcept;
    ~Sha256();
    void update(std::string_view octets);
    // The 32-octet digest. The object is spent afterwards (update/final again start nothing new).
    std::string final();

private:
    struct Context;
    std::unique_ptr<Context> ctx_;
};

std::string sha256(std::string_view octets);

// Base64 with padding, no line breaks, and its strict decoding of text that holds no whitespace (strip it first:
// RFC 6376 3.5 lets FWS appear in b=, bh= and p=): only the 64 letters, '=' padding that completes the last
// quantum, nothing after it; nullopt otherwise. The shared implementation, named here for the DKIM callers.
using util::base64_decode;
using util::base64_encode;

using PkeyPtr = std::shared_ptr<EVP_PKEY>;

// A public key from a key record's p= (decoded): for RSA a DER SubjectPublicKeyInfo, or a DER RSAPublicKey
// (RFC 6376 3.6.1 names RSAPublicKey; published records almost all hold SubjectPublicKeyInfo, and the RFC's
// own Appendix C key is one); for Ed25519 the raw 32 octets. nullptr when the octets are not such a key.
PkeyPtr rsa_public_key(std::string_view der);
PkeyPtr ed25519_public_key(std::string_view raw);

// The size of an RSA key's modulus in bits (0 for no key).
int key_bits(const EVP_PKEY* key);

// Signs / verifies a SHA-256 digest of the data to sign: RSA with PKCS#1 v1.5 padding around a SHA-256
// DigestInfo, or Ed25519 (PureEdDSA) over the 32 digest octets (RFC 8463 3). sign: nullopt if the key does
// not fit the algorithm or OpenSSL fails. verify: false for any mismatch, never an error.
std::optional<std::string> sign_digest(EVP_PKEY* key, DkimAlgorithm algorithm, std::string_view digest);
bool verify_digest(EVP_PKEY* key, DkimAlgorithm algorithm, std::string_view digest, std::string_view signature);

}  // namespace ferry::mailauth
