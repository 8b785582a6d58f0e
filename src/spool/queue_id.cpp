#include "spool/queue_id.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>

namespace ferry::spool {
namespace {

void append_base32(std::string& out, std::uint64_t value, int digits) {
    static constexpr char kDigits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUV";
    for (int i = digits - 1; i >= 0; --i) out.push_back(kDigits[(value >> (5 * i)) & 31]);
}

}  // namespace

std::string make_queue_id() {
    static std::atomic<std::uint32_t> counter{0};
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    const auto usec = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(now).count());
    std::string id;
    id.reserve(15);
    append_base32(id, usec, 11);                        // 55 bits of microseconds: good until year 3111
    append_base32(id, counter.fetch_add(1) & 0xFFFFF, 4);   // 20 bits: a million ids per microsecond tick
    return id;
}

bool is_queue_id(std::string_view text) {
    if (text.size() != 15) return false;
    for (char c : text)
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'V'))) return false;
    return true;
}

}  // namespace ferry::spool
