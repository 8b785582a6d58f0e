#include "dns/wire.hpp"

#include <arpa/inet.h>

namespace ferry::dns {

std::optional<std::string> read_name(std::string_view wire, std::size_t& pos) {
    std::string name;
    std::size_t at = pos;
    std::size_t total = 1;   // the root label
    for (;;) {
        if (at >= wire.size()) return std::nullopt;
        const auto len = static_cast<unsigned char>(wire[at++]);
        if (len == 0) break;
        if (len > 63) return std::nullopt;   // 0xC0: compression pointer; 0x40/0x80: obsolete label types
        if (at + len > wire.size()) return std::nullopt;
        total += len + 1;
        if (total > 255) return std::nullopt;   // RFC 1035 2.3.4
        if (!name.empty()) name.push_back('.');
        for (const char c : wire.substr(at, len)) {
            const auto u = static_cast<unsigned char>(c);
            // A host name we will connect to and write into logs and DSNs: no dots inside a label, no controls.
            if (u == '.' || u <= 0x20 || u == 0x7f) return std::nullopt;
            name.push_back(u >= 'A' && u <= 'Z' ? static_cast<char>(u - 'A' + 'a') : c);
        }
        at += len;
    }
    pos = at;
    return name;
}

std::optional<MxRecord> parse_mx(std::string_view rdata) {
    if (rdata.size() < 3) return std::nullopt;
    MxRecord mx;
    mx.preference = static_cast<std::uint16_t>((static_cast<unsigned char>(rdata[0]) << 8) |
                                               static_cast<unsigned char>(rdata[1]));
    std::size_t pos = 2;
    auto host = read_name(rdata, pos);
    if (!host || pos != rdata.size()) return std::nullopt;
    mx.host = std::move(*host);
    return mx;
}

namespace {

std::optional<std::string> address_text(int family, std::string_view rdata, std::size_t size) {
    if (rdata.size() != size) return std::nullopt;
    char text[INET6_ADDRSTRLEN] = {};
    if (!::inet_ntop(family, rdata.data(), text, sizeof text)) return std::nullopt;
    return std::string(text);
}

}  // namespace

std::optional<std::string> parse_a(std::string_view rdata) { return address_text(AF_INET, rdata, 4); }
std::optional<std::string> parse_aaaa(std::string_view rdata) { return address_text(AF_INET6, rdata, 16); }

std::optional<std::string> parse_txt(std::string_view rdata) {
    if (rdata.empty()) return std::nullopt;
    std::string text;
    std::size_t at = 0;
    while (at < rdata.size()) {
        const auto len = static_cast<unsigned char>(rdata[at++]);
        if (at + len > rdata.size()) return std::nullopt;
        text.append(rdata.substr(at, len));
        at += len;
    }
    return text;
}

std::optional<std::string> parse_ptr(std::string_view rdata) {
    std::size_t pos = 0;
    auto name = read_name(rdata, pos);
    if (!name || pos != rdata.size()) return std::nullopt;
    return name;
}

std::optional<std::string> reverse_name(std::string_view address) {
    const std::string text(address);
    unsigned char bytes[16];
    if (::inet_pton(AF_INET, text.c_str(), bytes) == 1) {
        return std::to_string(bytes[3]) + "." + std::to_string(bytes[2]) + "." + std::to_string(bytes[1]) + "." +
               std::to_string(bytes[0]) + ".in-addr.arpa";
    }
    if (::inet_pton(AF_INET6, text.c_str(), bytes) == 1) {
        static constexpr char kHex[] = "0123456789abcdef";
        std::string name;
        for (int i = 15; i >= 0; --i) {
            name += kHex[bytes[i] & 0x0f];
            name += '.';
            name += kHex[bytes[i] >> 4];
            name += '.';
        }
        return name + "ip6.arpa";
    }
    return std::nullopt;
}

}  // namespace ferry::dns
