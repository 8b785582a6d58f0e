#include "util/random_text.hpp"

#include <fmt/format.h>

#include <random>

namespace ferry::util {

std::string random_hex(std::size_t octets) {
    std::random_device device;
    std::string out;
    for (std::size_t i = 0; i < octets; ++i) out += fmt::format("{:02x}", device() & 0xff);
    return out;
}

std::string make_message_id(std::time_t now, std::string_view domain) {
    return fmt::format("<{}.{}@{}>", random_hex(12), static_cast<long long>(now), domain);
}

}  // namespace ferry::util
