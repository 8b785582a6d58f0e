#include "dsn/request.hpp"

#include <utility>

namespace ferry::dsn {

std::string format_notify(unsigned notify) {
    if (notify & kNotifyNever) return "NEVER";
    constexpr std::pair<NotifyFlag, std::string_view> kNames[] = {
        {kNotifySuccess, "SUCCESS"}, {kNotifyFailure, "FAILURE"}, {kNotifyDelay, "DELAY"}};
    std::string out;
    for (const auto& [flag, name] : kNames) {
        if ((notify & flag) == 0) continue;
        if (!out.empty()) out.push_back(',');
        out += name;
    }
    return out;
}

std::string_view to_string(Ret ret) {
    switch (ret) {
    case Ret::unspecified: return "";
    case Ret::full: return "FULL";
    case Ret::hdrs: return "HDRS";
    }
    return "";
}

}  // namespace ferry::dsn
