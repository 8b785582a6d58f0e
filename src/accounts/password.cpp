#include "accounts/password.hpp"

#include <crypt.h>
#include <openssl/crypto.h>

#include <cstring>
#include <memory>
#include <stdexcept>

namespace ferry::accounts {

namespace {

// Dovecot's generic crypt(3) scheme; the hash itself says which method ($y$ yescrypt, $6$ sha512-crypt...).
constexpr std::string_view kScheme = "{CRYPT}";

bool has_nul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

// libxcrypt signals failure with NULL or, for some callers, a string starting with '*'.
bool failed(const char* out) { return out == nullptr || out[0] == '*'; }

// struct crypt_data is ~32 KiB: keep it off the coroutine/thread stack. Zeroed as crypt_rn requires.
std::unique_ptr<crypt_data> new_crypt_data() { return std::make_unique<crypt_data>(); }

}  // namespace

std::string hash_password(std::string_view password) {
    if (has_nul(password)) throw std::invalid_argument("password contains a NUL octet");
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    // count 0 = the method's default cost; rbytes nullptr = libxcrypt reads the OS random source.
    if (failed(crypt_gensalt_rn("$y$", 0, nullptr, 0, salt, sizeof salt)))
        throw std::runtime_error(std::string("cannot make a password salt: ") + std::strerror(errno));
    auto data = new_crypt_data();
    std::string phrase(password);
    const char* out = crypt_rn(phrase.c_str(), salt, data.get(), sizeof *data);
    if (failed(out)) throw std::runtime_error(std::string("cannot hash the password: ") + std::strerror(errno));
    std::string result = std::string(kScheme) + out;
    OPENSSL_cleanse(phrase.data(), phrase.size());
    OPENSSL_cleanse(data.get(), sizeof *data);
    return result;
}

bool verify_password(std::string_view password, std::string_view stored) {
    std::string_view hash = stored;
    if (!hash.empty() && hash.front() == '{') {
        auto close = hash.find('}');
        if (close == std::string_view::npos) return false;
        std::string scheme(hash.substr(1, close - 1));
        for (char& c : scheme)
            if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
        bool crypt_scheme = scheme == "CRYPT" ||
                            (scheme.size() > 6 && scheme.compare(scheme.size() - 6, 6, "-CRYPT") == 0);
        if (!crypt_scheme) return false;
        hash.remove_prefix(close + 1);
    }
    if (hash.empty() || has_nul(password) || has_nul(hash)) return false;

    auto data = new_crypt_data();
    std::string phrase(password);
    std::string setting(hash);
    const char* out = crypt_rn(phrase.c_str(), setting.c_str(), data.get(), sizeof *data);
    bool ok = false;
    if (!failed(out)) {
        std::size_t n = std::strlen(out);
        // The length of a hash is no secret (it follows from its method); the content is compared in constant time.
        ok = n == hash.size() && CRYPTO_memcmp(out, hash.data(), n) == 0;
    }
    OPENSSL_cleanse(phrase.data(), phrase.size());
    OPENSSL_cleanse(data.get(), sizeof *data);
    return ok;
}

}  // namespace ferry::accounts
