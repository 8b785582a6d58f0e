#include "mailauth/signing.hpp"

#include <fmt/format.h>

#include <stdexcept>

#include "mailauth/from_domain.hpp"
#include "util/ascii.hpp"

namespace ferry::mailauth {

SigningKeys SigningKeys::load(const config::DkimSettings& settings) {
    SigningKeys keys;
    keys.options_.header_canon = settings.relaxed_header ? DkimCanon::relaxed : DkimCanon::simple;
    keys.options_.body_canon = settings.relaxed_body ? DkimCanon::relaxed : DkimCanon::simple;
    for (std::size_t i = 0; i < settings.keys.size(); ++i) {
        const config::DkimKeySettings& k = settings.keys[i];
        std::string error;
        auto key = load_signing_key(k.private_key, k.domain, k.selector, error);
        if (!key)
            throw std::runtime_error(fmt::format("dkim.key[{}] ({}._domainkey.{}): {}", i, k.selector, k.domain, error));
        keys.keys_.push_back(std::move(*key));
    }
    return keys;
}

std::vector<const DkimSigningKey*> SigningKeys::for_domain(std::string_view domain) const {
    std::vector<const DkimSigningKey*> found;
    for (std::string_view d = domain; !d.empty();) {
        for (const auto& k : keys_)
            if (k.domain == d) found.push_back(&k);
        if (!found.empty()) break;
        const auto dot = d.find('.');
        if (dot == std::string_view::npos) break;
        d.remove_prefix(dot + 1);
    }
    return found;
}

std::optional<DkimSigner> SigningKeys::signer_for(std::string_view header_section, std::string_view sender) const {
    if (keys_.empty()) return std::nullopt;
    const auto domain = signing_domain(header_section, sender);
    if (!domain) return std::nullopt;
    std::vector<DkimSigningKey> keys;
    for (const DkimSigningKey* key : for_domain(*domain)) keys.push_back(*key);
    if (keys.empty()) return std::nullopt;
    return DkimSigner(std::move(keys), options_, header_section);
}

std::optional<std::string> signing_domain(std::string_view header_section, std::string_view sender) {
    std::string problem;
    if (auto from = from_domain(header_section, problem)) return from;
    const auto at = sender.rfind('@');
    if (at == std::string_view::npos || at + 1 == sender.size()) return std::nullopt;
    return util::ascii_lower(sender.substr(at + 1));
}

}  // namespace ferry::mailauth
