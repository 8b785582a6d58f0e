#include "mailauth/results.hpp"

namespace ferry::mailauth {

std::string_view to_string(SpfResult r) {
    switch (r) {
    case SpfResult::none: return "none";
    case SpfResult::neutral: return "neutral";
    case SpfResult::pass: return "pass";
    case SpfResult::fail: return "fail";
    case SpfResult::softfail: return "softfail";
    case SpfResult::temperror: return "temperror";
    case SpfResult::permerror: return "permerror";
    }
    return "permerror";
}

std::string_view to_string(DkimResult r) {
    switch (r) {
    case DkimResult::none: return "none";
    case DkimResult::pass: return "pass";
    case DkimResult::fail: return "fail";
    case DkimResult::policy: return "policy";
    case DkimResult::neutral: return "neutral";
    case DkimResult::temperror: return "temperror";
    case DkimResult::permerror: return "permerror";
    }
    return "permerror";
}

std::string_view to_string(DmarcResult r) {
    switch (r) {
    case DmarcResult::none: return "none";
    case DmarcResult::pass: return "pass";
    case DmarcResult::fail: return "fail";
    case DmarcResult::temperror: return "temperror";
    case DmarcResult::permerror: return "permerror";
    }
    return "permerror";
}

std::string_view to_string(Disposition d) {
    switch (d) {
    case Disposition::none: return "none";
    case Disposition::quarantine: return "quarantine";
    case Disposition::reject: return "reject";
    }
    return "none";
}

}  // namespace ferry::mailauth
