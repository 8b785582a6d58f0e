#pragma once

#include <ctime>
#include <string>

namespace ferry::util {

// RFC 5322 3.3 date-time in UTC: "Mon, 23 Nov 2026 10:00:00 +0000".
std::string rfc5322_date(std::time_t when);

}  // namespace ferry::util
