#include "mailauth/dkim_key.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <fstream>
#include <iterator>
#include <stdexcept>
#include <system_error>

#include "mailauth/tag_list.hpp"
#include "util/ascii.hpp"

namespace ferry::mailauth {
namespace {

// A colon-separated list of the record (h=, s=, t=), lower case.
std::vector<std::string> colon_list(std::string_view value) {
    std::vector<std::string> out;
    for (const auto element : split_colon_list(value)) out.push_back(util::ascii_lower(element));
    return out;
}

struct BioFree {
    void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;

// An encrypted key file would make OpenSSL ask for a pass phrase on the terminal; refuse instead.
int no_pass_phrase(char*, int, int, void*) { return 0; }

std::string bio_text(BIO* bio) {
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    return n > 0 ? std::string(data, static_cast<std::size_t>(n)) : std::string();
}

}  // namespace

bool DkimKeyRecord::allows_sha256() const {
    if (hash_algorithms.empty()) return true;
    for (const auto& h : hash_algorithms)
        if (h == "sha256") return true;
    return false;
}

DkimKeyRecordParse parse_key_record(std::string_view text) {
    DkimKeyRecordParse r;
    std::string why;
    const auto tags = parse_tag_list(text, &why);
    if (!tags) {
        r.error = "key record syntax: " + why;
        return r;
    }
    for (std::size_t i = 0; i < tags->tags.size(); ++i) {
        if (tags->tags[i].name != "v") continue;
        if (i != 0) {
            r.error = "key record syntax: v= is not the first tag";
            return r;
        }
        if (tags->tags[i].value != "DKIM1") {
            r.error = "key record version is not DKIM1";
            return r;
        }
    }
    DkimKeyRecord& rec = r.record;
    if (const auto* k = tags->find("k")) {
        const std::string type = util::ascii_lower(*k);
        if (type == "rsa") rec.key_type = DkimKeyType::rsa;
        else if (type == "ed25519") rec.key_type = DkimKeyType::ed25519;
        else {
            r.error = "unknown key type k=" + *k;
            return r;
        }
    }
    if (const auto* h = tags->find("h")) rec.hash_algorithms = colon_list(*h);
    if (const auto* s = tags->find("s")) {
        bool email = false;
        for (const auto& service : colon_list(*s))
            if (service == "email" || service == "*") email = true;
        if (!email) {
            r.error = "key record is not for email (s=)";
            return r;
        }
    }
    if (const auto* t = tags->find("t")) {
        for (const auto& flag : colon_list(*t)) {
            if (flag == "y") rec.testing = true;
            if (flag == "s") rec.strict_identity = true;
        }
    }
    const auto* p = tags->find("p");
    if (!p) {
        r.error = "key record syntax: p= is missing";
        return r;
    }
    const auto key = base64_decode(strip_whitespace(*p));
    if (!key) {
        r.error = "key record syntax: p= is not valid base64";
        return r;
    }
    rec.public_key = *key;
    rec.revoked = key->empty();
    return r;
}

PkeyPtr record_public_key(const DkimKeyRecord& record) {
    if (record.revoked) return nullptr;
    return record.key_type == DkimKeyType::rsa ? rsa_public_key(record.public_key) : ed25519_public_key(record.public_key);
}

std::optional<DkimSigningKey> signing_key_from_pem(std::string_view pem, std::string domain, std::string selector,
                                                   std::string& error) {
    BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    EVP_PKEY* raw = bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, no_pass_phrase, nullptr) : nullptr;
    ERR_clear_error();
    if (!raw) {
        error = "not a PEM private key (PKCS#8 or RSA, unencrypted)";
        return std::nullopt;
    }
    DkimSigningKey k;
    k.key = PkeyPtr(raw, EVP_PKEY_free);
    k.bits = EVP_PKEY_get_bits(raw);
    switch (EVP_PKEY_get_base_id(raw)) {
    case EVP_PKEY_RSA:
        k.algorithm = DkimAlgorithm::rsa_sha256;
        if (k.bits < kMinRsaBits) {
            error = "RSA key of " + std::to_string(k.bits) + " bits: at least 1024 are needed (RFC 8301 3.2)";
            return std::nullopt;
        }
        break;
    case EVP_PKEY_ED25519:
        k.algorithm = DkimAlgorithm::ed25519_sha256;
        k.bits = 8 * static_cast<int>(kEd25519KeySize);   // OpenSSL says 253 (the curve's bit length)
        break;
    default:
        error = "unsupported key type (RSA or Ed25519 only)";
        return std::nullopt;
    }
    k.domain = std::move(domain);
    k.selector = std::move(selector);
    return k;
}

std::optional<DkimSigningKey> load_signing_key(const std::filesystem::path& pem_file, std::string domain,
                                               std::string selector, std::string& error) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(pem_file, ec);
    if (ec) {
        error = "cannot read " + pem_file.string() + ": " + ec.message();
        return std::nullopt;
    }
    if (size > kMaxKeyFileSize) {
        error = pem_file.string() + " is too large to be a private key";
        return std::nullopt;
    }
    std::ifstream in(pem_file, std::ios::binary);
    const std::string pem((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in && !in.eof()) {
        error = "cannot read " + pem_file.string();
        return std::nullopt;
    }
    auto key = signing_key_from_pem(pem, std::move(domain), std::move(selector), error);
    if (!key) error = pem_file.string() + ": " + error;
    return key;
}

std::string public_key_record(EVP_PKEY* key) {
    if (!key) return "";
    if (EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519) {
        std::string raw(kEd25519KeySize, '\0');
        std::size_t len = raw.size();
        if (EVP_PKEY_get_raw_public_key(key, reinterpret_cast<unsigned char*>(raw.data()), &len) != 1) return "";
        raw.resize(len);
        return "v=DKIM1; k=ed25519; p=" + base64_encode(raw);
    }
    unsigned char* der = nullptr;
    const int n = i2d_PUBKEY(key, &der);
    if (n <= 0) return "";
    const std::string spki(reinterpret_cast<const char*>(der), static_cast<std::size_t>(n));
    OPENSSL_free(der);
    return "v=DKIM1; k=rsa; p=" + base64_encode(spki);
}

GeneratedKey generate_signing_key(DkimAlgorithm algorithm, int rsa_bits) {
    EVP_PKEY* raw = nullptr;
    if (algorithm == DkimAlgorithm::rsa_sha256) {
        if (rsa_bits < kMinRsaBits || rsa_bits > kMaxGeneratedRsaBits)
            throw std::invalid_argument("DKIM RSA keys have 1024 to 4096 bits (RFC 8301 3.2)");
        raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<std::size_t>(rsa_bits));
    } else {
        raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
    }
    if (!raw) {
        ERR_clear_error();
        throw std::runtime_error("OpenSSL could not generate a key");
    }
    const PkeyPtr key(raw, EVP_PKEY_free);
    BioPtr bio(BIO_new(BIO_s_mem()));
    if (!bio || PEM_write_bio_PrivateKey(bio.get(), raw, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
        ERR_clear_error();
        throw std::runtime_error("OpenSSL could not write the key");
    }
    GeneratedKey g;
    g.private_key_pem = bio_text(bio.get());
    g.txt_record = public_key_record(raw);
    if (g.private_key_pem.empty() || g.txt_record.empty()) throw std::runtime_error("OpenSSL could not write the key");
    return g;
}

std::string txt_presentation(std::string_view text) {
    constexpr std::size_t kMaxCharacterString = 255;   // RFC 1035 3.3: a length octet
    std::string out;
    std::size_t at = 0;
    do {
        if (!out.empty()) out += ' ';
        const std::string_view piece = text.substr(at, kMaxCharacterString);
        out += '"';
        for (const char c : piece) {
            if (c == '"' || c == '\\') out += '\\';
            out += c;
        }
        out += '"';
        at += piece.size();
    } while (at < text.size());
    return out;
}

}  // namespace ferry::mailauth
