#include "filter/milter_codec.hpp"

#include <fmt/format.h>

#include "util/ascii.hpp"

namespace ferry::filter::milter {

namespace {

void put_u32(std::string& out, std::uint32_t v) {
    out.push_back(static_cast<char>((v >> 24) & 0xff));
    out.push_back(static_cast<char>((v >> 16) & 0xff));
    out.push_back(static_cast<char>((v >> 8) & 0xff));
    out.push_back(static_cast<char>(v & 0xff));
}

std::uint32_t get_u32(std::string_view in) {
    return (static_cast<std::uint32_t>(static_cast<unsigned char>(in[0])) << 24) |
           (static_cast<std::uint32_t>(static_cast<unsigned char>(in[1])) << 16) |
           (static_cast<std::uint32_t>(static_cast<unsigned char>(in[2])) << 8) |
           static_cast<std::uint32_t>(static_cast<unsigned char>(in[3]));
}

void put_string(std::string& out, std::string_view s) {
    out.append(s);
    out.push_back('\0');
}

// Appends one frame: length, command, data.
void append_frame(std::string& out, char command, std::string_view data) {
    put_u32(out, static_cast<std::uint32_t>(data.size() + 1));
    out.push_back(command);
    out.append(data);
}

std::string envelope_args(std::string_view address, const std::vector<std::string>& esmtp_args) {
    std::string data;
    data.reserve(address.size() + 3);
    data.push_back('<');
    data.append(address);
    data.push_back('>');
    data.push_back('\0');
    for (const auto& a : esmtp_args) put_string(data, a);
    return data;
}

// Reads NUL-terminated strings off the front of a reply's data.
class Reader {
public:
    explicit Reader(std::string_view data) : rest_(data) {}
    bool string(std::string& out) {
        const auto nul = rest_.find('\0');
        if (nul == std::string_view::npos) return false;
        out.assign(rest_.substr(0, nul));
        rest_.remove_prefix(nul + 1);
        return true;
    }
    bool u32(std::uint32_t& out) {
        if (rest_.size() < 4) return false;
        out = get_u32(rest_);
        rest_.remove_prefix(4);
        return true;
    }
    bool done() const { return rest_.empty(); }

private:
    std::string_view rest_;
};

Decoded failure(std::string why) {
    Decoded d;
    d.status = Decoded::Status::error;
    d.error = std::move(why);
    return d;
}

const char* kind_name(Reply::Kind kind) {
    switch (kind) {
        case Reply::Kind::optneg: return "optneg";
        case Reply::Kind::accept: return "accept";
        case Reply::Kind::continue_: return "continue";
        case Reply::Kind::reject: return "reject";
        case Reply::Kind::tempfail: return "tempfail";
        case Reply::Kind::discard: return "discard";
        case Reply::Kind::shutdown: return "shutdown";
        case Reply::Kind::conn_fail: return "connfail";
        case Reply::Kind::progress: return "progress";
        case Reply::Kind::skip: return "skip";
        case Reply::Kind::replycode: return "replycode";
        case Reply::Kind::quarantine: return "quarantine";
        case Reply::Kind::add_header: return "addheader";
        case Reply::Kind::insert_header: return "insheader";
        case Reply::Kind::change_header: return "chgheader";
        case Reply::Kind::add_rcpt: return "addrcpt";
        case Reply::Kind::add_rcpt_par: return "addrcpt_par";
        case Reply::Kind::delete_rcpt: return "delrcpt";
        case Reply::Kind::change_from: return "chgfrom";
        case Reply::Kind::replace_body: return "replbody";
    }
    return "?";
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// "d.d+.d+" (RFC 3463 2: class, subject 1-3 digits, detail 1-3 digits) at the front of `text`; its length or 0.
std::size_t enhanced_code_length(std::string_view text) {
    std::size_t i = 0;
    if (text.size() < 5 || !is_digit(text[0]) || text[1] != '.') return 0;
    i = 2;
    for (int part = 0; part < 2; ++part) {
        const std::size_t start = i;
        while (i < text.size() && is_digit(text[i])) ++i;
        if (i == start || i - start > 3) return 0;
        if (part == 0) {
            if (i >= text.size() || text[i] != '.') return 0;
            ++i;
        }
    }
    if (i < text.size() && text[i] != ' ') return 0;
    return i;
}

}  // namespace

std::string encode_frame(char command, std::string_view data) {
    std::string out;
    out.reserve(data.size() + 5);
    append_frame(out, command, data);
    return out;
}

std::string encode_optneg(std::uint32_t version, std::uint32_t actions, std::uint32_t protocol) {
    std::string data;
    put_u32(data, version);
    put_u32(data, actions);
    put_u32(data, protocol);
    return encode_frame(SMFIC_OPTNEG, data);
}

std::string encode_macros(char stage, const Macros& macros) {
    std::string data(1, stage);
    for (const auto& [name, value] : macros) {
        put_string(data, name);
        put_string(data, value);
    }
    return encode_frame(SMFIC_MACRO, data);
}

std::string encode_connect(std::string_view hostname, char family, std::uint16_t port, std::string_view address) {
    std::string data;
    put_string(data, hostname);
    data.push_back(family);
    if (family != SMFIA_UNKNOWN) {
        data.push_back(static_cast<char>(port >> 8));
        data.push_back(static_cast<char>(port & 0xff));
        put_string(data, address);
    }
    return encode_frame(SMFIC_CONNECT, data);
}

std::string encode_helo(std::string_view helo) {
    std::string data;
    put_string(data, helo);
    return encode_frame(SMFIC_HELO, data);
}

std::string encode_mail(std::string_view address, const std::vector<std::string>& esmtp_args) {
    return encode_frame(SMFIC_MAIL, envelope_args(address, esmtp_args));
}

std::string encode_rcpt(std::string_view address, const std::vector<std::string>& esmtp_args) {
    return encode_frame(SMFIC_RCPT, envelope_args(address, esmtp_args));
}

std::string encode_data() { return encode_frame(SMFIC_DATA, {}); }

std::string encode_header(std::string_view name, std::string_view value) {
    std::string data;
    data.reserve(name.size() + value.size() + 2);
    put_string(data, name);
    put_string(data, value);
    return encode_frame(SMFIC_HEADER, data);
}

std::string encode_eoh() { return encode_frame(SMFIC_EOH, {}); }

std::string encode_body(std::string_view body) {
    std::string out;
    out.reserve(body.size() + (body.size() / kChunkSize + 1) * 5);
    while (!body.empty()) {
        const std::size_t n = std::min(body.size(), kChunkSize);
        append_frame(out, SMFIC_BODY, body.substr(0, n));
        body.remove_prefix(n);
    }
    return out;
}

std::string encode_eob() { return encode_frame(SMFIC_BODYEOB, {}); }
std::string encode_abort() { return encode_frame(SMFIC_ABORT, {}); }
std::string encode_quit() { return encode_frame(SMFIC_QUIT, {}); }
std::string encode_quit_nc() { return encode_frame(SMFIC_QUIT_NC, {}); }

bool is_final(Reply::Kind kind) {
    switch (kind) {
        case Reply::Kind::accept:
        case Reply::Kind::continue_:
        case Reply::Kind::reject:
        case Reply::Kind::tempfail:
        case Reply::Kind::discard:
        case Reply::Kind::shutdown:
        case Reply::Kind::conn_fail:
        case Reply::Kind::skip:
        case Reply::Kind::replycode: return true;
        default: return false;
    }
}

bool is_modification(Reply::Kind kind) {
    switch (kind) {
        case Reply::Kind::add_header:
        case Reply::Kind::insert_header:
        case Reply::Kind::change_header:
        case Reply::Kind::add_rcpt:
        case Reply::Kind::add_rcpt_par:
        case Reply::Kind::delete_rcpt:
        case Reply::Kind::change_from:
        case Reply::Kind::replace_body: return true;
        default: return false;
    }
}

std::uint32_t required_action(Reply::Kind kind) {
    switch (kind) {
        case Reply::Kind::add_header:
        case Reply::Kind::insert_header: return SMFIF_ADDHDRS;
        case Reply::Kind::change_header: return SMFIF_CHGHDRS;
        case Reply::Kind::add_rcpt: return SMFIF_ADDRCPT;
        case Reply::Kind::add_rcpt_par: return SMFIF_ADDRCPT_PAR;
        case Reply::Kind::delete_rcpt: return SMFIF_DELRCPT;
        case Reply::Kind::change_from: return SMFIF_CHGFROM;
        case Reply::Kind::replace_body: return SMFIF_CHGBODY;
        case Reply::Kind::quarantine: return SMFIF_QUARANTINE;
        default: return 0;
    }
}

std::optional<smtp::Reply> parse_reply_code(std::string_view raw, std::string& error) {
    // Sendmail compatibility (Postfix milter8.c does the same): "%%" is "%", a lone "%" goes.
    std::string text;
    text.reserve(raw.size());
    for (std::size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] == '%') {
            if (i + 1 < raw.size() && raw[i + 1] == '%') text.push_back('%'), ++i;
            continue;
        }
        text.push_back(raw[i]);
    }
    smtp::Reply reply;
    reply.lines.clear();
    std::string_view rest = text;
    if (!rest.empty() && rest.back() == '\n') rest.remove_suffix(1);
    if (!rest.empty() && rest.back() == '\r') rest.remove_suffix(1);
    if (rest.empty()) {
        error = "empty reply code";
        return std::nullopt;
    }
    bool last_seen = false;
    while (!rest.empty() || !last_seen) {
        if (last_seen) {
            error = "reply code text after its last line";
            return std::nullopt;
        }
        std::size_t eol = rest.find('\n');
        std::string_view line = rest.substr(0, eol);
        rest = eol == std::string_view::npos ? std::string_view{} : rest.substr(eol + 1);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.size() < 3 || (line[0] != '4' && line[0] != '5') || !is_digit(line[1]) || !is_digit(line[2]) ||
            (line.size() > 3 && line[3] != ' ' && line[3] != '-')) {
            error = fmt::format("malformed reply code line \"{}\"", line.substr(0, 80));
            return std::nullopt;
        }
        const int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
        if (reply.lines.empty())
            reply.code = code;
        else if (code != reply.code) {
            error = fmt::format("reply code {} differs from the first line's {}", code, reply.code);
            return std::nullopt;
        }
        last_seen = line.size() == 3 || line[3] == ' ';
        if (!last_seen && rest.empty()) {
            error = "multi-line reply code without its last line";
            return std::nullopt;
        }
        std::string_view body = line.size() > 4 ? line.substr(4) : std::string_view{};
        if (const std::size_t n = enhanced_code_length(body)) {
            if (body[0] != line[0]) {
                error = fmt::format("enhanced code {} does not match reply code {}", body.substr(0, n), code);
                return std::nullopt;
            }
            if (reply.enhanced.empty()) reply.enhanced = std::string(body.substr(0, n));
            body.remove_prefix(n);
            if (!body.empty()) body.remove_prefix(1);
        }
        reply.lines.emplace_back(body);
    }
    if (reply.enhanced.empty()) reply.enhanced = reply.code >= 500 ? "5.0.0" : "4.0.0";
    return reply;
}

Decoded parse_reply(char command, std::string_view data) {
    Decoded d;
    d.status = Decoded::Status::reply;
    Reply& r = d.reply;
    r.command = command;
    Reader in(data);
    auto no_data = [&](Reply::Kind kind) {
        if (!data.empty()) return failure(fmt::format("'{}' reply with {} data octets", command, data.size()));
        r.kind = kind;
        return d;
    };
    auto strings_only = [&](Reply::Kind kind, std::initializer_list<std::string*> fields) {
        r.kind = kind;
        for (std::string* f : fields)
            if (!in.string(*f)) return failure(fmt::format("{} reply without its NUL-terminated fields", kind_name(kind)));
        if (!in.done()) return failure(fmt::format("{} reply with octets after its fields", kind_name(kind)));
        return d;
    };
    switch (command) {
        case SMFIC_OPTNEG: {
            r.kind = Reply::Kind::optneg;
            if (!in.u32(r.optneg.version) || !in.u32(r.optneg.actions) || !in.u32(r.optneg.protocol))
                return failure("option negotiation reply shorter than 12 octets");
            // The rest, when the filter asked SMFIF_SETSYMLIST: (stage u32, "name name ..." NUL) pairs.
            while (!in.done()) {
                std::uint32_t stage = 0;
                std::string list;
                if (!in.u32(stage) || !in.string(list)) return failure("option negotiation reply: truncated macro list");
                if (stage >= kMacroStages) return failure(fmt::format("option negotiation reply: macro stage {}", stage));
                std::vector<std::string> names;
                std::size_t at = 0;
                while (at < list.size()) {
                    const std::size_t end = list.find_first_of(" ,\t", at);
                    const std::size_t stop = end == std::string::npos ? list.size() : end;
                    if (stop > at) names.emplace_back(list.substr(at, stop - at));
                    at = stop + 1;
                }
                r.optneg.macro_lists[stage] = std::move(names);
            }
            return d;
        }
        case SMFIR_ACCEPT: return no_data(Reply::Kind::accept);
        case SMFIR_CONTINUE: return no_data(Reply::Kind::continue_);
        case SMFIR_REJECT: return no_data(Reply::Kind::reject);
        case SMFIR_TEMPFAIL: return no_data(Reply::Kind::tempfail);
        case SMFIR_DISCARD: return no_data(Reply::Kind::discard);
        case SMFIR_SHUTDOWN: return no_data(Reply::Kind::shutdown);
        case SMFIR_CONN_FAIL: return no_data(Reply::Kind::conn_fail);
        case SMFIR_PROGRESS: return no_data(Reply::Kind::progress);
        case SMFIR_SKIP: return no_data(Reply::Kind::skip);
        case SMFIR_REPLYCODE: {
            r.kind = Reply::Kind::replycode;
            std::string text;
            if (!in.string(text) || !in.done()) return failure("replycode reply is not one NUL-terminated string");
            std::string why;
            auto reply = parse_reply_code(text, why);
            if (!reply) return failure("replycode: " + why);
            r.reply = std::move(*reply);
            return d;
        }
        case SMFIR_QUARANTINE: return strings_only(Reply::Kind::quarantine, {&r.value});
        case SMFIR_ADDHEADER: {
            Decoded out = strings_only(Reply::Kind::add_header, {&r.name, &r.value});
            if (out.status == Decoded::Status::reply && out.reply.name.empty()) return failure("addheader without a name");
            return out;
        }
        case SMFIR_INSHEADER:
        case SMFIR_CHGHEADER: {
            const auto kind = command == SMFIR_INSHEADER ? Reply::Kind::insert_header : Reply::Kind::change_header;
            if (!in.u32(r.index)) return failure(fmt::format("{} reply shorter than its index", kind_name(kind)));
            Decoded out = strings_only(kind, {&r.name, &r.value});
            if (out.status == Decoded::Status::reply && out.reply.name.empty())
                return failure(fmt::format("{} without a name", kind_name(kind)));
            return out;
        }
        case SMFIR_ADDRCPT:
        case SMFIR_DELRCPT: {
            const auto kind = command == SMFIR_ADDRCPT ? Reply::Kind::add_rcpt : Reply::Kind::delete_rcpt;
            Decoded out = strings_only(kind, {&r.address});
            if (out.status == Decoded::Status::reply) out.reply.address = strip_angle_brackets(out.reply.address);
            return out;
        }
        case SMFIR_ADDRCPT_PAR:
        case SMFIR_CHGFROM: {
            // address NUL, then optionally the ESMTP arguments NUL (Postfix reads them when present).
            r.kind = command == SMFIR_CHGFROM ? Reply::Kind::change_from : Reply::Kind::add_rcpt_par;
            if (!in.string(r.address)) return failure(fmt::format("{} reply without its address", kind_name(r.kind)));
            if (!in.done() && !in.string(r.args))
                return failure(fmt::format("{} reply: arguments without their NUL", kind_name(r.kind)));
            if (!in.done()) return failure(fmt::format("{} reply with octets after its fields", kind_name(r.kind)));
            r.address = strip_angle_brackets(r.address);
            return d;
        }
        case SMFIR_REPLBODY:
            r.kind = Reply::Kind::replace_body;
            r.value.assign(data);
            return d;
        case SMFIR_SETSYMLIST:
            return failure("setsymlist outside the option negotiation reply");
        default:
            return failure(fmt::format("unknown reply command 0x{:02x}", static_cast<unsigned char>(command)));
    }
}

Decoded ReplyDecoder::next() {
    if (!error_.empty()) return failure(error_);
    const std::size_t available = buffer_.size() - offset_;
    if (available < 4) return {};
    const std::uint32_t length = get_u32(std::string_view(buffer_).substr(offset_, 4));
    if (length == 0 || length > kMaxFrame) {
        error_ = fmt::format("frame length {} out of range 1..{}", length, kMaxFrame);
        return failure(error_);
    }
    if (available - 4 < length) return {};
    const char command = buffer_[offset_ + 4];
    const std::string_view data = std::string_view(buffer_).substr(offset_ + 5, length - 1);
    Decoded d = parse_reply(command, data);
    offset_ += 4 + length;
    if (offset_ == buffer_.size()) {
        buffer_.clear();
        offset_ = 0;
    } else if (offset_ > 65536 && offset_ * 2 > buffer_.size()) {
        buffer_.erase(0, offset_);
        offset_ = 0;
    }
    if (d.status == Decoded::Status::error) error_ = d.error;
    return d;
}

Decision decision_of(const Reply& reply) {
    Decision d;
    switch (reply.kind) {
        case Reply::Kind::accept:
            d.action = Decision::Action::accept;
            d.reason = "accept";
            break;
        case Reply::Kind::reject:
            d.action = Decision::Action::reject;
            d.reason = "reject";
            break;
        case Reply::Kind::tempfail:
            d.action = Decision::Action::tempfail;
            d.reason = "tempfail";
            break;
        case Reply::Kind::replycode:
            d.action = reply.reply.code >= 500 ? Decision::Action::reject : Decision::Action::tempfail;
            d.reply = reply.reply;
            d.reason = fmt::format("replycode {} {} {}", reply.reply.code, reply.reply.enhanced,
                                   reply.reply.lines.empty() ? std::string() : reply.reply.lines.front());
            break;
        case Reply::Kind::discard:
            d.action = Decision::Action::discard;
            d.reason = "discard";
            break;
        case Reply::Kind::shutdown:
        case Reply::Kind::conn_fail:
            d.action = Decision::Action::shutdown;
            d.reason = kind_name(reply.kind);
            break;
        default:
            d.action = Decision::Action::proceed;
            d.reason = kind_name(reply.kind);
            break;
    }
    return d;
}

VerdictBuilder::VerdictBuilder(std::uint32_t actions, std::string hidden_first_field)
    : actions_(actions), hidden_first_field_(std::move(hidden_first_field)) {}

std::optional<std::string> VerdictBuilder::add(const Reply& r) {
    const std::uint32_t needed = required_action(r.kind);
    if (needed == 0 || (actions_ & needed) == 0)
        return fmt::format("{} request without the action negotiated", kind_name(r.kind));
    switch (r.kind) {
        case Reply::Kind::quarantine:
            verdict_.quarantine = true;
            verdict_.quarantine_reason = r.value;
            break;
        case Reply::Kind::add_header:
            verdict_.header_edits.push_back({HeaderEdit::Kind::append, 0, r.name, r.value});
            break;
        case Reply::Kind::insert_header:
            // Postfix milter8.c: the index counts the fields of the message as delivered (ours included).
            verdict_.header_edits.push_back({HeaderEdit::Kind::insert, static_cast<long>(r.index), r.name, r.value});
            break;
        case Reply::Kind::change_header: {
            // Sendmail compatibility (as Postfix): index 0 is the first. The index counts the fields the filter
            // saw, so a hidden first field of the same name moves it one on.
            long index = r.index == 0 ? 1 : static_cast<long>(r.index);
            if (!hidden_first_field_.empty() && util::ascii_iequals(r.name, hidden_first_field_)) ++index;
            verdict_.header_edits.push_back({HeaderEdit::Kind::change, index, r.name, r.value});
            break;
        }
        case Reply::Kind::add_rcpt:
        case Reply::Kind::add_rcpt_par:
            if (r.address.empty()) return std::string("addrcpt with an empty address");
            verdict_.add_recipients.push_back(r.address);
            break;
        case Reply::Kind::delete_rcpt:
            verdict_.delete_recipients.push_back(r.address);
            break;
        case Reply::Kind::change_from:
            verdict_.new_sender = r.address;
            break;
        case Reply::Kind::replace_body:
            replaced_body_ = true;
            body_ += r.value;
            break;
        default:
            return fmt::format("{} is not a modification", kind_name(r.kind));
    }
    return std::nullopt;
}

ContentVerdict VerdictBuilder::finish(const Reply& final_reply) {
    ContentVerdict v = std::move(verdict_);
    v.decision = decision_of(final_reply);
    if (replaced_body_) v.new_body = to_crlf(body_);
    v.summary = fmt::format("{}{}{}{}{}{}", v.decision.reason,
                            v.header_edits.empty() ? "" : fmt::format(" header_edits={}", v.header_edits.size()),
                            v.new_sender ? " chgfrom" : "",
                            v.add_recipients.empty() && v.delete_recipients.empty()
                                ? ""
                                : fmt::format(" rcpt+{}-{}", v.add_recipients.size(), v.delete_recipients.size()),
                            v.new_body ? " replbody" : "", v.quarantine ? " quarantine" : "");
    verdict_ = {};
    body_.clear();
    replaced_body_ = false;
    return v;
}

std::string strip_angle_brackets(std::string_view address) {
    if (address.size() >= 2 && address.front() == '<' && address.back() == '>')
        address = address.substr(1, address.size() - 2);
    return std::string(address);
}

std::string to_crlf(std::string_view text) {
    std::string out;
    out.reserve(text.size() + text.size() / 32 + 2);
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\n' && (i == 0 || text[i - 1] != '\r')) out.push_back('\r');
        out.push_back(text[i]);
    }
    if (!out.empty() && out.back() != '\n') out.append("\r\n");
    return out;
}

}  // namespace ferry::filter::milter
