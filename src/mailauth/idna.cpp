#include "mailauth/idna.hpp"

#include <idn2.h>

#include "util/utf8.hpp"

namespace ferry::mailauth {

namespace {
// RFC 1035 2.3.4 allows 253 octets of name; an A-label octet is at most 4 octets of UTF-8 in its U-label.
constexpr std::size_t kMaxUnicodeNameOctets = 4 * 253;
}  // namespace

std::optional<std::string> to_a_labels(std::string_view name) {
    if (util::is_ascii(name)) return std::string(name);
    if (name.size() > kMaxUnicodeNameOctets || name.find('\0') != std::string_view::npos) return std::nullopt;
    const std::string input(name);   // libidn2 takes a NUL-terminated string
    char* output = nullptr;
    const int rc = idn2_to_ascii_8z(input.c_str(), &output, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
    if (rc != IDN2_OK || output == nullptr) {
        idn2_free(output);
        return std::nullopt;
    }
    std::string converted(output);
    idn2_free(output);
    return converted;
}

}  // namespace ferry::mailauth
