#pragma once

#include <string>

namespace ferry::spool {

// A queue id: upper-case base-32 digits [0-9A-V], unique within this host across restarts: microseconds since
// the epoch, then a per-process counter. Sorts by arrival, like Postfix's long queue ids. Thread-safe.
std::string make_queue_id();

bool is_queue_id(std::string_view text);

}  // namespace ferry::spool
