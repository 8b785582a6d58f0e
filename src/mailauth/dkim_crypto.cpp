#include "mailauth/dkim_crypto.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

namespace ferry::mailauth {
namespace {

const unsigned char* bytes(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

struct PkeyCtxFree {
    void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};
struct MdCtxFree {
    void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using PkeyCtx = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

PkeyPtr own(EVP_PKEY* key) { return PkeyPtr(key, EVP_PKEY_free); }

// OpenSSL queues an error for every failed parse or check; other code on the thread (TLS) reads that queue, so
// what a hostile key record left there must not linger.
template <typename T>
T clean(T value) {
    ERR_clear_error();
    return value;
}

bool rsa_pkcs1_ctx(EVP_PKEY_CTX* ctx) {
    return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) > 0 &&
           EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) > 0;
}

}  // namespace

std::string_view to_string(DkimAlgorithm a) {
    switch (a) {
    case DkimAlgorithm::rsa_sha256: return "rsa-sha256";
    case DkimAlgorithm::ed25519_sha256: return "ed25519-sha256";
    }
    return "rsa-sha256";
}

struct Sha256::Context {
    MdCtx md{EVP_MD_CTX_new()};
    bool ok = false;
};

Sha256::Sha256() : ctx_(std::make_unique<Context>()) {
    ctx_->ok = ctx_->md && EVP_DigestInit_ex(ctx_->md.get(), EVP_sha256(), nullptr) == 1;
}
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;
Sha256::~Sha256() = default;

void Sha256::update(std::string_view octets) {
    if (ctx_ && ctx_->ok && !octets.empty()) ctx_->ok = EVP_DigestUpdate(ctx_->md.get(), octets.data(), octets.size()) == 1;
}

std::string Sha256::final() {
    std::string out(kSha256Size, '\0');
    unsigned int n = 0;
    if (!ctx_ || !ctx_->ok || EVP_DigestFinal_ex(ctx_->md.get(), reinterpret_cast<unsigned char*>(out.data()), &n) != 1 ||
        n != kSha256Size)
        out.clear();   // cannot happen short of memory exhaustion; an empty digest matches nothing
    if (ctx_) ctx_->ok = false;
    return out;
}

std::string sha256(std::string_view octets) {
    Sha256 h;
    h.update(octets);
    return h.final();
}

PkeyPtr rsa_public_key(std::string_view der) {
    if (der.empty()) return nullptr;
    const unsigned char* p = bytes(der);
    if (EVP_PKEY* k = d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size()))) {
        PkeyPtr key = own(k);
        if (p == bytes(der) + der.size() && EVP_PKEY_get_base_id(k) == EVP_PKEY_RSA) return clean(key);
        return clean(PkeyPtr());
    }
    p = bytes(der);
    if (EVP_PKEY* k = d2i_PublicKey(EVP_PKEY_RSA, nullptr, &p, static_cast<long>(der.size()))) {
        PkeyPtr key = own(k);
        if (p == bytes(der) + der.size()) return clean(key);
    }
    return clean(PkeyPtr());
}

PkeyPtr ed25519_public_key(std::string_view raw) {
    if (raw.size() != kEd25519KeySize) return nullptr;
    return clean(own(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, bytes(raw), raw.size())));
}

int key_bits(const EVP_PKEY* key) { return key ? EVP_PKEY_get_bits(key) : 0; }

std::optional<std::string> sign_digest(EVP_PKEY* key, DkimAlgorithm algorithm, std::string_view digest) {
    if (!key) return std::nullopt;
    std::string sig;
    std::size_t len = 0;
    if (algorithm == DkimAlgorithm::rsa_sha256) {
        if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) return std::nullopt;
        PkeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
        if (!ctx || EVP_PKEY_sign_init(ctx.get()) <= 0 || !rsa_pkcs1_ctx(ctx.get()) ||
            EVP_PKEY_sign(ctx.get(), nullptr, &len, bytes(digest), digest.size()) <= 0)
            return clean(std::optional<std::string>());
        sig.resize(len);
        if (EVP_PKEY_sign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, bytes(digest), digest.size()) <= 0)
            return clean(std::optional<std::string>());
    } else {
        if (EVP_PKEY_get_base_id(key) != EVP_PKEY_ED25519) return std::nullopt;
        MdCtx ctx(EVP_MD_CTX_new());
        if (!ctx || EVP_DigestSignInit_ex(ctx.get(), nullptr, nullptr, nullptr, nullptr, key, nullptr) != 1 ||
            EVP_DigestSign(ctx.get(), nullptr, &len, bytes(digest), digest.size()) != 1)
            return clean(std::optional<std::string>());
        sig.resize(len);
        if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, bytes(digest), digest.size()) != 1)
            return clean(std::optional<std::string>());
    }
    sig.resize(len);
    return sig;
}

bool verify_digest(EVP_PKEY* key, DkimAlgorithm algorithm, std::string_view digest, std::string_view signature) {
    if (!key || signature.empty()) return false;
    if (algorithm == DkimAlgorithm::rsa_sha256) {
        if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) return false;
        PkeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
        const bool ok = ctx && EVP_PKEY_verify_init(ctx.get()) > 0 && rsa_pkcs1_ctx(ctx.get()) &&
                        EVP_PKEY_verify(ctx.get(), bytes(signature), signature.size(), bytes(digest), digest.size()) == 1;
        return clean(ok);
    }
    if (EVP_PKEY_get_base_id(key) != EVP_PKEY_ED25519) return false;
    MdCtx ctx(EVP_MD_CTX_new());
    const bool ok = ctx && EVP_DigestVerifyInit_ex(ctx.get(), nullptr, nullptr, nullptr, nullptr, key, nullptr) == 1 &&
                    EVP_DigestVerify(ctx.get(), bytes(signature), signature.size(), bytes(digest), digest.size()) == 1;
    return clean(ok);
}

}  // namespace ferry::mailauth
