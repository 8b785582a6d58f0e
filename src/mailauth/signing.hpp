// DKIM signing of mail from authenticated users: the keys of [[dkim.key]], loaded when the server starts, and
// which of them sign a message (the From: domain's own keys, else those of its nearest parent domain that has
// keys, so a subdomain's mail still aligns under DMARC's relaxed rule). Every key of that domain signs, so an
// RSA and an Ed25519 key can be used side by side (RFC 8463 5).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "mailauth/dkim_sign.hpp"

namespace ferry::mailauth {

class SigningKeys {
public:
    SigningKeys() = default;
    // Throws std::runtime_error naming the key (dkim.key[N]) and the file when a key cannot be used.
    static SigningKeys load(const config::DkimSettings& settings);

    // The keys for mail whose From: domain is `domain` (lower case); empty when none apply.
    std::vector<const DkimSigningKey*> for_domain(std::string_view domain) const;
    // The signer of a message from `sender` with this header section: the keys of its signing_domain() (the
    // same choice on every door mail comes in by); nullopt when no key applies.
    std::optional<DkimSigner> signer_for(std::string_view header_section, std::string_view sender) const;
    bool empty() const { return keys_.empty(); }
    const DkimSignOptions& options() const { return options_; }

private:
    std::vector<DkimSigningKey> keys_;
    DkimSignOptions options_;
};

// The domain whose keys sign a message: the From: field's (RFC 5322 3.6.2: the author), else the envelope
// sender's; nullopt when neither gives one.
std::optional<std::string> signing_domain(std::string_view header_section, std::string_view sender);

}  // namespace ferry::mailauth
