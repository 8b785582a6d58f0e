#include "cli/sendmail_message.hpp"

#include "config/config.hpp"
#include "mime/header.hpp"
#include "mime/header_splitter.hpp"
#include "util/ascii.hpp"
#include "util/time_format.hpp"

namespace ferry::cli {

namespace {

// Classic sendmail ends the message at a line holding only "." unless told -i; CRLF everywhere after.
std::string read_lines(std::string_view input, bool ignore_dots) {
    std::string out;
    out.reserve(input.size() + input.size() / 32);
    std::size_t pos = 0;
    while (pos < input.size()) {
        std::size_t nl = input.find('\n', pos);
        const bool last = nl == std::string_view::npos;
        std::string_view line = input.substr(pos, last ? std::string_view::npos : nl - pos);
        pos = last ? input.size() : nl + 1;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (!ignore_dots && line == ".") break;
        out.append(line);
        out += "\r\n";
    }
    return out;
}

bool field_is(const mime::RawField& f, std::string_view name) { return util::ascii_iequals(f.name, name); }

}  // namespace

LocalMessage prepare_sendmail_message(std::string_view input, const SendmailArgs& args,
                                      const std::string& user_address, std::time_t now,
                                      const std::string& message_id) {
    LocalMessage out;
    const std::string text = read_lines(input, args.ignore_dots);
    mime::HeaderSplitter splitter(mime::kMaxHeaderSection);
    std::string body(splitter.feed(text));
    splitter.finish();
    if (splitter.state() != mime::HeaderSplitter::State::body) {
        out.error = "the header section is larger than 256 KiB";
        return out;
    }
    // Input that does not start with header fields ("echo hello | sendmail bob") is all body, as in Postfix: the
    // header section ends at the first line that is not a field.
    std::vector<mime::RawField> fields = mime::header_fields(splitter.header());
    bool separated = splitter.has_body();
    for (std::size_t i = 0; i < fields.size(); ++i) {
        if (!fields[i].name.empty()) continue;
        std::string rest;
        for (std::size_t j = i; j < fields.size(); ++j) rest.append(fields[j].raw);
        body = rest + (separated ? "\r\n" : "") + body;
        fields.resize(i);
        separated = true;
        break;
    }

    std::vector<std::string> recipients = args.recipients;
    std::string header;
    bool has_from = false, has_date = false, has_message_id = false;
    for (const mime::RawField& f : fields) {
        const bool bcc = field_is(f, "Bcc");
        if (args.extract_recipients && (bcc || field_is(f, "To") || field_is(f, "Cc"))) {
            std::string value(f.raw.substr(f.raw.find(':') + 1));
            for (std::size_t at; (at = value.find("\r\n")) != std::string::npos;) value.erase(at, 2);   // unfold
            const auto list = mime::address_list(value);
            if (!list) {
                out.error = "cannot read the addresses of " + std::string(f.name) + ": " + value.substr(0, 80);
                return out;
            }
            recipients.insert(recipients.end(), list->begin(), list->end());
        }
        if (bcc) continue;   // never passed on
        has_from = has_from || field_is(f, "From");
        has_date = has_date || field_is(f, "Date");
        has_message_id = has_message_id || field_is(f, "Message-ID");
        header.append(f.raw);
    }

    out.envelope.sender = args.sender.value_or(user_address);
    if (!out.envelope.sender.empty()) {
        if (const std::string why = config::address_error(out.envelope.sender); !why.empty()) {
            out.error = "sender <" + out.envelope.sender + ">: " + why;
            return out;
        }
    }
    for (const auto& r : recipients) {
        if (const std::string why = config::address_error(r); !why.empty()) {
            out.error = "recipient <" + r + ">: " + why;
            return out;
        }
        bool seen = false;
        for (const auto& s : out.envelope.recipients) seen = seen || util::ascii_iequals(s, r);
        if (!seen) out.envelope.recipients.push_back(r);
    }
    if (out.envelope.recipients.empty()) {
        out.error = args.extract_recipients ? "no recipient: none given and no To, Cc or Bcc field"
                                            : "no recipient given (use -t to take them from the message)";
        return out;
    }

    std::string added;
    if (!has_from) {
        const std::string& from = out.envelope.sender.empty() ? user_address : out.envelope.sender;
        std::string name;   // a display name as a quoted string (RFC 5322 3.2.4), printable ASCII only
        for (const char c : args.full_name) {
            if (c == '"' || c == '\\') name += '\\';
            if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) name += c;
        }
        added += name.empty() ? "From: " + from + "\r\n" : "From: \"" + name + "\" <" + from + ">\r\n";
    }
    if (!has_date) added += "Date: " + util::rfc5322_date(now) + "\r\n";
    if (!has_message_id) added += "Message-ID: " + message_id + "\r\n";
    out.message = added + header + (separated ? "\r\n" : "") + body;
    return out;
}

}  // namespace ferry::cli
