// The commit record at the end of every spool file. A message is committed when its file ends with a trailer
// that states the length of everything before it and the CRC-32 of those bytes; the sync that follows the
// trailer's write is the commit (one barrier per batch, no rename). A file without a valid trailer was never
// acknowledged and is discarded at start-up; a trailer whose CRC does not match the bytes before it means the
// filesystem lost data under us, and the file is kept aside for the operator.
//
//   Ferry-End: <length, 16 lowercase hex digits> <crc32, 8 lowercase hex digits>\n
//
// Pure: text in, text out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ferry::spool {

struct Trailer {
    std::uint64_t length = 0;   // bytes before the trailer: envelope and content
    std::uint32_t crc = 0;      // CRC-32 (ISO-HDLC, as zlib and gzip) of those bytes
};

inline constexpr std::size_t kTrailerSize = 37;

std::string make_trailer(const Trailer& trailer);

// `tail` must be the last kTrailerSize bytes of the file; nullopt unless they are a well-formed trailer.
std::optional<Trailer> parse_trailer(std::string_view tail);

// Running CRC-32: start from 0, feed the bytes in order.
std::uint32_t crc32_update(std::uint32_t crc, std::string_view data);

}  // namespace ferry::spool
