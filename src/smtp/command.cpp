#include "smtp/command.hpp"

#include <array>
#include <charconv>
#include <utility>

namespace ferry::smtp {
namespace {

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'a' && x <= 'z') x = static_cast<char>(x - 32);
        if (y >= 'a' && y <= 'z') y = static_cast<char>(y - 32);
        if (x != y) return false;
    }
    return true;
}

bool istarts_with(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

constexpr std::array<std::pair<std::string_view, Verb>, 14> kVerbs{{
    {"HELO", Verb::helo}, {"EHLO", Verb::ehlo}, {"MAIL", Verb::mail}, {"RCPT", Verb::rcpt},
    {"DATA", Verb::data}, {"BDAT", Verb::bdat}, {"RSET", Verb::rset}, {"NOOP", Verb::noop},
    {"QUIT", Verb::quit}, {"VRFY", Verb::vrfy}, {"EXPN", Verb::expn}, {"HELP", Verb::help},
    {"STARTTLS", Verb::starttls}, {"AUTH", Verb::auth},
}};

// esmtp-param = esmtp-keyword ["=" esmtp-value], RFC 5321 4.1.2; UTF-8 values allowed by RFC 6531 3.3.
bool parse_params(std::string_view s, std::vector<EsmtpParam>& out) {
    while (!s.empty()) {
        if (s.front() != ' ') return false;
        while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
        if (s.empty()) break;
        const auto end = s.find(' ');
        const std::string_view token = s.substr(0, end);
        s = end == std::string_view::npos ? std::string_view() : s.substr(end);
        const auto eq = token.find('=');
        const std::string_view key = token.substr(0, eq);
        if (key.empty()) return false;
        EsmtpParam p;
        for (std::size_t i = 0; i < key.size(); ++i) {
            const auto c = static_cast<unsigned char>(key[i]);
            const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
            if (!alnum && !(i > 0 && c == '-')) return false;
            p.keyword.push_back(static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c));
        }
        if (eq != std::string_view::npos) {
            const std::string_view value = token.substr(eq + 1);
            if (value.empty()) return false;
            for (unsigned char c : value)
                if (c == '=' || c < 33 || c == 127) return false;
            p.value = std::string(value);
        }
        out.push_back(std::move(p));
    }
    return true;
}

MailArguments parse_path_arguments(std::string_view argument, std::string_view prefix, bool allow_null) {
    MailArguments out;
    if (!istarts_with(argument, prefix)) {
        out.error = ArgError::syntax;
        return out;
    }
    std::string_view rest = argument.substr(prefix.size());
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    if (rest.empty() || rest.front() != '<') {
        out.error = ArgError::syntax;
        return out;
    }
    PathParse pp = parse_path(rest, allow_null);
    if (pp.error == PathError::too_long) {
        out.error = ArgError::address_too_long;
        return out;
    }
    if (pp.error != PathError::none) {
        out.error = ArgError::bad_address;
        return out;
    }
    out.path = std::move(pp.path);
    if (!parse_params(rest.substr(pp.consumed), out.params)) out.error = ArgError::bad_parameter;
    return out;
}

}  // namespace

Command parse_command(std::string_view line) {
    Command cmd;
    const auto sp = line.find(' ');
    cmd.name = line.substr(0, sp);
    if (sp != std::string_view::npos) {
        std::string_view arg = line.substr(sp);
        while (!arg.empty() && arg.front() == ' ') arg.remove_prefix(1);
        while (!arg.empty() && arg.back() == ' ') arg.remove_suffix(1);
        cmd.argument = arg;
    }
    for (const auto& [name, verb] : kVerbs) {
        if (iequals(cmd.name, name)) {
            cmd.verb = verb;
            break;
        }
    }
    return cmd;
}

MailArguments parse_mail_arguments(std::string_view argument) {
    return parse_path_arguments(argument, "FROM:", true);
}

MailArguments parse_rcpt_arguments(std::string_view argument) {
    return parse_path_arguments(argument, "TO:", false);
}

BdatArguments parse_bdat_arguments(std::string_view argument) {
    BdatArguments out;
    const auto sp = argument.find(' ');
    const std::string_view size = argument.substr(0, sp);
    if (size.empty() || size.size() > 18) return out;
    for (char c : size)
        if (c < '0' || c > '9') return out;
    std::from_chars(size.data(), size.data() + size.size(), out.size);
    if (sp != std::string_view::npos) {
        std::string_view rest = argument.substr(sp);
        while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
        if (!iequals(rest, "LAST")) return out;
        out.last = true;
    }
    out.ok = true;
    return out;
}

}  // namespace ferry::smtp
