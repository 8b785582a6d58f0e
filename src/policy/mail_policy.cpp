#include "policy/mail_policy.hpp"

#include <set>
#include <vector>

namespace ferry::policy {

bool is_postmaster(std::string_view local_part) { return smtp::ascii_lower(local_part) == "postmaster"; }

smtp::RecipientVerdict LocalMailPolicy::check_recipient(const smtp::Mailbox& recipient, const std::string& user) {
    // "<Postmaster>" without a domain (RFC 5321 4.1.1.3) is ours by definition.
    if (recipient.domain.empty()) return smtp::RecipientVerdict::accept;
    if (!directory_.is_local_domain(smtp::ascii_lower(recipient.domain)))
        return user.empty() ? smtp::RecipientVerdict::relay_denied : smtp::RecipientVerdict::accept;
    // RFC 5321 4.5.1: postmaster of every local domain must be accepted.
    if (is_postmaster(recipient.local)) return smtp::RecipientVerdict::accept;
    const std::string key = LocalDirectory::key_of(recipient.local + "@" + recipient.domain);
    if (directory_.alias_targets(key) || directory_.has_account(key)) return smtp::RecipientVerdict::accept;
    return smtp::RecipientVerdict::unknown_user;
}

bool LocalMailPolicy::sender_allowed(const smtp::Path& sender, const std::string& user) {
    if (!check_sender_login_ || !sender.mailbox) return true;   // the null sender <> claims nobody
    const std::string key = LocalDirectory::key_of(sender.mailbox->to_string());
    if (key == user) return true;
    // An alias the user may send as: one whose expansion reaches the user (as `ferry user` names it).
    std::vector<std::string> todo{key};
    std::set<std::string> seen{key};
    for (int depth = 0; depth < 10 && !todo.empty(); ++depth) {
        std::vector<std::string> next;
        for (const auto& address : todo) {
            for (const auto& target : directory_.alias_targets(address).value_or(std::vector<std::string>{})) {
                const std::string t = LocalDirectory::key_of(target);
                if (t == user) return true;
                if (seen.insert(t).second) next.push_back(t);
            }
        }
        todo = std::move(next);
    }
    return false;
}

}  // namespace ferry::policy
