#include "smtp/server_reply.hpp"

#include <algorithm>
#include <charconv>

#include "util/ascii.hpp"

namespace ferry::smtp {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// "d.ddd.ddd" (RFC 3463: class 2/4/5, subject 1-3 digits, detail 1-3 digits) at the start of `text`, followed by
// a space or the end; its length, or 0.
std::size_t enhanced_code_length(std::string_view text, char reply_class) {
    if (text.size() < 5 || text[0] != reply_class || text[1] != '.') return 0;
    std::size_t i = 2;
    for (int part = 0; part < 2; ++part) {
        const std::size_t start = i;
        while (i < text.size() && is_digit(text[i]) && i - start < 3) ++i;
        if (i == start) return 0;
        if (part == 0) {
            if (i >= text.size() || text[i] != '.') return 0;
            ++i;
        }
    }
    if (i < text.size() && text[i] != ' ') return 0;
    return i;
}

ServerReplyParse failure(std::string why) {
    ServerReplyParse p;
    p.status = ServerReplyParse::Status::protocol_error;
    p.error = std::move(why);
    return p;
}

}  // namespace

ServerReplyParse parse_server_reply(std::string_view input) {
    ServerReplyParse out;
    std::vector<std::string_view> texts;
    int code = 0;
    std::size_t pos = 0;
    for (;;) {
        const auto lf = input.find('\n', pos);
        if (lf == std::string_view::npos) {
            if (input.size() - pos > kMaxServerReplyLine) return failure("reply line too long");
            return out;   // incomplete
        }
        std::string_view line = input.substr(pos, lf - pos);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.size() + 2 > kMaxServerReplyLine) return failure("reply line too long");
        pos = lf + 1;
        if (line.size() < 3 || !is_digit(line[0]) || !is_digit(line[1]) || !is_digit(line[2]) || line[0] < '2' ||
            line[0] > '5')
            return failure("malformed reply line: not a 2xx-5xx code");
        const int this_code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
        if (code != 0 && this_code != code) return failure("reply lines with different codes");
        code = this_code;
        const bool last = line.size() == 3 || line[3] == ' ';
        if (!last && line[3] != '-') return failure("malformed reply line: neither ' ' nor '-' after the code");
        texts.push_back(line.size() > 4 ? line.substr(4) : std::string_view());
        if (texts.size() > kMaxServerReplyLines) return failure("reply of too many lines");
        if (last) break;
    }
    out.status = ServerReplyParse::Status::reply;
    out.consumed = pos;
    out.reply.code = code;
    out.reply.lines.clear();
    // An enhanced code counts when every line carries the same one (RFC 2034 3 asks for that).
    const char reply_class = static_cast<char>('0' + code / 100);
    const std::size_t n = enhanced_code_length(texts.front(), reply_class);
    const std::string_view enhanced = texts.front().substr(0, n);
    const bool all = n > 0 && std::all_of(texts.begin(), texts.end(), [&](std::string_view t) {
        return enhanced_code_length(t, reply_class) == n && t.substr(0, n) == enhanced;
    });
    if (all) out.reply.enhanced = std::string(enhanced);
    for (std::string_view t : texts) {
        if (all) t.remove_prefix(std::min(t.size(), n + 1));
        out.reply.lines.emplace_back(t);
    }
    return out;
}

ServerCapabilities parse_capabilities(const Reply& ehlo) {
    ServerCapabilities caps;
    for (std::size_t i = 1; i < ehlo.lines.size(); ++i) {
        const std::string_view line = ehlo.lines[i];
        const auto space = line.find(' ');
        const std::string keyword = util::ascii_lower(line.substr(0, space));
        const std::string_view params = space == std::string_view::npos ? std::string_view() : line.substr(space + 1);
        if (keyword == "pipelining") caps.pipelining = true;
        else if (keyword == "8bitmime") caps.eight_bit_mime = true;
        else if (keyword == "smtputf8") caps.smtputf8 = true;
        else if (keyword == "starttls") caps.starttls = true;
        else if (keyword == "chunking") caps.chunking = true;
        else if (keyword == "dsn") caps.dsn = true;
        else if (keyword == "enhancedstatuscodes") caps.enhanced_status_codes = true;
        else if (keyword == "size") {
            std::uint64_t limit = 0;
            const auto [end, ec] = std::from_chars(params.data(), params.data() + params.size(), limit);
            if (ec == std::errc() && end == params.data() + params.size() && limit > 0) caps.size = limit;
        } else if (keyword == "auth") {
            std::size_t p = 0;
            while (p < params.size()) {
                const auto next = params.find(' ', p);
                const std::string_view mech = params.substr(p, next == std::string_view::npos ? next : next - p);
                if (!mech.empty()) caps.auth.push_back(util::ascii_upper(mech));
                if (next == std::string_view::npos) break;
                p = next + 1;
            }
        }
    }
    return caps;
}

}  // namespace ferry::smtp
