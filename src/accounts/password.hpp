// Password hashes in crypt(3) form (libxcrypt), stored with a Dovecot scheme prefix so the accounts file can be
// shared with `doveadm pw` output: "{CRYPT}$y$..." (yescrypt), "{SHA512-CRYPT}$6$...", "{BLF-CRYPT}$2b$...".
#pragma once

#include <string>
#include <string_view>

namespace ferry::accounts {

// A new yescrypt hash with a random salt, as "{CRYPT}$y$...". Throws std::invalid_argument for a password
// containing a NUL octet and std::runtime_error when libxcrypt fails (no entropy, out of memory).
std::string hash_password(std::string_view password);

// True when `password` matches `stored`: any crypt(3) hash libxcrypt knows, with or without a "{SCHEME}"
// prefix whose scheme is CRYPT or ends in -CRYPT (SHA512-CRYPT, SHA256-CRYPT, BLF-CRYPT, MD5-CRYPT...).
// Other schemes (PLAIN, SSHA...) and unknown or disabled hash methods never match. Constant-time compare.
bool verify_password(std::string_view password, std::string_view stored);

}  // namespace ferry::accounts
