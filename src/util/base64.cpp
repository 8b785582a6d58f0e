#include "util/base64.hpp"

#include <array>
#include <cstdint>

namespace ferry::util {
namespace {

constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<std::int8_t, 256> decode_table() {
    std::array<std::int8_t, 256> t{};
    for (auto& v : t) v = -1;
    for (std::size_t i = 0; i < kAlphabet.size(); ++i)
        t[static_cast<unsigned char>(kAlphabet[i])] = static_cast<std::int8_t>(i);
    return t;
}
constexpr auto kDecode = decode_table();

std::uint32_t octet(std::string_view s, std::size_t i) { return static_cast<unsigned char>(s[i]); }

// Appends the encoding of `in` (any length) to `out`.
void encode_into(std::string_view in, std::string& out) {
    std::size_t i = 0;
    for (; i + 3 <= in.size(); i += 3) {
        const std::uint32_t v = octet(in, i) << 16 | octet(in, i + 1) << 8 | octet(in, i + 2);
        out += kAlphabet[v >> 18 & 63];
        out += kAlphabet[v >> 12 & 63];
        out += kAlphabet[v >> 6 & 63];
        out += kAlphabet[v & 63];
    }
    const std::size_t rest = in.size() - i;
    if (rest == 0) return;
    std::uint32_t v = octet(in, i) << 16;
    if (rest == 2) v |= octet(in, i + 1) << 8;
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += rest == 2 ? kAlphabet[v >> 6 & 63] : '=';
    out += '=';
}

}  // namespace

std::string base64_encode(std::string_view octets) {
    std::string out;
    out.reserve((octets.size() + 2) / 3 * 4);
    encode_into(octets, out);
    return out;
}

std::string base64_encode_mime(std::string_view octets) {
    // 57 input octets make one full 76-character line.
    constexpr std::size_t kOctetsPerLine = kMimeBase64LineLength / 4 * 3;
    const std::size_t lines = (octets.size() + kOctetsPerLine - 1) / kOctetsPerLine;
    std::string out;
    out.reserve((octets.size() + 2) / 3 * 4 + 2 * lines);
    for (std::size_t i = 0; i < octets.size(); i += kOctetsPerLine) {
        encode_into(octets.substr(i, kOctetsPerLine), out);
        out += "\r\n";
    }
    return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
    if (text.size() % 4 != 0) return std::nullopt;
    std::size_t pad = 0;
    if (!text.empty() && text.back() == '=') pad = text.size() >= 2 && text[text.size() - 2] == '=' ? 2 : 1;
    std::string out;
    out.reserve(text.size() / 4 * 3);
    for (std::size_t i = 0; i < text.size(); i += 4) {
        const bool last = i + 4 == text.size();
        std::uint32_t v = 0;
        for (std::size_t j = 0; j < 4; ++j) {
            int d = 0;   // the '=' padding the last quantum (found above to be at the very end) counts as zero bits
            if (!(last && j >= 4 - pad)) {
                d = kDecode[static_cast<unsigned char>(text[i + j])];
                if (d < 0) return std::nullopt;   // includes a '=' anywhere else
            }
            v = v << 6 | static_cast<std::uint32_t>(d);
        }
        out += static_cast<char>(v >> 16 & 0xff);
        if (!(last && pad == 2)) out += static_cast<char>(v >> 8 & 0xff);
        if (!(last && pad >= 1)) out += static_cast<char>(v & 0xff);
    }
    return out;
}

}  // namespace ferry::util
