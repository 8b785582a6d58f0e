// Where a recipient's copy goes: local mailboxes after alias expansion, or a remote domain (delivery/outbound).
#pragma once

#include <string>
#include <vector>

#include "policy/local_directory.hpp"

namespace ferry::delivery {

struct Destination {
    enum class Kind { mailbox, remote };
    Kind kind = Kind::mailbox;
    std::string address;   // final address, lower-case for local mailboxes
    std::string local;     // mailbox: lower-case local part
    std::string domain;    // lower-case domain
};

struct Route {
    std::vector<Destination> destinations;
    std::string error;       // set when the recipient cannot be routed
    std::string status;      // with error: its RFC 3463 code
    bool permanent = false;  // the error will not go away by retrying
};

class Router {
public:
    explicit Router(policy::LocalDirectory& directory) : directory_(directory) {}
    Route resolve(const std::string& recipient);

private:
    policy::LocalDirectory& directory_;
};

}  // namespace ferry::delivery
