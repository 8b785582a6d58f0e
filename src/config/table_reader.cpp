#include "config/table_reader.hpp"

#include <algorithm>
#include <limits>

#include "util/ascii.hpp"

namespace ferry::config::detail {

namespace fs = std::filesystem;

std::string quote_value(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (u < 0x20 || u == 0x7F) {
            static constexpr char hex[] = "0123456789abcdef";
            out += "\\x";
            out += hex[u >> 4];
            out += hex[u & 0xF];
        } else {
            out += c;
        }
    }
    out += '"';
    return out;
}

const char* type_name(toml::node_type t) {
    switch (t) {
        case toml::node_type::none: return "nothing";
        case toml::node_type::table: return "a table";
        case toml::node_type::array: return "an array";
        case toml::node_type::string: return "a string";
        case toml::node_type::integer: return "an integer";
        case toml::node_type::floating_point: return "a floating-point number";
        case toml::node_type::boolean: return "a boolean";
        case toml::node_type::date: return "a date";
        case toml::node_type::time: return "a time";
        case toml::node_type::date_time: return "a date-time";
    }
    return "an unknown type";
}

std::string join_key(const std::string& prefix, std::string_view key) {
    const bool bare = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
        return util::is_alpha(c) || util::is_digit(c) || c == '_' || c == '-';
    });
    std::string text = bare ? std::string(key) : quote_value(key);
    return prefix.empty() ? text : prefix + "." + text;
}

namespace {

// Messages are one line each: a TOML parser's description may hold line breaks.
std::string one_line(std::string_view s) {
    std::string out;
    for (char c : s) {
        if (c == '\n' || c == '\r') {
            if (!out.empty() && out.back() != ' ') out += ' ';
        } else {
            out += c;
        }
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out;
}

}  // namespace

std::vector<std::string> Reader::report() const {
    std::vector<const Problem*> order;
    for (const Problem& p : problems_) order.push_back(&p);
    // File order, so an operator fixes the file top to bottom; problems of the whole file (a required table
    // missing) after those at a line.
    std::stable_sort(order.begin(), order.end(), [](const Problem* a, const Problem* b) {
        const auto la = a->line ? a->line : std::numeric_limits<toml::source_index>::max();
        const auto lb = b->line ? b->line : std::numeric_limits<toml::source_index>::max();
        return la < lb;
    });
    std::vector<std::string> lines;
    for (const Problem* p : order) {
        std::string msg = file_;
        if (p->line > 0) msg += ":" + std::to_string(p->line);
        msg += ": ";
        if (!p->key.empty()) msg += p->key + ": ";
        msg += p->why;
        lines.push_back(one_line(msg));
    }
    return lines;
}

fs::path Reader::resolve(const std::string& p) const {
    fs::path out = (base_ / fs::path(p)).lexically_normal();
    if (!out.has_filename() && out.has_relative_path()) out = out.parent_path();
    return out;
}

const toml::table& Reader::table(const toml::node& node, const std::string& name) const {
    if (!node.is_table()) fail(node, name, std::string("expected a table, got ") + type_name(node.type()));
    return *node.as_table();
}

std::string Reader::text(const toml::node& node, const std::string& name) const {
    if (!node.is_string()) fail(node, name, std::string("expected a string, got ") + type_name(node.type()));
    // TOML allows "\u0000"; paths, user and host names go to C APIs that would stop reading there.
    const std::string& v = node.as_string()->get();
    if (v.find('\0') != std::string::npos) fail(node, name, "contains a NUL character (\\u0000)");
    return v;
}

fs::path Reader::path(const toml::node& node, const std::string& name) const {
    const std::string v = text(node, name);
    if (v.empty()) fail(node, name, "must not be empty");
    return resolve(v);
}

bool Reader::flag(const toml::node& node, const std::string& name) const {
    if (!node.is_boolean()) fail(node, name, std::string("expected true or false, got ") + type_name(node.type()));
    return node.as_boolean()->get();
}

std::int64_t Reader::integer(const toml::node& node, const std::string& name, std::int64_t min, std::int64_t max,
                             std::string_view what) const {
    if (!node.is_integer()) fail(node, name, "expected " + std::string(what) + ", got " + type_name(node.type()));
    const std::int64_t v = node.as_integer()->get();
    if (v < min || v > max) fail(node, name, std::to_string(v) + " is out of range (expected " + std::string(what) + ")");
    return v;
}

std::size_t Reader::positive(const toml::node& node, const std::string& name, std::int64_t min) const {
    const std::string what = min == 1 ? "a positive integer" : "an integer of at least " + std::to_string(min);
    if (!node.is_integer()) fail(node, name, "expected " + what + ", got " + type_name(node.type()));
    const std::int64_t v = node.as_integer()->get();
    if (v < min) {
        std::string why = std::to_string(v) + " is too small (expected " + what;
        if (min > 1) why += ", the minimum of RFC 5321 4.5.3.1";
        fail(node, name, why + ")");
    }
    return static_cast<std::size_t>(v);
}

std::uint64_t Reader::size(const toml::node& node, const std::string& name) const {
    if (node.is_integer()) {
        const std::int64_t v = node.as_integer()->get();
        if (v < 0) fail(node, name, std::to_string(v) + " is negative (expected a size)");
        return static_cast<std::uint64_t>(v);
    }
    if (!node.is_string())
        fail(node, name, std::string("expected octets or a size string like \"50M\", got ") + type_name(node.type()));
    const std::string& text = node.as_string()->get();
    try {
        return parse_size(text);
    } catch (const std::invalid_argument& e) {
        fail(node, name, quote_value(text) + " is not a size (" + e.what() + ")");
    }
}

std::chrono::milliseconds Reader::duration(const toml::node& node, const std::string& name) const {
    if (!node.is_string())
        fail(node, name, std::string("expected a duration string like \"30s\", got ") + type_name(node.type()));
    const std::string& text = node.as_string()->get();
    std::chrono::milliseconds d;
    try {
        d = parse_duration(text);
    } catch (const std::invalid_argument& e) {
        fail(node, name, quote_value(text) + " is not a duration (" + e.what() + ")");
    }
    if (d.count() <= 0) fail(node, name, quote_value(text) + " must be longer than zero");
    return d;
}

std::chrono::seconds Reader::whole_seconds(const toml::node& node, const std::string& name) const {
    const auto d = duration(node, name);
    if (d.count() % 1000 != 0) fail(node, name, quote_value(node.as_string()->get()) + " is not a whole number of seconds");
    return std::chrono::duration_cast<std::chrono::seconds>(d);
}

}  // namespace ferry::config::detail
