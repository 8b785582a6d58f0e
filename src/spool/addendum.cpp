#include "spool/addendum.hpp"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

namespace ferry::spool {

namespace {

constexpr std::string_view kFooterKey = "Ferry-Addendum: ";

bool plain_name(std::string_view s) {
    if (s.empty() || s.size() > 64) return false;
    for (const char c : s)
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    return true;
}

bool printable(char c) { return c >= 0x20 && c <= 0x7E; }

}  // namespace

std::string hold_reason(std::string_view reason) {
    if (reason.empty()) return std::string(kDefaultHoldReason);
    std::string out(reason.substr(0, kMaxHoldReason));
    for (char& c : out)
        if (!printable(c)) c = '?';
    return out;
}

std::string serialize_addendum(const Addendum& a) {
    std::string out;
    if (!a.folder.empty()) out += "Folder: " + a.folder + "\n";
    if (!a.hold.empty()) out += "Hold: " + hold_reason(a.hold) + "\n";
    if (!a.headers.empty()) out += fmt::format("Headers: {}\n", a.headers.size()) + a.headers;
    const std::size_t total = out.size() + kAddendumFooterSize;
    out += fmt::format("{}{:016x}\n", kFooterKey, total);
    return out;
}

std::optional<std::uint64_t> parse_addendum_footer(std::string_view footer) {
    if (footer.size() != kAddendumFooterSize || !footer.starts_with(kFooterKey) || footer.back() != '\n')
        return std::nullopt;
    const std::string_view hex = footer.substr(kFooterKey.size(), 16);
    std::uint64_t size = 0;
    for (const char c : hex)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return std::nullopt;
    const auto r = std::from_chars(hex.data(), hex.data() + hex.size(), size, 16);
    if (r.ec != std::errc() || size < kAddendumFooterSize) return std::nullopt;
    return size;
}

std::optional<Addendum> parse_addendum(std::string_view block) {
    if (block.size() < kAddendumFooterSize) return std::nullopt;
    const auto footer = parse_addendum_footer(block.substr(block.size() - kAddendumFooterSize));
    if (!footer || *footer != block.size()) return std::nullopt;
    std::string_view body = block.substr(0, block.size() - kAddendumFooterSize);
    Addendum a;
    if (body.starts_with("Folder: ")) {
        const auto nl = body.find('\n');
        if (nl == std::string_view::npos) return std::nullopt;
        const std::string_view name = body.substr(8, nl - 8);
        if (!plain_name(name)) return std::nullopt;
        a.folder = std::string(name);
        body.remove_prefix(nl + 1);
    }
    if (body.starts_with("Hold: ")) {
        const auto nl = body.find('\n');
        if (nl == std::string_view::npos) return std::nullopt;
        const std::string_view reason = body.substr(6, nl - 6);
        // Only what hold_reason() writes: anything else was not written by us.
        if (reason.empty() || reason.size() > kMaxHoldReason || !std::ranges::all_of(reason, printable))
            return std::nullopt;
        a.hold = std::string(reason);
        body.remove_prefix(nl + 1);
    }
    if (body.starts_with("Headers: ")) {
        const auto nl = body.find('\n');
        if (nl == std::string_view::npos) return std::nullopt;
        const std::string_view digits = body.substr(9, nl - 9);
        std::size_t n = 0;
        const auto r = std::from_chars(digits.data(), digits.data() + digits.size(), n);
        if (digits.empty() || r.ec != std::errc() || r.ptr != digits.data() + digits.size()) return std::nullopt;
        body.remove_prefix(nl + 1);
        if (body.size() != n || n == 0) return std::nullopt;
        a.headers = std::string(body);
        body = {};
    }
    if (!body.empty()) return std::nullopt;
    return a;
}

}  // namespace ferry::spool
