#pragma once

#include <string>

namespace ferry::cli {

// One line per event on stderr: "2026-11-23T10:00:00.123456Z info queued id=... from=<...>".
void setup_logging(const std::string& level);

}  // namespace ferry::cli
