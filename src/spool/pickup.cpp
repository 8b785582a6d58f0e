#include "spool/pickup.hpp"

namespace ferry::spool {

namespace {

constexpr std::string_view kMagic = "Ferry-Pickup: 1\n";

}  // namespace

std::string serialize_pickup(const PickupEnvelope& e) {
    std::string out(kMagic);
    out += "Sender: " + e.sender + "\n";
    for (const auto& r : e.recipients) out += "Recipient: " + r + "\n";
    out += "\n";
    return out;
}

std::optional<ParsedPickup> parse_pickup(std::string_view file) {
    if (!file.starts_with(kMagic)) return std::nullopt;
    ParsedPickup out;
    std::size_t pos = kMagic.size();
    bool sender = false;
    for (;;) {
        const auto nl = file.find('\n', pos);
        if (nl == std::string_view::npos) return std::nullopt;
        const std::string_view line = file.substr(pos, nl - pos);
        pos = nl + 1;
        if (line.empty()) break;
        // The order serialize_pickup writes: the sender, then the recipients (a head read back prints the same).
        if (line.starts_with("Sender: ") && !sender && out.envelope.recipients.empty()) {
            out.envelope.sender = std::string(line.substr(8));
            sender = true;
        } else if (line.starts_with("Recipient: ") && line.size() > 11 &&
                   out.envelope.recipients.size() < kMaxPickupRecipients) {
            out.envelope.recipients.emplace_back(line.substr(11));
        } else {
            return std::nullopt;
        }
    }
    for (const auto& r : out.envelope.recipients)
        if (r.find('\r') != std::string::npos) return std::nullopt;
    if (!sender || out.envelope.recipients.empty() || out.envelope.sender.find('\r') != std::string::npos)
        return std::nullopt;
    out.message_offset = pos;
    return out;
}

bool is_pickup_name(std::string_view name) {
    // <seconds>.<pid>.<hex>
    const auto first = name.find('.');
    const auto second = first == std::string_view::npos ? first : name.find('.', first + 1);
    if (first == 0 || second == std::string_view::npos || second == first + 1 || second + 1 >= name.size() ||
        name.size() > 64)
        return false;
    for (std::size_t i = 0; i < name.size(); ++i) {
        const char c = name[i];
        if (i == first || i == second) continue;
        const bool digit = c >= '0' && c <= '9';
        const bool hex = digit || (c >= 'a' && c <= 'f');
        if (i < second ? !digit : !hex) return false;
    }
    return true;
}

}  // namespace ferry::spool
