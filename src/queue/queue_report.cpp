#include "queue/queue_report.hpp"

#include <fmt/format.h>

namespace ferry::queue {

namespace {

std::string duration_text(long long seconds) {
    if (seconds < 0) seconds = 0;
    if (seconds < 120) return fmt::format("{}s", seconds);
    if (seconds < 7200) return fmt::format("{}m", seconds / 60);
    if (seconds < 2 * 86400) return fmt::format("{}h", seconds / 3600);
    return fmt::format("{}d", seconds / 86400);
}

}  // namespace

std::string json_string(std::string_view text) {
    std::string out = "\"";
    for (const char c : text) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (u < 0x20 || u == 0x7F) {
            out += fmt::format("\\u{:04x}", u);
        } else {
            out += c;
        }
    }
    return out + "\"";
}

std::string format_queue_text(const std::vector<QueuedMessage>& messages, std::time_t now) {
    if (messages.empty()) return "Mail queue is empty\n";
    std::string out;
    for (const auto& m : messages) {
        out += fmt::format("{}  {:>9}  age {:>4}  <{}>\n", m.id, m.size, duration_text(now - m.arrival), m.sender);
        if (m.held) out += fmt::format("    HELD: {} (ferry queue release {})\n", m.hold_reason, m.id);
        for (const auto& r : m.recipients) {
            const std::string when = m.held                ? "held"
                                     : r.in_flight          ? "being delivered"
                                     : r.next_attempt == 0 ? "due now"
                                                           : "next try in " + duration_text(r.next_attempt - now);
            out += fmt::format("    <{}>  attempts {}, {}\n", r.address, r.attempts, when);
            if (!r.last_error.empty()) out += fmt::format("        {}\n", r.last_error);
        }
    }
    out += fmt::format("-- {} message{} in the queue\n", messages.size(), messages.size() == 1 ? "" : "s");
    return out;
}

std::string format_queue_json(const std::vector<QueuedMessage>& messages, std::time_t now) {
    std::string out = "[";
    for (std::size_t i = 0; i < messages.size(); ++i) {
        const auto& m = messages[i];
        out += i ? ",\n " : "";
        out += fmt::format(R"({{"id": {}, "arrival": {}, "age": {}, "sender": {}, "size": {}, "held": {}, "hold_reason": {}, "recipients": [)",
                           json_string(m.id), m.arrival, now - m.arrival, json_string(m.sender), m.size,
                           m.held ? "true" : "false", m.held ? json_string(m.hold_reason) : "null");
        for (std::size_t j = 0; j < m.recipients.size(); ++j) {
            const auto& r = m.recipients[j];
            out += fmt::format(R"({}{{"address": {}, "status": "{}", "attempts": {}, "last_error": {}, "next_attempt": {}}})",
                               j ? ", " : "", json_string(r.address),
                               m.held ? "held" : r.in_flight ? "in-flight" : "pending", r.attempts,
                               json_string(r.last_error),
                               m.held || r.in_flight || r.next_attempt == 0 ? "null" : std::to_string(r.next_attempt));
        }
        out += "]}";
    }
    return out + "]\n";
}

}  // namespace ferry::queue
