// One DNS question, answered asynchronously: what the checks of mailauth/ need from the resolver. An interface
// so the pure-logic evaluators (SPF, DKIM keys, DMARC) can be unit-tested and fuzzed with a table of answers.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <string>

#include "dns/answer.hpp"

namespace ferry::dns {

class Lookup {
public:
    virtual ~Lookup() = default;
    // `name` without a trailing dot; `type` a record type (kTypeTxt, ...). Never throws for DNS trouble: a
    // failure is an Answer with Status::temporary.
    virtual boost::asio::awaitable<Answer> query(std::string name, int type) = 0;
};

}  // namespace ferry::dns
