// An SMTP reply (RFC 5321 4.2) with its RFC 3463 enhanced status code (RFC 2034).
#pragma once

#include <string>
#include <vector>

namespace ferry::smtp {

struct Reply {
    int code = 250;
    std::string enhanced;             // "2.1.0"; empty for the greeting and EHLO/HELO (RFC 2034 3)
    std::vector<std::string> lines;   // one or more text lines

    Reply() = default;
    Reply(int c, std::string enh, std::string text) : code(c), enhanced(std::move(enh)), lines{std::move(text)} {}

    bool is_error() const { return code >= 400; }
    bool is_positive() const { return code >= 200 && code < 400; }

    // Wire form: "250-first\r\n250 last\r\n", the enhanced code repeated on each line.
    std::string render() const;
    void render_to(std::string& out) const;
};

}  // namespace ferry::smtp
