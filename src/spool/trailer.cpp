#include "spool/trailer.hpp"

#include <zlib.h>

#include <fmt/format.h>

#include <limits>

namespace ferry::spool {
namespace {

constexpr std::string_view kPrefix = "Ferry-End: ";

// Exactly `digits` lowercase hex digits, nothing else.
template <typename T>
std::optional<T> parse_hex(std::string_view text) {
    T value = 0;
    for (const char c : text) {
        int d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else return std::nullopt;
        value = static_cast<T>((value << 4) | static_cast<T>(d));
    }
    return value;
}

}  // namespace

std::string make_trailer(const Trailer& t) { return fmt::format("Ferry-End: {:016x} {:08x}\n", t.length, t.crc); }

std::optional<Trailer> parse_trailer(std::string_view tail) {
    if (tail.size() != kTrailerSize || tail.substr(0, kPrefix.size()) != kPrefix || tail[27] != ' ' ||
        tail.back() != '\n')
        return std::nullopt;
    const auto length = parse_hex<std::uint64_t>(tail.substr(kPrefix.size(), 16));
    const auto crc = parse_hex<std::uint32_t>(tail.substr(28, 8));
    if (!length || !crc) return std::nullopt;
    return Trailer{*length, *crc};
}

std::uint32_t crc32_update(std::uint32_t crc, std::string_view data) {
    // zlib takes uInt lengths; feed huge inputs in pieces.
    while (!data.empty()) {
        const std::size_t n = std::min<std::size_t>(data.size(), std::numeric_limits<uInt>::max());
        crc = static_cast<std::uint32_t>(
            ::crc32(crc, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(n)));
        data.remove_prefix(n);
    }
    return crc;
}

}  // namespace ferry::spool
