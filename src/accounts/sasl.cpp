#include "accounts/sasl.hpp"

#include "util/ascii.hpp"

namespace ferry::accounts {
namespace {

constexpr std::size_t kMaxField = 255;   // RFC 4616 2: each field up to 255 octets

}  // namespace

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
