// DKIM keys: the public key record a verifier finds in DNS (RFC 6376 3.6.1, RFC 8463 4), and the signer's
// private keys: loading one from a PEM file, generating one with its TXT record (RFC 8301 3.2 key sizes).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mailauth/dkim_crypto.hpp"

namespace ferry::mailauth {

// RFC 8301 3.2: signers MUST use RSA keys of at least 1024 bits (SHOULD 2048) and verifiers MUST NOT accept
// signatures from smaller ones. Verifiers need only validate keys of up to 4096 bits, so no larger key is
// generated here (an operator's own larger key is loaded: that is their choice).
inline constexpr int kMinRsaBits = 1024;
inline constexpr int kMaxGeneratedRsaBits = 4096;
inline constexpr int kDefaultRsaBits = 2048;
// A private key file is a few kilobytes; anything far larger is not one (and is not read into memory).
inline constexpr std::uintmax_t kMaxKeyFileSize = 1024 * 1024;

enum class DkimKeyType { rsa, ed25519 };

struct DkimKeyRecord {
    DkimKeyType key_type = DkimKeyType::rsa;      // k= (default rsa)
    std::string public_key;                       // p= decoded: DER for rsa, 32 raw octets for ed25519
    bool revoked = false;                         // p= empty (3.6.1)
    std::vector<std::string> hash_algorithms;     // h=, lower case; empty: any
    bool testing = false;                         // t=y
    bool strict_identity = false;                 // t=s: i= domain must be d= exactly

    bool allows_sha256() const;
};

struct DkimKeyRecordParse {
    DkimKeyRecord record;
    std::string error;   // "" when the record is usable (it may still be revoked); else why not (permerror)
    bool ok() const { return error.empty(); }
};

// One key record (the TXT record's strings joined). Errors: not a tag list; v= present but not first or not
// "DKIM1"; k= other than rsa/ed25519; p= missing or not base64; s= (service types) naming neither "email" nor
// "*". Unknown tags, flags, hash names and services are ignored (3.6.1).
DkimKeyRecordParse parse_key_record(std::string_view text);

// The key of a record as OpenSSL holds it; nullptr when p= does not decode to a key of type k=.
PkeyPtr record_public_key(const DkimKeyRecord& record);

struct DkimSigningKey {
    std::string domain;     // d=
    std::string selector;   // s=
    DkimAlgorithm algorithm = DkimAlgorithm::rsa_sha256;
    std::shared_ptr<EVP_PKEY> key;
    int bits = 0;           // RSA modulus size; 256 for Ed25519
};

// A PEM private key (PKCS#8, or traditional "RSA PRIVATE KEY"; not encrypted): RSA of at least kMinRsaBits
// bits, or Ed25519. nullopt with `error` set otherwise (or when the file cannot be read).
std::optional<DkimSigningKey> load_signing_key(const std::filesystem::path& pem_file, std::string domain,
                                               std::string selector, std::string& error);
std::optional<DkimSigningKey> signing_key_from_pem(std::string_view pem, std::string domain, std::string selector,
                                                   std::string& error);

struct GeneratedKey {
    std::string private_key_pem;   // PKCS#8 PEM
    std::string txt_record;        // "v=DKIM1; k=rsa; p=<base64 SubjectPublicKeyInfo>" or "v=DKIM1; k=ed25519; p=<base64 of the raw 32 octets>" (RFC 8463 4.2)
};

// A new key. rsa_bits must be kMinRsaBits..kMaxGeneratedRsaBits (std::invalid_argument otherwise: a bug or a
// configuration error, not input); std::runtime_error if OpenSSL cannot make a key.
GeneratedKey generate_signing_key(DkimAlgorithm algorithm, int rsa_bits = kDefaultRsaBits);

// The key record publishing a key's public half (as in GeneratedKey::txt_record).
std::string public_key_record(EVP_PKEY* key);

// A TXT record's text in zone-file form: quoted character-strings of at most 255 octets each ("..." "..."),
// since a 2048-bit key's record is longer than one string may be (RFC 1035 3.3.14, RFC 6376 3.6.2.2).
std::string txt_presentation(std::string_view text);

}  // namespace ferry::mailauth
