#include "cli/sendmail_message.hpp"

#include <fmt/format.h>

#include <unordered_set>

#include "config/config.hpp"
#include "mime/field_writer.hpp"
#include "mime/header.hpp"
#include "mime/header_splitter.hpp"
#include "mime/header_text.hpp"
#include "smtp/address.hpp"
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
        if (const std::string why = smtp::address_error(out.envelope.sender); !why.empty()) {
            out.error = "sender <" + out.envelope.sender + ">: " + why;
            return out;
        }
    }
    std::unordered_set<std::string> seen;   // lower case: one copy for each address however it is written
    for (const auto& r : recipients) {
        if (const std::string why = smtp::address_error(r); !why.empty()) {
            out.error = "recipient <" + r + ">: " + why;
            return out;
        }
        if (seen.insert(util::ascii_lower(r)).second) out.envelope.recipients.push_back(r);
    }
    if (out.envelope.recipients.empty()) {
        out.error = args.extract_recipients ? "no recipient: none given and no To, Cc or Bcc field"
                                            : "no recipient given (use -t to take them from the message)";
        return out;
    }
    if (out.envelope.recipients.size() > spool::kMaxPickupRecipients) {
        out.error = fmt::format("{} recipients, more than the {} one message may have", out.envelope.recipients.size(),
                                spool::kMaxPickupRecipients);
        return out;
    }

    std::string added;
    if (!has_from) {
        const std::string& from = out.envelope.sender.empty() ? user_address : out.envelope.sender;
        // -F is written as ferry send writes display names: atoms, a quoted-string or RFC 2047 encoded-words.
        const std::string_view name = mime::trim_wsp(args.full_name);
        if (const std::string why = mime::header_text_error(name, "the -F name"); !why.empty()) {
            out.error = why;
            return out;
        }
        mime::FieldWriter field("From");
        if (!name.empty()) mime::write_phrase(field, name);
        field.word(name.empty() ? from : "<" + from + ">");
        added += std::move(field).finish();
    }
    if (!has_date) added += "Date: " + util::rfc5322_date(now) + "\r\n";
    if (!has_message_id) added += "Message-ID: " + message_id + "\r\n";
    out.message = added + header + (separated ? "\r\n" : "") + body;
    return out;
}

}  // namespace ferry::cli
