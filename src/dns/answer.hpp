// One DNS lookup's outcome, independent of the library that made it.
#pragma once

#include <string>
#include <vector>

namespace ferry::dns {

struct Answer {
    enum class Status {
        data,        // records of the type asked for (in rdata)
        no_data,     // the name exists, without records of that type (NODATA)
        nxdomain,    // the name does not exist: permanent
        temporary,   // SERVFAIL, REFUSED, timeout, network or DNSSEC (bogus) failure: try again later
    };
    Status status = Status::temporary;
    std::vector<std::string> rdata;   // wire-format record data, one entry per record
    std::string canonical_name;       // after CNAMEs, when the name was an alias
    bool secure = false;              // DNSSEC-validated (kept for DANE)
    std::string why;                  // for `temporary`: what went wrong, for logs and DSNs
};

}  // namespace ferry::dns
