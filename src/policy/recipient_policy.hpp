// The RCPT decision for a receiving session: local recipients must exist; nobody may relay (no AUTH yet).
#pragma once

#include "policy/local_directory.hpp"
#include "smtp/session.hpp"

namespace ferry::policy {

class LocalRecipientPolicy : public smtp::RecipientPolicy {
public:
    explicit LocalRecipientPolicy(LocalDirectory& directory) : directory_(directory) {}
    smtp::RecipientVerdict check_recipient(const smtp::Mailbox& recipient) override;

private:
    LocalDirectory& directory_;
};

bool is_postmaster(std::string_view local_part);   // RFC 5321 4.5.1: case-insensitive "postmaster"

}  // namespace ferry::policy
