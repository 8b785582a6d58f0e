#include "spool/envelope.hpp"

#include <charconv>

namespace ferry::spool {
namespace {
constexpr std::string_view kMagic = "Ferry-Spool: 1\n";
}

std::string serialize_envelope(const Envelope& e) {
    std::string out(kMagic);
    out += "Queue-Id: " + e.queue_id + "\n";
    out += "Arrival: " + std::to_string(e.arrival) + "\n";
    out += "Client: " + e.client + "\n";
    out += "Sender: " + e.sender + "\n";
    for (const auto& r : e.recipients) out += "Recipient: " + r + "\n";
    out += "\n";
    return out;
}

std::optional<ParsedEnvelope> parse_envelope(std::string_view head) {
    if (head.substr(0, kMagic.size()) != kMagic) return std::nullopt;
    ParsedEnvelope out;
    std::size_t pos = kMagic.size();
    while (true) {
        const auto nl = head.find('\n', pos);
        if (nl == std::string_view::npos) return std::nullopt;
        const std::string_view line = head.substr(pos, nl - pos);
        pos = nl + 1;
        if (line.empty()) break;
        const auto colon = line.find(": ");
        if (colon == std::string_view::npos) {
            // "Sender: " with the null sender serializes as "Sender:" plus a space, so colon is always found.
            return std::nullopt;
        }
        const std::string_view key = line.substr(0, colon);
        const std::string_view value = line.substr(colon + 2);
        if (key == "Queue-Id") out.envelope.queue_id = std::string(value);
        else if (key == "Arrival") std::from_chars(value.data(), value.data() + value.size(), out.envelope.arrival);
        else if (key == "Client") out.envelope.client = std::string(value);
        else if (key == "Sender") out.envelope.sender = std::string(value);
        else if (key == "Recipient") out.envelope.recipients.emplace_back(value);
        else return std::nullopt;
    }
    if (out.envelope.queue_id.empty() || out.envelope.recipients.empty()) return std::nullopt;
    out.content_offset = pos;
    return out;
}

}  // namespace ferry::spool
