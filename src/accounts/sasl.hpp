// SASL for SMTP AUTH (RFC 4954): strict base64 and the server side of the PLAIN (RFC 4616) and LOGIN
// mechanisms. Pure: the session feeds it what the client sent and gets back a challenge or the credentials;
// checking the password is the caller's business (it is slow on purpose and must not run on the I/O thread).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "util/base64.hpp"

namespace ferry::accounts {

// RFC 4648 base64 with padding; decoding is strict (nullopt on any other character, bad length or bad padding),
// as RFC 4954 4 wants for AUTH responses. The shared implementation, named here for the SASL callers.
using util::base64_decode;
using util::base64_encode;

struct Credentials {
    std::string authzid;   // who to act as; empty = the same as authcid
    std::string authcid;   // who logs in
    std::string password;
};

// RFC 4616: [authzid] NUL authcid NUL passwd, authcid and passwd not empty, at most 255 octets each.
std::optional<Credentials> parse_plain(std::string_view message);

class SaslExchange {
public:
    enum class Mechanism { plain, login };
    struct Step {
        enum class Kind { challenge, done, malformed } kind = Kind::malformed;
        std::string challenge;   // base64, for Kind::challenge ("" = the empty challenge)
        Credentials credentials;  // for Kind::done
    };

    // nullopt for a mechanism we do not offer. The name is case-insensitive.
    static std::optional<SaslExchange> start(std::string_view mechanism);

    // The client's next message, base64 as sent (the AUTH command's initial response, or a line after 334);
    // nullopt when AUTH came without an initial response. "=" is the empty initial response (RFC 4954 4).
    Step next(std::optional<std::string_view> response);

    Mechanism mechanism() const { return mechanism_; }

private:
    explicit SaslExchange(Mechanism m) : mechanism_(m) {}
    Mechanism mechanism_;
    int round_ = 0;
    std::string login_user_;
};

}  // namespace ferry::accounts
