#include "cli/logging.hpp"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace ferry::cli {

void setup_logging(const std::string& level) {
    auto logger = spdlog::stderr_logger_mt("ferry");
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %l %v", spdlog::pattern_time_type::utc);
    logger->set_level(spdlog::level::from_str(level));
    logger->flush_on(spdlog::level::trace);   // operators and tests tail the log; never lose the last lines
    spdlog::set_default_logger(logger);
}

}  // namespace ferry::cli
