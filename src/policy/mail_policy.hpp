// The transaction decisions of a session: local recipients must exist; only authenticated users relay, and
// only as an address they own (their own, or an alias that reaches them).
#pragma once

#include "policy/local_directory.hpp"
#include "smtp/session.hpp"

namespace ferry::policy {

class LocalMailPolicy : public smtp::MailPolicy {
public:
    LocalMailPolicy(LocalDirectory& directory, bool check_sender_login)
        : directory_(directory), check_sender_login_(check_sender_login) {}
    smtp::RecipientVerdict check_recipient(const smtp::Mailbox& recipient, const std::string& user) override;
    bool sender_allowed(const smtp::Path& sender, const std::string& user) override;

private:
    LocalDirectory& directory_;
    bool check_sender_login_;
};

bool is_postmaster(std::string_view local_part);   // RFC 5321 4.5.1: case-insensitive "postmaster"

}  // namespace ferry::policy
