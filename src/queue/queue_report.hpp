// The text `ferry queue` prints: the queue as a table for people, or as JSON for scripts. Pure.
#pragma once

#include <ctime>
#include <string>
#include <vector>

#include "queue/delivery_queue.hpp"

namespace ferry::queue {

std::string format_queue_text(const std::vector<QueuedMessage>& messages, std::time_t now);
std::string format_queue_json(const std::vector<QueuedMessage>& messages, std::time_t now);

// JSON string literal (RFC 8259): quotes, backslash and control characters escaped; other octets as they are.
std::string json_string(std::string_view text);

}  // namespace ferry::queue
