#include "policy/recipient_policy.hpp"

namespace ferry::policy {

bool is_postmaster(std::string_view local_part) { return smtp::ascii_lower(local_part) == "postmaster"; }

smtp::RecipientVerdict LocalRecipientPolicy::check_recipient(const smtp::Mailbox& recipient) {
    // "<Postmaster>" without a domain (RFC 5321 4.1.1.3) is ours by definition.
    if (recipient.domain.empty()) return smtp::RecipientVerdict::accept;
    if (!directory_.is_local_domain(smtp::ascii_lower(recipient.domain))) return smtp::RecipientVerdict::relay_denied;
    // RFC 5321 4.5.1: postmaster of every local domain must be accepted.
    if (is_postmaster(recipient.local)) return smtp::RecipientVerdict::accept;
    const std::string key = LocalDirectory::key_of(recipient.local + "@" + recipient.domain);
    if (directory_.alias_targets(key) || directory_.has_account(key)) return smtp::RecipientVerdict::accept;
    return smtp::RecipientVerdict::unknown_user;
}

}  // namespace ferry::policy
