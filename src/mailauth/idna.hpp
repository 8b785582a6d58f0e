// Domain names in the form DNS is asked with: U-labels converted to A-labels (RFC 5890; RFC 8616 for SPF,
// DKIM and DMARC). The IDNA2008 mapping and checks are libidn2's (NFC, nontransitional).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace ferry::mailauth {

// `name` with its U-labels as A-labels; an ASCII name comes back as it is. Nothing when libidn2 refuses the
// name, when it holds a NUL, or when it is too long to be a DNS name in either form.
std::optional<std::string> to_a_labels(std::string_view name);

}  // namespace ferry::mailauth
