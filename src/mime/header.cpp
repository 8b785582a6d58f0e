#include "mime/header.hpp"

#include "util/ascii.hpp"

namespace ferry::mime {
namespace {

bool is_wsp(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
    while (!s.empty() && (is_wsp(s.front()) || s.front() == '\r' || s.front() == '\n')) s.remove_prefix(1);
    while (!s.empty() && (is_wsp(s.back()) || s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
    return s;
}

// Drops an obsolete route ("@a,@b:") in front of an angle-addr's addr-spec (RFC 5322 4.4).
std::string_view strip_route(std::string_view addr) {
    if (!addr.empty() && addr.front() == '@') {
        const auto colon = addr.find(':');
        if (colon != std::string_view::npos) addr.remove_prefix(colon + 1);
    }
    return addr;
}

}  // namespace

std::string_view header_section(std::string_view message) {
    for (std::size_t i = 0; i < message.size(); ++i) {
        if (message[i] != '\n') continue;
        // The line starting after this LF is empty: the header section ends at this LF.
        const std::string_view rest = message.substr(i + 1);
        if (rest.starts_with("\r\n") || rest.starts_with("\n")) return message.substr(0, i + 1);
    }
    return message;
}

std::vector<RawField> header_fields(std::string_view header) {
    std::vector<RawField> fields;
    std::size_t pos = 0;
    while (pos < header.size()) {
        std::size_t end = header.find('\n', pos);
        end = end == std::string_view::npos ? header.size() : end + 1;
        while (end < header.size() && is_wsp(header[end])) {   // continuation lines belong to this field
            const std::size_t e = header.find('\n', end);
            end = e == std::string_view::npos ? header.size() : e + 1;
        }
        const std::string_view raw = header.substr(pos, end - pos);
        std::string_view name;
        const auto colon = raw.find(':');
        const auto eol = raw.find('\n');
        if (!raw.empty() && !is_wsp(raw.front()) && colon != std::string_view::npos && colon < eol) {
            name = raw.substr(0, colon);
            while (!name.empty() && is_wsp(name.back())) name.remove_suffix(1);
        }
        fields.push_back(RawField{name, raw});
        pos = end;
    }
    return fields;
}

std::size_t count_header_fields(std::string_view header, std::string_view name) {
    std::size_t n = 0;
    for (const RawField& f : header_fields(header))
        if (!f.name.empty() && util::ascii_iequals(f.name, name)) ++n;
    return n;
}

std::optional<std::string> header_field(std::string_view header, std::string_view name) {
    const std::string want = util::ascii_lower(name);
    std::size_t pos = 0;
    while (pos < header.size()) {
        auto eol = header.find('\n', pos);
        if (eol == std::string_view::npos) eol = header.size();
        const std::string_view line = header.substr(pos, eol - pos);
        const auto colon = line.find(':');
        if (colon != std::string_view::npos && !line.empty() && !is_wsp(line.front()) &&
            util::ascii_lower(trim(line.substr(0, colon))) == want) {
            std::string value(line.substr(colon + 1));
            // Continuation lines start with WSP: unfolding removes only the line break (RFC 5322 2.2.3).
            std::size_t next = eol + 1;
            while (next < header.size() && is_wsp(header[next])) {
                auto e = header.find('\n', next);
                if (e == std::string_view::npos) e = header.size();
                while (!value.empty() && (value.back() == '\r')) value.pop_back();
                value.append(header.substr(next, e - next));
                next = e + 1;
            }
            while (!value.empty() && value.back() == '\r') value.pop_back();
            return std::string(trim(value));
        }
        pos = eol + 1;
    }
    return std::nullopt;
}

std::optional<std::vector<std::string>> address_list(std::string_view value) {
    std::vector<std::string> out;
    std::string plain;                 // the mailbox's text outside quotes, comments and angle brackets
    std::optional<std::string> angle;  // the angle-addr, when there is one
    bool in_group = false;
    auto finish = [&]() -> bool {
        std::string addr = angle ? std::string(strip_route(trim(*angle))) : std::string(trim(plain));
        const bool had_text = !trim(plain).empty() || angle.has_value();
        plain.clear();
        angle.reset();
        if (addr.empty()) return !had_text;   // an empty list element (",,") is allowed; "<>" is not
        out.push_back(std::move(addr));
        return true;
    };
    for (std::size_t i = 0; i < value.size(); ++i) {
        const char c = value[i];
        if (c == '"') {   // quoted string: kept (it may be a quoted local part)
            std::string q(1, c);
            for (++i; i < value.size() && value[i] != '"'; ++i) {
                if (value[i] == '\\' && i + 1 < value.size()) q.push_back(value[i++]);
                q.push_back(value[i]);
            }
            if (i >= value.size()) return std::nullopt;
            q.push_back('"');
            if (angle) return std::nullopt;   // text after the angle-addr
            plain += q;
        } else if (c == '(') {   // comment, possibly nested: dropped
            int depth = 1;
            for (++i; i < value.size() && depth > 0; ++i) {
                if (value[i] == '\\') ++i;
                else if (value[i] == '(') ++depth;
                else if (value[i] == ')') --depth;
            }
            if (depth > 0) return std::nullopt;
            --i;
            plain.push_back(' ');
        } else if (c == '<') {
            const auto close = value.find('>', i + 1);
            if (close == std::string_view::npos || angle) return std::nullopt;
            angle = std::string(value.substr(i + 1, close - i - 1));
            if (angle->find_first_of("<\"") != std::string::npos) return std::nullopt;
            plain.clear();   // the display name is not an address
            i = close;
        } else if (c == ')' || c == '>') {
            return std::nullopt;
        } else if (c == ':' && !angle && !in_group) {   // group: its display name is not an address
            in_group = true;
            plain.clear();
        } else if (c == ';' && in_group) {
            if (!finish()) return std::nullopt;
            in_group = false;
        } else if (c == ',') {
            if (!finish()) return std::nullopt;
        } else {
            if (angle && !is_wsp(c) && c != '\r' && c != '\n') return std::nullopt;
            plain.push_back(c);
        }
    }
    if (in_group || !finish()) return std::nullopt;
    return out;
}

}  // namespace ferry::mime
