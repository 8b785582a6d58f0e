#include "accounts/sasl.hpp"

#include <openssl/evp.h>

#include <algorithm>

#include "util/ascii.hpp"

namespace ferry::accounts {
namespace {

constexpr std::size_t kMaxField = 255;   // RFC 4616 2: each field up to 255 octets

bool is_base64_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

}  // namespace

std::optional<std::string> base64_decode(std::string_view text) {
    if (text.size() % 4 != 0) return std::nullopt;
    std::size_t pad = 0;
    if (!text.empty() && text.back() == '=') pad = text.size() >= 2 && text[text.size() - 2] == '=' ? 2 : 1;
    if (!std::all_of(text.begin(), text.end() - static_cast<std::ptrdiff_t>(pad), is_base64_char))
        return std::nullopt;
    std::string out(text.size() / 4 * 3, '\0');
    if (text.empty()) return out;
    const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
    if (n < 0) return std::nullopt;
    out.resize(static_cast<std::size_t>(n) - pad);   // EVP_DecodeBlock counts the padding as zero octets
    return out;
}

std::string base64_encode(std::string_view data) {
    std::string out((data.size() + 2) / 3 * 4 + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(data.data()), static_cast<int>(data.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

std::optional<Credentials> parse_plain(std::string_view message) {
    const auto first = message.find('\0');
    if (first == std::string_view::npos) return std::nullopt;
    const auto second = message.find('\0', first + 1);
    if (second == std::string_view::npos || message.find('\0', second + 1) != std::string_view::npos)
        return std::nullopt;
    Credentials c{std::string(message.substr(0, first)), std::string(message.substr(first + 1, second - first - 1)),
                  std::string(message.substr(second + 1))};
    if (c.authcid.empty() || c.password.empty() || c.authzid.size() > kMaxField || c.authcid.size() > kMaxField ||
        c.password.size() > kMaxField)
        return std::nullopt;
    return c;
}

std::optional<SaslExchange> SaslExchange::start(std::string_view mechanism) {
    if (util::ascii_lower(mechanism) == "plain") return SaslExchange(Mechanism::plain);
    if (util::ascii_lower(mechanism) == "login") return SaslExchange(Mechanism::login);
    return std::nullopt;
}

SaslExchange::Step SaslExchange::next(std::optional<std::string_view> response) {
    using Kind = Step::Kind;
    const int round = round_++;
    std::optional<std::string> decoded;
    if (response) {
        // "=" is an empty initial response; in later rounds the empty line is (RFC 4954 4).
        if (round == 0 && *response == "=") decoded = std::string();
        else decoded = base64_decode(*response);
        if (!decoded) return Step{Kind::malformed, {}, {}};
    }
    if (mechanism_ == Mechanism::plain) {
        if (!decoded) {
            if (round == 0) return Step{Kind::challenge, "", {}};
            return Step{Kind::malformed, {}, {}};
        }
        auto creds = parse_plain(*decoded);
        if (!creds) return Step{Kind::malformed, {}, {}};
        return Step{Kind::done, {}, std::move(*creds)};
    }
    // LOGIN (draft-murchison-sasl-login): "Username:" then "Password:", each answered in base64.
    const bool have_user = !login_user_.empty();
    if (!decoded) {
        if (round == 0) return Step{Kind::challenge, base64_encode("Username:"), {}};
        return Step{Kind::malformed, {}, {}};
    }
    if (!have_user) {
        if (decoded->empty() || decoded->size() > kMaxField || decoded->find('\0') != std::string::npos)
            return Step{Kind::malformed, {}, {}};
        login_user_ = std::move(*decoded);
        return Step{Kind::challenge, base64_encode("Password:"), {}};
    }
    if (decoded->empty() || decoded->size() > kMaxField || decoded->find('\0') != std::string::npos)
        return Step{Kind::malformed, {}, {}};
    return Step{Kind::done, {}, Credentials{"", login_user_, std::move(*decoded)}};
}

}  // namespace ferry::accounts
