// Random text for what must not repeat: Message-IDs, MIME boundaries, file names. From std::random_device (the
// kernel's generator on Linux), so two processes started in the same second differ.
#pragma once

#include <cstddef>
#include <ctime>
#include <string>
#include <string_view>

namespace ferry::util {

// 2 * `octets` lower-case hex digits.
std::string random_hex(std::size_t octets);

// "<random.time@domain>" (RFC 5322 3.6.4).
std::string make_message_id(std::time_t now, std::string_view domain);

}  // namespace ferry::util
