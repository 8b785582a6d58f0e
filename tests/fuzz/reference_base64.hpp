// An RFC 4648 base64 decoder written apart from util/base64, so the fuzz targets can check the code under test
// (and what it produced) against something that does not share its mistakes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ferry::fuzz {

inline int reference_base64_value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

struct RefDecoded {
    std::string octets;
    bool canonical = true;   // the bits under the padding are zero (RFC 4648 3.5)
};

// RFC 4648 4, quantum by quantum: the alphabet only, length a multiple of 4, "=" only as the last one or two
// characters of the last quantum. Non-zero pad bits are accepted (and reported), as util/base64 accepts them.
inline std::optional<RefDecoded> reference_base64_decode(std::string_view t) {
    if (t.size() % 4 != 0) return std::nullopt;
    RefDecoded r;
    for (std::size_t i = 0; i < t.size(); i += 4) {
        const bool last = i + 4 == t.size();
        std::uint32_t n = 0;
        int pad = 0;
        for (std::size_t j = 0; j < 4; ++j) {
            const char c = t[i + j];
            if (c == '=') {
                if (!last || j < 2) return std::nullopt;
                ++pad;
                n <<= 6;
                continue;
            }
            const int v = reference_base64_value(c);
            if (v < 0 || pad > 0) return std::nullopt;
            n = n << 6 | static_cast<std::uint32_t>(v);
        }
        r.octets += static_cast<char>(n >> 16 & 0xff);
        if (pad < 2) r.octets += static_cast<char>(n >> 8 & 0xff);
        if (pad < 1) r.octets += static_cast<char>(n & 0xff);
        if ((pad == 1 && (n & 0xff) != 0) || (pad == 2 && (n & 0xffff) != 0)) r.canonical = false;
    }
    return r;
}

}  // namespace ferry::fuzz
