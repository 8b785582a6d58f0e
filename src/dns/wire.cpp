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

namespace {

constexpr std::size_t kHeaderSize = 12;            // RFC 1035 4.1.1
constexpr std::size_t kMaxNameLength = 255;        // RFC 1035 2.3.4, in wire form
constexpr int kClassIn = 1;

std::uint16_t u16(std::string_view wire, std::size_t at) {
    return static_cast<std::uint16_t>((static_cast<unsigned char>(wire[at]) << 8) | static_cast<unsigned char>(wire[at + 1]));
}

// A possibly compressed name in a whole message (RFC 1035 4.1.4) as lower-case labels, `pos` advanced past it
// where it stands. Every pointer must point before the label sequence it ends, so reading always terminates.
std::optional<std::vector<std::string>> message_name(std::string_view message, std::size_t& pos) {
    std::vector<std::string> labels;
    std::size_t at = pos;
    std::size_t sequence_start = pos;   // where the labels being read began: pointers must go before it
    std::optional<std::size_t> end;      // where the name ends in place (after its first pointer)
    std::size_t total = 1;
    for (;;) {
        if (at >= message.size()) return std::nullopt;
        const auto len = static_cast<unsigned char>(message[at]);
        if (len == 0) {
            ++at;
            break;
        }
        if ((len & 0xc0) == 0xc0) {
            if (at + 1 >= message.size()) return std::nullopt;
            const std::size_t target = u16(message, at) & 0x3fff;
            if (target >= sequence_start) return std::nullopt;
            if (!end) end = at + 2;
            at = sequence_start = target;
            continue;
        }
        if (len > 63) return std::nullopt;   // 0x40 / 0x80: obsolete label types
        if (at + 1 + len > message.size()) return std::nullopt;
        total += len + 1;
        if (total > kMaxNameLength) return std::nullopt;
        std::string label(message.substr(at + 1, len));
        for (char& c : label)
            if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        labels.push_back(std::move(label));
        at += 1 + len;
    }
    pos = end ? *end : at;
    return labels;
}

std::vector<std::string> dotted_labels(std::string_view name) {
    if (!name.empty() && name.back() == '.') name.remove_suffix(1);
    std::vector<std::string> labels;
    if (name.empty()) return labels;
    std::size_t start = 0;
    for (std::size_t i = 0; i <= name.size(); ++i) {
        if (i < name.size() && name[i] != '.') continue;
        std::string label(name.substr(start, i - start));
        for (char& c : label)
            if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        labels.push_back(std::move(label));
        start = i + 1;
    }
    return labels;
}

// RFC 3597 4: only the types of RFC 1035 with a name in their rdata may carry compression pointers there.
bool rdata_may_be_compressed(int type) {
    switch (type) {
    case 2: case 3: case 4: case 5: case 6: case 7: case 8: case 9:   // NS MD MF CNAME SOA MB MG MR
    case 12: case 14: case 15:                                         // PTR MINFO MX
        return true;
    default:
        return false;
    }
}

}  // namespace

std::optional<int> message_rcode(std::string_view message) {
    if (message.size() < kHeaderSize) return std::nullopt;
    return static_cast<unsigned char>(message[3]) & 0x0f;
}

std::optional<std::vector<std::string>> answer_rdata(std::string_view message, std::string_view owner, int type) {
    if (rdata_may_be_compressed(type) || message.size() < kHeaderSize) return std::nullopt;
    const std::vector<std::string> wanted = dotted_labels(owner);
    const std::size_t questions = u16(message, 4);
    const std::size_t answers = u16(message, 6);
    std::size_t pos = kHeaderSize;
    for (std::size_t q = 0; q < questions; ++q) {
        if (!message_name(message, pos) || pos + 4 > message.size()) return std::nullopt;
        pos += 4;   // QTYPE, QCLASS
    }
    std::vector<std::string> rdata;
    for (std::size_t a = 0; a < answers; ++a) {
        const auto name = message_name(message, pos);
        if (!name || pos + 10 > message.size()) return std::nullopt;
        const int rr_type = u16(message, pos);
        const int rr_class = u16(message, pos + 2);
        const std::size_t length = u16(message, pos + 8);   // after TYPE, CLASS and the 32-bit TTL
        pos += 10;
        if (pos + length > message.size()) return std::nullopt;
        if (rr_type == type && rr_class == kClassIn && *name == wanted) rdata.emplace_back(message.substr(pos, length));
        pos += length;
    }
    return rdata;
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
