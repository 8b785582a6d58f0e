#include "filter/message_edit.hpp"

#include "mime/header.hpp"
#include "util/ascii.hpp"

namespace ferry::filter {

namespace {

bool same_name(std::string_view a, std::string_view b) { return util::ascii_iequals(a, b); }

// The positions of the fields called `name`, in order.
std::vector<std::size_t> named(const std::vector<std::string>& fields, std::string_view name) {
    std::vector<std::size_t> at;
    for (std::size_t i = 0; i < fields.size(); ++i) {
        const std::string& f = fields[i];
        const auto colon = f.find(':');
        if (colon == std::string::npos) continue;
        std::string_view n(f.data(), colon);
        while (!n.empty() && (n.back() == ' ' || n.back() == '\t')) n.remove_suffix(1);
        if (same_name(n, name)) at.push_back(i);
    }
    return at;
}

}  // namespace

MessageText MessageText::split(std::string_view message) {
    MessageText m;
    const std::string_view header = mime::header_section(message);
    // The header section ends with the CRLF of its last field; the empty line follows when there is a body.
    std::size_t rest = header.size();
    if (message.substr(rest).starts_with("\r\n")) rest += 2;
    else if (message.substr(rest).starts_with("\n")) rest += 1;
    else m.has_body = false;
    m.header = std::string(header);
    if (!m.header.empty() && m.header.back() != '\n') m.header += "\r\n";
    m.body = std::string(message.substr(rest));
    return m;
}

std::string MessageText::joined() const {
    std::string out = header;
    if (has_body || !body.empty()) out += "\r\n" + body;
    return out;
}

std::string render_field(std::string_view name, std::string_view value) {
    if (!util::is_field_name(name)) return {};
    std::string out(name);
    out += ':';
    if (value.empty() || (value.front() != ' ' && value.front() != '\t')) out += ' ';
    for (std::size_t i = 0; i < value.size(); ++i) {
        const char c = value[i];
        if (c == '\r' || c == '\n') {
            if (c == '\r' && i + 1 < value.size() && value[i + 1] == '\n') ++i;
            if (i + 1 >= value.size()) break;   // a trailing line break: the field's own CRLF follows
            out += "\r\n";
            if (value[i + 1] != ' ' && value[i + 1] != '\t') out += '\t';
        } else if (c != '\0') {
            out += c;
        }
    }
    out += "\r\n";
    return out;
}

std::string apply_header_edits(std::string_view header, const std::vector<HeaderEdit>& edits, std::size_t& skipped) {
    skipped = 0;
    std::vector<std::string> fields;
    for (const mime::RawField& f : mime::header_fields(header)) fields.emplace_back(f.raw);
    for (const HeaderEdit& e : edits) {
        if (!util::is_field_name(e.name)) {
            ++skipped;
            continue;
        }
        switch (e.kind) {
        case HeaderEdit::Kind::insert: {
            const std::size_t at = e.index < 0 ? 0 : std::min<std::size_t>(static_cast<std::size_t>(e.index), fields.size());
            fields.insert(fields.begin() + static_cast<std::ptrdiff_t>(at), render_field(e.name, e.value));
            break;
        }
        case HeaderEdit::Kind::append:
            fields.push_back(render_field(e.name, e.value));
            break;
        case HeaderEdit::Kind::change: {
            // Sendmail's smfi_chgheader: the index counts the fields of that name from 1; an empty value deletes
            // the field; a field that is not there is added (a delete of it does nothing).
            const auto at = named(fields, e.name);
            const std::size_t n = e.index < 1 ? 1 : static_cast<std::size_t>(e.index);
            if (n <= at.size()) {
                if (e.value.empty()) fields.erase(fields.begin() + static_cast<std::ptrdiff_t>(at[n - 1]));
                else fields[at[n - 1]] = render_field(e.name, e.value);
            } else if (!e.value.empty()) {
                fields.push_back(render_field(e.name, e.value));
            }
            break;
        }
        case HeaderEdit::Kind::remove: {
            // rspamd's remove_headers: 0 removes every field of the name, n > 0 the nth, n < 0 the nth from the end.
            const auto at = named(fields, e.name);
            if (e.index == 0) {
                for (auto it = at.rbegin(); it != at.rend(); ++it)
                    fields.erase(fields.begin() + static_cast<std::ptrdiff_t>(*it));
            } else {
                const std::size_t n = static_cast<std::size_t>(e.index < 0 ? -e.index : e.index);
                if (n >= 1 && n <= at.size()) {
                    const std::size_t pos = e.index > 0 ? at[n - 1] : at[at.size() - n];
                    fields.erase(fields.begin() + static_cast<std::ptrdiff_t>(pos));
                }
            }
            break;
        }
        }
    }
    std::string out;
    for (const std::string& f : fields) out += f;
    return out;
}

}  // namespace ferry::filter
