// `ferry dns DOMAIN --config FILE`: where Ferry would deliver mail for DOMAIN, as its resolver sees it (the
// `[dns]` settings of the file): MX hosts in the order tried, with their addresses, or why there are none.
#pragma once

#include <filesystem>
#include <string>

namespace ferry::cli {

// Exit status: 0 deliverable; 1 permanent failure (mail would bounce); 75 temporary failure (EX_TEMPFAIL:
// mail would be retried); 2 usage or configuration error.
int run_dns_command(const std::string& domain, const std::filesystem::path& config_file);

}  // namespace ferry::cli
